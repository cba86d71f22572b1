/*
** pw_bench.c: the in-process benchmark of the full evaluation path.
**
**   pw_bench [--protocol FILE] [--reps R] [--index-iters N] [--mixed-iters N]
**            [--stage-iters N] [--cpu K|-1] [--warmup-ms MS] [--json OUT]
**            [--quiet] INDEX.json [CASE.json...]
**
** The full path is pw_engine_eval: JSON text in (gate, lua-cjson decode),
** facts validation, the protocol in its sandbox, the C safety kernel, JSON
** text out (the facts sha256 is computed only when the decision log asks
** for it: timed as a stage of its own, not part of the full path). Every figure is measured R times (default
** 7) and the median of the R repetitions is reported, with the spread
** (min..max of the repetition figures) beside it, because these machines
** drift by up to 1.7x over minutes.
**
** - index: N evaluations of the first file; p50/p99/p999/mean latency and
**   evaluations per second (N / wall time of the loop).
** - mixed: the same over every file in turn (at least 16 are expected).
** - breakdown (index case): each stage timed on its own, per call:
**   gate; gate + cjson decode; facts validation (pw_facts_from_lua);
**   the C safety kernel (pw_safety_apply on a copy of the protocol's
**   items); canonical facts + sha256; JSON encode (pw_result_json);
**   evaluation without the protocol (PW_EVAL_ORDERS_ONLY) and with it.
**   The protocol's share is (eval - eval orders-only - kernel).
** - what-if (index case): eval --what-if's work (pw_whatif_eval, JSON out):
**   the patient, each value of each missing fact and panel, the patient
**   again; the number of evaluations and the median time per what-if.
**
** The process pins itself to one CPU (default: the last one) with
** sched_setaffinity and reports where it ran.
*/
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <getopt.h>
#include <lauxlib.h>
#include <lua.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include "engine.h"
#include "facts.h"
#include "gate.h"
#include "result.h"
#include "safety.h"
#include "whatif.h"

#ifndef PW_SOURCE_DIR
#define PW_SOURCE_DIR "."
#endif

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static int cmp_dbl(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double pct(const uint64_t *sorted, size_t n, double p) {
  if (!n) return 0;
  size_t i = (size_t)((double)(n - 1) * p + 0.5);
  return (double)sorted[i] / 1000.0;   /* us */
}

static double median(double *v, int n) {
  double t[64];
  memcpy(t, v, sizeof *v * (size_t)n);
  qsort(t, (size_t)n, sizeof *t, cmp_dbl);
  return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

static double vmin(const double *v, int n) { double m = v[0]; for (int i = 1; i < n; i++) if (v[i] < m) m = v[i]; return m; }
static double vmax(const double *v, int n) { double m = v[0]; for (int i = 1; i < n; i++) if (v[i] > m) m = v[i]; return m; }

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  pw_buf b = {0};
  char chunk[8192];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) pw_buf_add(&b, chunk, n);
  fclose(f);
  if (!b.data) pw_buf_add(&b, "", 0);
  *len = b.len;
  return b.data;
}

typedef struct bcase {
  const char *path, *name;
  char *json;
  size_t len;
} bcase;

/* ---- figures of one kind, over repetitions ---- */

#define MAXREPS 64
typedef struct series { double v[MAXREPS]; int n; } series;
static void put(series *s, double x) { if (s->n < MAXREPS) s->v[s->n++] = x; }
static double med(const series *s) { return s->n ? median((double *)s->v, s->n) : 0; }

typedef struct latfig { series p50, p99, p999, mean, max, rate; } latfig;

static void lat_add(latfig *f, uint64_t *lat, size_t n, uint64_t wall_ns) {
  double sum = 0;
  for (size_t i = 0; i < n; i++) sum += (double)lat[i];
  qsort(lat, n, sizeof *lat, cmp_u64);
  put(&f->p50, pct(lat, n, 0.50));
  put(&f->p99, pct(lat, n, 0.99));
  put(&f->p999, pct(lat, n, 0.999));
  put(&f->max, (double)lat[n - 1] / 1000.0);
  put(&f->mean, sum / (double)n / 1000.0);
  put(&f->rate, (double)n * 1e9 / (double)wall_ns);
}

/* ---- the machine ---- */

static void cpu_model(char *out, size_t n) {
  snprintf(out, n, "unknown");
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f) return;
  char line[512];
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, "model name", 10)) {
      char *p = strchr(line, ':');
      if (p) {
        p++;
        while (*p == ' ' || *p == '\t') p++;
        p[strcspn(p, "\n")] = '\0';
        snprintf(out, n, "%s", p);
      }
      break;
    }
  fclose(f);
}

static void git_commit(char *out, size_t n) {
  snprintf(out, n, "unknown");
  FILE *p = popen("git -C '" PW_SOURCE_DIR "' rev-parse --short=12 HEAD 2>/dev/null; "
                  "git -C '" PW_SOURCE_DIR "' status --porcelain --untracked-files=no 2>/dev/null | head -1", "r");
  if (!p) return;
  char a[128] = "", b[256] = "";
  if (fgets(a, sizeof a, p)) {
    a[strcspn(a, "\n")] = '\0';
    if (fgets(b, sizeof b, p) && b[0]) snprintf(out, n, "%s+dirty", a);
    else if (a[0]) snprintf(out, n, "%s", a);
  }
  pclose(p);
}

static void json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') fputc('\\', f);
    if ((unsigned char)*s < 0x20) { fprintf(f, "\\u%04x", *s); continue; }
    fputc(*s, f);
  }
  fputc('"', f);
}

static void json_series(FILE *f, const char *k, const series *s, int last) {
  fprintf(f, "\"%s\":{\"median\":%.3f,\"min\":%.3f,\"max\":%.3f}%s", k, med(s),
          s->n ? vmin(s->v, s->n) : 0, s->n ? vmax(s->v, s->n) : 0, last ? "" : ",");
}

static void json_lat(FILE *f, const char *k, const latfig *l, long iters) {
  fprintf(f, "\"%s\":{\"iters_per_rep\":%ld,", k, iters);
  json_series(f, "p50_us", &l->p50, 0);
  json_series(f, "p99_us", &l->p99, 0);
  json_series(f, "p999_us", &l->p999, 0);
  json_series(f, "max_us", &l->max, 0);
  json_series(f, "mean_us", &l->mean, 0);
  json_series(f, "evals_per_s", &l->rate, 1);
  fprintf(f, "}");
}

/* ---- stages ---- */

enum { ST_GATE, ST_DECODE, ST_VALIDATE, ST_KERNEL, ST_SHA, ST_ENCODE, ST_ORDERS_ONLY, ST_EVAL, ST_FULL, ST_N };
static const char *const stage_key[ST_N] = {
  "gate", "gate_decode", "validate", "kernel", "facts_sha256", "encode", "eval_orders_only", "eval", "full"};

static pw_engine *E;
static pw_error ERR;

static void die_eval(const char *what, const char *name) {
  fprintf(stderr, "pw_bench: %s %s: %s\n", what, name, ERR.msg);
  exit(1);
}

static double median_ns(uint64_t *t, long n) {
  qsort(t, (size_t)n, sizeof *t, cmp_u64);
  return (double)t[n / 2];
}

/* Per-call medians (ns) of every stage for one case. */
static void stages(const bcase *c, long iters, uint64_t *t, double out[ST_N]) {
  lua_State *L = pw_engine_lua(E);
  int top = lua_gettop(L);
  pw_buf buf = {0};
  char msg[300];
  pw_gate_limits gl = {0, 32, 1024};

  for (long i = 0; i < iters; i++) {
    uint64_t a = now_ns();
    int rc = pw_gate_check(c->json, c->len, &gl, NULL, msg, sizeof msg);
    t[i] = now_ns() - a;
    if (rc) { fprintf(stderr, "pw_bench: gate: %s\n", msg); exit(1); }
  }
  out[ST_GATE] = median_ns(t, iters);

  for (long i = 0; i < iters; i++) {
    uint64_t a = now_ns();
    if (pw_engine_decode(E, c->json, c->len, NULL, &ERR)) die_eval("decode", c->name);
    lua_settop(L, top);
    t[i] = now_ns() - a;
  }
  out[ST_DECODE] = median_ns(t, iters);

  /* one decoded table for the stages after decoding */
  if (pw_engine_decode(E, c->json, c->len, NULL, &ERR)) die_eval("decode", c->name);
  int tbl = lua_gettop(L);

  pw_facts facts;
  pw_arena arena = {0};
  for (long i = 0; i < iters; i++) {
    pw_arena_reset(&arena);
    uint64_t a = now_ns();
    int rc = pw_facts_from_lua(L, tbl, &facts, &arena, msg, sizeof msg);
    t[i] = now_ns() - a;
    if (rc) { fprintf(stderr, "pw_bench: validate %s: %s\n", c->name, msg); exit(1); }
  }
  out[ST_VALIDATE] = median_ns(t, iters);

  for (long i = 0; i < iters; i++) {
    uint64_t a = now_ns();
    pw_buf_reset(&buf);
    char hex[65];
    pw_facts_canonical(&facts, &buf);
    pw_sha256_hex(buf.data, buf.len, hex);
    t[i] = now_ns() - a;
  }
  out[ST_SHA] = median_ns(t, iters);

  for (long i = 0; i < iters; i++) {
    uint64_t a = now_ns();
    if (pw_engine_eval_table(E, tbl, 0, PW_EVAL_ORDERS_ONLY, NULL, &ERR)) die_eval("eval (orders only)", c->name);
    t[i] = now_ns() - a;
  }
  out[ST_ORDERS_ONLY] = median_ns(t, iters);

  for (long i = 0; i < iters; i++) {
    uint64_t a = now_ns();
    if (pw_engine_eval_table(E, tbl, 0, 0, NULL, &ERR)) die_eval("eval", c->name);
    t[i] = now_ns() - a;
  }
  out[ST_EVAL] = median_ns(t, iters);

  /* The kernel alone, on a copy of this evaluation's items with their
  ** verdicts cleared (the items are the protocol's plus proposed orders). */
  const pw_result *res = pw_engine_result(E);
  pw_result kr;
  memset(&kr, 0, sizeof kr);
  int nitems = res->items.n;
  pw_item *items = malloc(sizeof *items * (size_t)(nitems ? nitems : 1));
  memcpy(items, res->items.v, sizeof *items * (size_t)nitems);
  for (int j = 0; j < nitems; j++) {
    items[j].blocked = 0;
    items[j].rule = items[j].reason = NULL;
    memset(&items[j].rule_cites, 0, sizeof items[j].rule_cites);
  }
  for (long i = 0; i < iters; i++) {
    pw_result_reset(&kr);
    for (int j = 0; j < nitems; j++) *pw_result_add_item(&kr) = items[j];
    uint64_t a = now_ns();
    pw_safety_apply(&facts, &kr);
    t[i] = now_ns() - a;
  }
  out[ST_KERNEL] = median_ns(t, iters);
  free(items);
  pw_result_free(&kr);

  pw_protocol_info info;
  memset(&info, 0, sizeof info);
  info.id = (char *)pw_engine_protocol_id(E);
  info.version = (char *)pw_engine_protocol_version(E);
  info.title = (char *)pw_engine_protocol_title(E);
  snprintf(info.sha256, sizeof info.sha256, "%s", pw_engine_protocol_sha256(E));
  for (long i = 0; i < iters; i++) {
    pw_buf_reset(&buf);
    uint64_t a = now_ns();
    pw_result_json(res, &info, &buf);
    t[i] = now_ns() - a;
  }
  out[ST_ENCODE] = median_ns(t, iters);
  lua_settop(L, top);

  for (long i = 0; i < iters; i++) {
    pw_buf_reset(&buf);
    uint64_t a = now_ns();
    if (pw_engine_eval(E, c->json, c->len, 0, &buf, &ERR)) die_eval("eval", c->name);
    t[i] = now_ns() - a;
  }
  out[ST_FULL] = median_ns(t, iters);

  pw_arena_free(&arena);
  pw_buf_free(&buf);
}

/* One timed run of n full-path evaluations cycling over cases[0..nc). */
static uint64_t run_full(const bcase *cases, int nc, long n, uint64_t *lat, pw_buf *out) {
  uint64_t t0 = now_ns();
  for (long i = 0; i < n; i++) {
    const bcase *c = &cases[i % nc];
    pw_buf_reset(out);
    uint64_t a = now_ns();
    if (pw_engine_eval(E, c->json, c->len, 0, out, &ERR)) die_eval("eval", c->name);
    lat[i] = now_ns() - a;
  }
  return now_ns() - t0;
}

/* One what-if of the index case, timed iters times: the median in us. */
static double run_whatif(const bcase *c, long iters, uint64_t *t, int *evals) {
  pw_whatif *w = pw_whatif_new();
  pw_buf out = {0};
  for (long i = 0; i < iters; i++) {
    pw_buf_reset(&out);
    uint64_t a = now_ns();
    if (pw_whatif_eval(E, c->json, c->len, 0, 0, w, &out, &ERR)) die_eval("what-if", c->name);
    t[i] = now_ns() - a;
  }
  *evals = pw_whatif_evaluations(w);
  pw_whatif_free(w);
  pw_buf_free(&out);
  return median_ns(t, iters) / 1000.0;
}

static void usage(FILE *f) {
  fprintf(f, "usage: pw_bench [--protocol FILE] [--reps R] [--index-iters N] [--mixed-iters N]\n"
             "                [--stage-iters N] [--cpu K|-1] [--warmup-ms MS] [--json OUT] [--quiet]\n"
             "                INDEX.json [CASE.json...]\n"
             "Pins itself to cpu K (default: the last; -1: no pinning). Warm-up: MS of\n"
             "evaluations before measuring (default 500; 0 for instruction counting).\n");
}

int main(int argc, char **argv) {
  static const struct option lo[] = {
    {"protocol", required_argument, 0, 'p'}, {"reps", required_argument, 0, 'r'},
    {"index-iters", required_argument, 0, 'i'}, {"mixed-iters", required_argument, 0, 'm'},
    {"stage-iters", required_argument, 0, 's'}, {"cpu", required_argument, 0, 'c'},
    {"json", required_argument, 0, 'j'}, {"quiet", no_argument, 0, 'q'},
    {"warmup-ms", required_argument, 0, 'w'},
    {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  const char *protocol = PW_SOURCE_DIR "/scripts/mrc_second_line.lua", *json_out = NULL;
  int reps = 7, cpu = -2, quiet = 0, warmup_ms = 500;
  long index_iters = 20000, mixed_iters = 22000, stage_iters = 4000;
  int o;
  while ((o = getopt_long(argc, argv, "p:r:i:m:s:c:j:qw:h", lo, NULL)) != -1) {
    switch (o) {
    case 'p': protocol = optarg; break;
    case 'r': reps = atoi(optarg); break;
    case 'i': index_iters = atol(optarg); break;
    case 'm': mixed_iters = atol(optarg); break;
    case 's': stage_iters = atol(optarg); break;
    case 'c': cpu = atoi(optarg); break;
    case 'j': json_out = optarg; break;
    case 'q': quiet = 1; break;
    case 'w': warmup_ms = atoi(optarg); break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 64;
    }
  }
  if (optind >= argc || reps < 1 || reps > MAXREPS || index_iters < 100 || mixed_iters < 100 || stage_iters < 10) {
    usage(stderr);
    return 64;
  }

  /* placement */
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  if (cpu == -2) cpu = (int)ncpu - 1;
  char placement[64] = "not pinned";
  if (cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set)) {
      fprintf(stderr, "pw_bench: cannot pin to cpu %d: %s\n", cpu, strerror(errno));
      return 1;
    }
    snprintf(placement, sizeof placement, "pinned to cpu %d", cpu);
  }

  int nc = argc - optind;
  bcase *cases = calloc((size_t)nc, sizeof *cases);
  for (int i = 0; i < nc; i++) {
    cases[i].path = argv[optind + i];
    const char *s = strrchr(cases[i].path, '/');
    cases[i].name = s ? s + 1 : cases[i].path;
    cases[i].json = read_file(cases[i].path, &cases[i].len);
    if (!cases[i].json) { fprintf(stderr, "pw_bench: cannot read %s: %s\n", cases[i].path, strerror(errno)); return 66; }
  }

  E = pw_engine_new(NULL, &ERR);
  if (!E) { fprintf(stderr, "pw_bench: %s\n", ERR.msg); return 1; }
  if (pw_engine_load(E, protocol, &ERR)) { fprintf(stderr, "pw_bench: %s\n", ERR.msg); return 78; }

  pw_buf out = {0};
  size_t out_bytes_index = 0;
  double out_bytes_mixed = 0;
  for (int i = 0; i < nc; i++) {   /* every case must evaluate */
    pw_buf_reset(&out);
    if (pw_engine_eval(E, cases[i].json, cases[i].len, 0, &out, &ERR)) die_eval("eval", cases[i].name);
    if (i == 0) out_bytes_index = out.len;
    out_bytes_mixed += (double)out.len / nc;
  }

  long maxn = index_iters > mixed_iters ? index_iters : mixed_iters;
  if (stage_iters > maxn) maxn = stage_iters;
  uint64_t *lat = malloc(sizeof *lat * (size_t)maxn);

  /* warm-up: caches, the allocator, the Lua GC's steady state */
  uint64_t w0 = now_ns();
  while (now_ns() - w0 < (uint64_t)warmup_ms * 1000000ull) run_full(cases, nc, maxn < 1000 ? maxn : 1000, lat, &out);

  latfig fi, fm;
  memset(&fi, 0, sizeof fi);
  memset(&fm, 0, sizeof fm);
  series st[ST_N];
  memset(st, 0, sizeof st);
  series *percase = calloc((size_t)nc, sizeof *percase);
  series wi = {0};
  int wi_evals = 0;
  long wi_iters = index_iters / 40 > 100 ? index_iters / 40 : 100;
  uint64_t t_start = now_ns();

  for (int r = 0; r < reps; r++) {
    uint64_t wall = run_full(cases, 1, index_iters, lat, &out);
    lat_add(&fi, lat, (size_t)index_iters, wall);

    wall = run_full(cases, nc, mixed_iters, lat, &out);
    /* per-case medians from the same run */
    long per = mixed_iters / nc;
    uint64_t *tmp = malloc(sizeof *tmp * (size_t)(per + 1));
    for (int c = 0; c < nc; c++) {
      long k = 0;
      for (long i = c; i < mixed_iters; i += nc) tmp[k++] = lat[i];
      put(&percase[c], median_ns(tmp, k) / 1000.0);
    }
    free(tmp);
    lat_add(&fm, lat, (size_t)mixed_iters, wall);

    double s[ST_N];
    stages(&cases[0], stage_iters, lat, s);
    for (int k = 0; k < ST_N; k++) put(&st[k], s[k] / 1000.0);
    put(&wi, run_whatif(&cases[0], wi_iters, lat, &wi_evals));
  }
  double elapsed = (double)(now_ns() - t_start) / 1e9;

  int ran_on = sched_getcpu();
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  lua_State *L = pw_engine_lua(E);
  int lua_kb = lua_gc(L, LUA_GCCOUNT);

  char model[256], commit[160];
  struct utsname un;
  uname(&un);
  cpu_model(model, sizeof model);
  git_commit(commit, sizeof commit);

  double g = med(&st[ST_GATE]), dec = med(&st[ST_DECODE]), val = med(&st[ST_VALIDATE]);
  double ker = med(&st[ST_KERNEL]), sha = med(&st[ST_SHA]), enc = med(&st[ST_ENCODE]);
  double oo = med(&st[ST_ORDERS_ONLY]), ev = med(&st[ST_EVAL]), full = med(&st[ST_FULL]);
  double proto = ev - oo - ker;
  if (proto < 0) proto = 0;
  double other = full - (dec + val + proto + ker + enc);   /* the facts sha256 is not in the full path: only the decision log asks for it */

  if (!quiet) {
    printf("pathwise in-process benchmark: %s, %ld cpus, %s, %s %s\n", model, ncpu, placement, un.sysname, un.release);
    printf("commit %s; protocol %s; %d repetitions (median shown, [min..max] of repetitions); %.1f s\n",
           commit, protocol, reps, elapsed);
    printf("\n%-34s %9s %9s %9s %9s %12s\n", "full path (JSON in -> JSON out)", "p50 us", "p99 us", "p999 us", "mean us", "evals/s");
    printf("%-34s %9.2f %9.2f %9.2f %9.2f %12.0f   [p50 %.2f..%.2f]\n", "index case", med(&fi.p50), med(&fi.p99),
           med(&fi.p999), med(&fi.mean), med(&fi.rate), vmin(fi.p50.v, fi.p50.n), vmax(fi.p50.v, fi.p50.n));
    char lbl[64];
    snprintf(lbl, sizeof lbl, "mixed set (%d cases)", nc);
    printf("%-34s %9.2f %9.2f %9.2f %9.2f %12.0f   [p50 %.2f..%.2f]\n", lbl, med(&fm.p50), med(&fm.p99),
           med(&fm.p999), med(&fm.mean), med(&fm.rate), vmin(fm.p50.v, fm.p50.n), vmax(fm.p50.v, fm.p50.n));
    printf("p99/p50: index %.2f, mixed %.2f; output %zu bytes (index), %.0f bytes (mixed mean)\n",
           med(&fi.p99) / med(&fi.p50), med(&fm.p99) / med(&fm.p50), out_bytes_index, out_bytes_mixed);
    printf("\nwhere the time goes, index case (per-call medians, us)\n");
    printf("  %-44s %7.2f\n", "gate (strict JSON check)", g);
    printf("  %-44s %7.2f\n", "lua-cjson decode", dec - g);
    printf("  %-44s %7.2f\n", "facts validation (C)", val);
    printf("  %-44s %7.2f\n", "protocol (Lua + out builder + views)", proto);
    printf("  %-44s %7.2f\n", "safety kernel (C)", ker);
    printf("  %-44s %7.2f\n", "canonical facts + sha256 (decision log only)", sha);
    printf("  %-44s %7.2f\n", "JSON encode (pw_result_json)", enc);
    printf("  %-44s %7.2f\n", "other (reset, unknown fields, glue)", other);
    printf("  %-44s %7.2f\n", "full path, measured", full);
    printf("  (eval without protocol %.2f, with protocol %.2f, no encode)\n", oo, ev);
    printf("\nwhat-if, index case (eval --what-if, JSON out): %d evaluations + 2 of the patient,\n"
           "  %.1f us per what-if [%.1f..%.1f], %.2f us per evaluation\n", wi_evals, med(&wi),
           vmin(wi.v, wi.n), vmax(wi.v, wi.n), med(&wi) / (wi_evals + 2));
    printf("\nper case, median us:\n");
    for (int c = 0; c < nc; c++) printf("  %-44s %7.2f\n", cases[c].name, med(&percase[c]));
    printf("\nLua heap after the run: %d KiB; peak RSS %ld KiB\n", lua_kb, ru.ru_maxrss);
  }

  if (json_out) {
    FILE *f = fopen(json_out, "w");
    if (!f) { fprintf(stderr, "pw_bench: %s: %s\n", json_out, strerror(errno)); return 73; }
    fprintf(f, "{\"machine\":{\"nproc\":%ld,\"cpu_model\":", ncpu);
    json_str(f, model);
    fprintf(f, ",\"kernel\":");
    json_str(f, un.release);
    fprintf(f, "},\"commit\":");
    json_str(f, commit);
    fprintf(f, ",\"settings\":{\"protocol\":");
    json_str(f, protocol);
    fprintf(f, ",\"reps\":%d,\"placement\":", reps);
    json_str(f, placement);
    fprintf(f, ",\"cpu\":%d,\"ran_on_cpu\":%d,\"cases\":%d,\"stage_iters\":%ld},", cpu, ran_on, nc, stage_iters);
    json_lat(f, "index", &fi, index_iters);
    fprintf(f, ",");
    json_lat(f, "mixed", &fm, mixed_iters);
    fprintf(f, ",\"p99_over_p50\":{\"index\":%.3f,\"mixed\":%.3f}", med(&fi.p99) / med(&fi.p50), med(&fm.p99) / med(&fm.p50));
    fprintf(f, ",\"output_bytes\":{\"index\":%zu,\"mixed_mean\":%.0f}", out_bytes_index, out_bytes_mixed);
    fprintf(f, ",\"breakdown_us\":{\"gate\":%.3f,\"cjson_decode\":%.3f,\"validate\":%.3f,\"protocol\":%.3f,"
               "\"kernel\":%.3f,\"facts_sha256\":%.3f,\"encode\":%.3f,\"other\":%.3f,\"full\":%.3f},",
            g, dec - g, val, proto, ker, sha, enc, other, full);
    fprintf(f, "\"what_if\":{\"evaluations\":%d,\"us\":{\"median\":%.3f,\"min\":%.3f,\"max\":%.3f}},",
            wi_evals, med(&wi), vmin(wi.v, wi.n), vmax(wi.v, wi.n));
    fprintf(f, "\"stages_us\":{");
    for (int k = 0; k < ST_N; k++) json_series(f, stage_key[k], &st[k], k == ST_N - 1);
    fprintf(f, "},\"per_case_p50_us\":{");
    for (int c = 0; c < nc; c++) {
      json_str(f, cases[c].name);
      fprintf(f, ":%.3f%s", med(&percase[c]), c == nc - 1 ? "" : ",");
    }
    fprintf(f, "},\"lua_heap_kib\":%d,\"peak_rss_kib\":%ld,\"elapsed_s\":%.2f}\n", lua_kb, ru.ru_maxrss, elapsed);
    fclose(f);
  }

  pw_buf_free(&out);
  pw_engine_free(E);
  for (int i = 0; i < nc; i++) free(cases[i].json);
  free(cases);
  free(percase);
  free(lat);
  return 0;
}
