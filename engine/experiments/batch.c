/*
** batch.c: `pathwise batch`, a stdin-to-stdout JSON Lines filter.
**
** Each worker thread owns one engine; the pipeline (exp.c) keeps the
** output in input order. Summaries are counted per worker from the C
** result (pw_engine_result) and merged at the end, so nothing is shared
** while the cohort runs.
*/
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include "exp.h"
#include "experiments.h"
#include "whatif_count.h"

static const char *const usage_batch =
  "usage: pathwise batch [options] COHORT.jsonl|-\n"
  "\n"
  "Evaluate one facts object (JSON) per input line and write one result per\n"
  "line (JSON Lines) to stdout, in input order, on every core. A plain\n"
  "stdin-to-stdout filter: it runs unchanged under Spark's RDD.pipe or Hadoop\n"
  "Streaming (README.md, section batch).\n"
  "\n"
  "  -p, --protocol FILE     protocol script (default: $PATHWISE_PROTOCOL, else\n"
  "                          mrc_second_line.lua in $PATHWISE_PATH, else the\n"
  "                          installed guideline, share/pathwise/scripts)\n"
  "  -t, --trace             add each result's trace (branches, facts, rules)\n"
  "  -w, --what-if           add each result's what_if (eval --what-if) and count,\n"
  "                          per missing test, how often it would change the plan\n"
  "      --summary FILE      also write the summary as JSON to FILE\n"
  "  -q, --quiet             no summary on stderr\n"
  "      --strict            exit 65 when any line failed (70 when one failed in\n"
  "                          the protocol); default: exit 0 once the run completes\n"
  EXP_USAGE_SHARED
  "  -h, --help              this help\n"
  "\n"
  "output, one line per non-blank input line (blank lines are skipped):\n"
  "  a result   the object `pathwise eval --format json` prints\n"
  "  an error   {\"line\":N,\"error\":{\"status\":S,\"field\":F,\"message\":M}}\n"
  "             status input (F names the field, \"$\" the whole line),\n"
  "             protocol, budget or memory (F is null); the run continues\n"
  "A progress bar (rate, ETA) goes to stderr when it is a terminal, and a\n"
  "summary at the end: pathways, most frequent recommendations and blocks,\n"
  "errors. stdout carries nothing but records.\n"
  "\n"
  "exit codes: 0 done, 64 usage, 65 a line failed (--strict), 66 input not found,\n"
  "            70 a protocol error (--strict), 74 read or write error,\n"
  "            78 protocol or plugin failed to load\n";

#define FIRST_ERRORS 5

typedef struct first_error { long line; char *msg; } first_error;

typedef struct bworker {
  pw_engine *e;
  unsigned flags;
  uint64_t ok, failed, protocol_failed, applicable[3];   /* yes, no, cannot tell */
  exp_counter pathways, recs, blocks, missing, err_fields, err_status;
  first_error first[FIRST_ERRORS];
  int nfirst;
  pw_whatif *wi;   /* --what-if */
  exp_wicount wic;
  pw_buf key;   /* count_result's, reused: a rule names a plugin id of any length */
} bworker;

static void count_result(bworker *w, const pw_result *r) {
  pw_buf *key = &w->key;
  w->ok++;
  w->applicable[r->applicable == 1 ? 0 : r->applicable == 0 ? 1 : 2]++;
  exp_count_add(&w->pathways, r->pathway ? r->pathway
                : r->applicable == 0 ? "(not applicable)"
                : r->applicable < 0 ? "(cannot tell)" : "(none)", 1);
  for (int i = 0; i < r->items.n; i++) {
    const pw_item *it = &r->items.v[i];
    if (it->blocked) {
      pw_buf_reset(key);
      pw_buf_addf(key, "%s: %s", it->rule ? it->rule : "?", it->id);
      if (key->failed) w->blocks.failed = 1;
      else exp_count_add(&w->blocks, key->data, 1);
    } else if (it->source == PW_SRC_PROTOCOL) {
      exp_count_add(&w->recs, it->id, 1);
    }
  }
  for (int i = 0; i < r->missing.n; i++) exp_count_add(&w->missing, r->missing.v[i].fact, 1);
}

static void batch_line(void *arg, const char *line, size_t len, long lineno, pw_buf *out) {
  bworker *w = arg;
  pw_error err;
  pw_status rc = w->wi ? pw_whatif_eval(w->e, line, len, w->flags, 0, w->wi, out, &err)
                       : pw_engine_eval(w->e, line, len, w->flags, out, &err);
  if (rc == PW_OK) {
    pw_buf_add(out, "\n", 1);
    count_result(w, pw_engine_result(w->e));
    if (w->wi) exp_wicount_add(&w->wic, w->wi);
    return;
  }
  char field[128];
  if (rc == PW_EINPUT) exp_error_field(err.msg, field, sizeof field);
  exp_error_record(out, lineno, &err, rc == PW_EINPUT ? field : NULL);
  w->failed++;
  if (rc != PW_EINPUT) w->protocol_failed++;
  exp_count_add(&w->err_status, pw_status_name(rc), 1);
  if (rc == PW_EINPUT) exp_count_add(&w->err_fields, field, 1);
  if (w->nfirst < FIRST_ERRORS) {
    w->first[w->nfirst].line = lineno;
    w->first[w->nfirst++].msg = strdup(err.msg);
  }
}

static int by_line(const void *a, const void *b) {
  const first_error *x = a, *y = b;
  return (x->line > y->line) - (x->line < y->line);
}

/* Merge workers 1.. into worker 0. */
static void merge(bworker *w, int n) {
  first_error all[FIRST_ERRORS * 256];
  int k = 0;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < w[i].nfirst; j++) all[k++] = w[i].first[j];
  qsort(all, (size_t)k, sizeof all[0], by_line);
  for (int i = FIRST_ERRORS; i < k; i++) free(all[i].msg);
  w[0].nfirst = k < FIRST_ERRORS ? k : FIRST_ERRORS;
  memcpy(w[0].first, all, sizeof(first_error) * (size_t)w[0].nfirst);
  for (int i = 1; i < n; i++) {
    w[i].nfirst = 0;   /* their messages moved to w[0] or were freed */
    w[0].ok += w[i].ok;
    w[0].failed += w[i].failed;
    w[0].protocol_failed += w[i].protocol_failed;
    for (int a = 0; a < 3; a++) w[0].applicable[a] += w[i].applicable[a];
    exp_count_merge(&w[0].pathways, &w[i].pathways);
    exp_count_merge(&w[0].recs, &w[i].recs);
    exp_count_merge(&w[0].blocks, &w[i].blocks);
    exp_count_merge(&w[0].missing, &w[i].missing);
    exp_count_merge(&w[0].err_fields, &w[i].err_fields);
    exp_count_merge(&w[0].err_status, &w[i].err_status);
    exp_wicount_merge(&w[0].wic, &w[i].wic);
  }
}

static void summary_text(pw_buf *b, const bworker *w, const exp_pipeline *p, int jobs) {
  uint64_t n = w->ok + w->failed;
  pw_buf_addf(b, "pathwise batch: %llu cases in %.2f s (%.0f cases/s, %d thread%s)\n",
              (unsigned long long)n, p->seconds, p->seconds > 0 ? (double)n / p->seconds : 0.0,
              jobs, jobs == 1 ? "" : "s");
  pw_buf_addf(b, "  protocol %s %s\n", pw_engine_protocol_id(w->e), pw_engine_protocol_version(w->e));
  pw_buf_addf(b, "  evaluated %llu, errors %llu", (unsigned long long)w->ok, (unsigned long long)w->failed);
  if (p->blank) pw_buf_addf(b, ", blank lines skipped %ld", p->blank);
  pw_buf_addf(b, "\n  applicable: yes %llu, no %llu, cannot tell %llu\n",
              (unsigned long long)w->applicable[0], (unsigned long long)w->applicable[1],
              (unsigned long long)w->applicable[2]);
  exp_text_top(b, "pathways (% of evaluated cases):", &w->pathways, 20, w->ok);
  exp_text_top(b, "most frequent recommendations:", &w->recs, 10, w->ok);
  exp_text_top(b, "most frequent blocks (rule: item):", &w->blocks, 10, w->ok);
  if (w->failed) {
    exp_text_top(b, "errors by status:", &w->err_status, 10, n);
    exp_text_top(b, "invalid input by field:", &w->err_fields, 10, n);
    pw_buf_adds(b, "first errors:\n");
    for (int i = 0; i < w->nfirst; i++) pw_buf_addf(b, "  line %ld: %s\n", w->first[i].line, w->first[i].msg);
  }
  if (w->wi) exp_wicount_text(b, &w->wic);
}

static void summary_json(pw_buf *b, const bworker *w, const exp_pipeline *p, int jobs) {
  uint64_t n = w->ok + w->failed;
  pw_jsonw j;
  pw_jsonw_init(&j, b);
  pw_jsonw_begin_object(&j);
  pw_jsonw_field_int(&j, "cases", (long long)n);
  pw_jsonw_field_int(&j, "evaluated", (long long)w->ok);
  pw_jsonw_field_int(&j, "errors", (long long)w->failed);
  pw_jsonw_field_int(&j, "blank_lines", p->blank);
  pw_jsonw_key(&j, "seconds");
  pw_jsonw_rawf(&j, "%.3f", p->seconds);
  pw_jsonw_key(&j, "cases_per_second");
  pw_jsonw_rawf(&j, "%.1f", p->seconds > 0 ? (double)n / p->seconds : 0.0);
  pw_jsonw_field_int(&j, "jobs", jobs);
  pw_jsonw_key(&j, "protocol");
  pw_engine_protocol_json(w->e, pw_jsonw_value(&j));
  pw_jsonw_key(&j, "applicable");
  pw_jsonw_begin_object(&j);
  pw_jsonw_field_int(&j, "yes", (long long)w->applicable[0]);
  pw_jsonw_field_int(&j, "no", (long long)w->applicable[1]);
  pw_jsonw_field_int(&j, "cannot_tell", (long long)w->applicable[2]);
  pw_jsonw_end_object(&j);
  exp_json_field_counts(&j, "pathways", &w->pathways);
  exp_json_field_counts(&j, "recommendations", &w->recs);
  exp_json_field_counts(&j, "blocks", &w->blocks);
  exp_json_field_counts(&j, "missing", &w->missing);
  exp_json_field_counts(&j, "errors_by_status", &w->err_status);
  exp_json_field_counts(&j, "errors_by_field", &w->err_fields);
  pw_jsonw_key(&j, "first_errors");
  pw_jsonw_begin_array(&j);
  for (int i = 0; i < w->nfirst; i++) {
    pw_jsonw_begin_object(&j);
    pw_jsonw_field_int(&j, "line", w->first[i].line);
    pw_jsonw_field_str(&j, "message", w->first[i].msg);
    pw_jsonw_end_object(&j);
  }
  pw_jsonw_end_array(&j);
  if (w->wi) { pw_jsonw_key(&j, "what_if"); exp_wicount_json(pw_jsonw_value(&j), &w->wic); }
  pw_jsonw_end_object(&j);
  pw_buf_add(b, "\n", 1);
}

static void free_worker(bworker *w) {
  pw_engine_free(w->e);
  exp_count_free(&w->pathways);
  exp_count_free(&w->recs);
  exp_count_free(&w->blocks);
  exp_count_free(&w->missing);
  exp_count_free(&w->err_fields);
  exp_count_free(&w->err_status);
  pw_buf_free(&w->key);
  for (int i = 0; i < w->nfirst; i++) free(w->first[i].msg);
  pw_whatif_free(w->wi);
  exp_wicount_free(&w->wic);
}

int pw_batch_main(int argc, char **argv) {
  static const struct option longs[] = {
    PW_OPT_LONG_PROTOCOL, {"trace", no_argument, 0, 't'},
    {"summary", required_argument, 0, 'S'}, {"quiet", no_argument, 0, 'q'},
    {"strict", no_argument, 0, 'X'}, {"what-if", no_argument, 0, 'w'}, {"help", no_argument, 0, 'h'},
    EXP_LONG_OPTIONS, {0, 0, 0, 0}};
  exp_opts o;
  const char *protocol = NULL, *summary = NULL;
  int trace = 0, quiet = 0, strict = 0, what_if = 0, c, code;
  exp_opts_init(&o);
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "p:tqwj:h", longs, NULL)) != -1) {
    switch (c) {
    case 't': trace = 1; break;
    case 'S': summary = optarg; break;
    case 'q': quiet = 1; break;
    case 'X': strict = 1; break;
    case 'w': what_if = 1; break;
    case 'h': fputs(usage_batch, stdout); return PW_EX_OK;
    default:
      if ((code = exp_shared_opt(c, optarg, &o, "batch", usage_batch)) != -2) {
        if (code >= 0) return code;
        break;
      }
      return exp_usage("batch", usage_batch, "unknown or incomplete option '%s'", argv[optind - 1]);
    }
  }
  protocol = o.cmd.protocol;
  if (optind != argc - 1) return exp_usage("batch", usage_batch, "expected exactly one COHORT.jsonl (or - for stdin)");
  int jobs = exp_jobs(&o);
  bworker *w = calloc((size_t)jobs, sizeof *w);
  void **states = calloc((size_t)jobs, sizeof *states);
  if (!w || !states) { free(w); free(states); fprintf(stderr, "pathwise: out of memory\n"); return PW_EX_SOFTWARE; }
  code = PW_EX_OK;
  for (int i = 0; i < jobs && code == PW_EX_OK; i++) {
    w[i].e = exp_engine(protocol, &o, NULL, 0, &code);
    w[i].flags = trace ? PW_EVAL_TRACE : 0;
    if (what_if && code == PW_EX_OK && !(w[i].wi = pw_whatif_new())) code = PW_EX_SOFTWARE;
    states[i] = &w[i];
  }
  if (code == PW_EX_OK) {
    exp_pipeline p = {0};
    p.input = argv[optind];
    p.jobs = jobs;
    p.progress = exp_show_progress(&o);
    p.workers = states;
    p.process = batch_line;
    code = exp_pipeline_run(&p);
    if (code == PW_EX_OK || code == PW_EX_IOERR) {
      merge(w, jobs);
      pw_buf b = {0};
      if (!quiet) {
        summary_text(&b, &w[0], &p, jobs);
        fwrite(b.data, 1, b.len, stderr);
      }
      if (summary) {
        FILE *f = fopen(summary, "wb");
        pw_buf_reset(&b);
        summary_json(&b, &w[0], &p, jobs);
        int wc = f ? exp_write(f, summary, &b) : PW_EX_IOERR;
        if (!f) perror(summary);
        if (f && fclose(f)) wc = PW_EX_IOERR;
        if (code == PW_EX_OK) code = wc;
      }
      pw_buf_free(&b);
      if (code == PW_EX_OK && strict && w[0].failed)
        code = w[0].protocol_failed ? PW_EX_SOFTWARE : PW_EX_DATAERR;
    }
  }
  for (int i = 0; i < jobs; i++) free_worker(&w[i]);
  free(w);
  free(states);
  return code;
}
