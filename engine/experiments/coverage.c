/*
** coverage.c: `pathwise check --coverage PROTOCOL COHORT`, which lines and
** branches of a protocol a cohort exercises, and how often each safety
** rule fired.
**
** Lines: the engine counts line events of the protocol's chunk
** (pw_engine_coverage_*); a line is active when it holds code of a
** function reachable from the protocol table. Lua reports no branch
** events, so a branch here is an arm of an if statement found by a small
** Lua lexer: the if arm, each elseif arm and the else arm. An arm is
** covered when the first active line of its body ran. An arm whose body
** starts on its condition's line cannot be told from the condition and
** counts as covered when that line ran; an if without else has no arm for
** "no condition held", and `and`/`or` are not branches here.
*/
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include "exp.h"
#include "file.h"
#include "experiments.h"
#include "safety.h"

static const char *const usage_coverage =
  "usage: pathwise check --coverage [options] PROTOCOL.lua COHORT.jsonl|-\n"
  "\n"
  "Evaluate every case of a cohort (one facts object per line) with the\n"
  "protocol and report which of its lines and branches ran and which never\n"
  "did, and how often each safety rule fired (`pathwise cohort` makes a\n"
  "cohort).\n"
  "\n"
  "      --threshold P       exit 1 when line coverage is below P percent\n"
  "      --branch-threshold P  exit 1 when branch coverage is below P percent\n"
  "  -f, --format text|json  output format (default text)\n"
  "      --annotate          text: also print the whole source, each line with\n"
  "                          its count (##### = active, never ran; - = no code)\n"
  EXP_USAGE_SHARED
  "  -h, --help              this help\n"
  "\n"
  "what is counted:\n"
  "  lines     a line is active when it holds code of a function reachable\n"
  "            from the protocol table (applies, evaluate and the local\n"
  "            functions they use); top-level code runs once at load and is\n"
  "            not counted, nor is a function's closing `end` that never ran\n"
  "            (Lua puts the implicit return there; it never runs when every\n"
  "            path returns first). Line coverage = active lines that ran /\n"
  "            active lines.\n"
  "  branches  Lua reports lines, not branches, so a branch is an arm of an if\n"
  "            statement: the `if ... then` arm, each `elseif` arm and the\n"
  "            `else` arm. An arm is covered when the first active line of its\n"
  "            body ran. An arm written on its condition's line (`if x then\n"
  "            return end`) counts as covered when that line ran. An if without\n"
  "            else has no arm for \"no condition held\", and `and`/`or` are not\n"
  "            counted.\n"
  "  rules     each safety rule (and plugin rule): items blocked, and cases in\n"
  "            which it blocked at least one item; rules that never fired.\n"
  "\n"
  "exit codes: 0 ok, 1 coverage below a threshold, or the protocol failed on\n"
  "            any case (raised, budget or memory; not invalid facts lines),\n"
  "            whatever the thresholds: the first failures are printed with\n"
  "            their cohort line and the protocol's file:line (opa test\n"
  "            uses 2), 64 usage, 66 file not found, 74 read or write error,\n"
  "            78 protocol or plugin failed to load\n";

/* ---- if arms, found by a small Lua lexer ---- */

enum { ARM_IF, ARM_ELSEIF, ARM_ELSE };
static const char *const arm_names[] = {"if", "elseif", "else"};

typedef struct arm {
  int kind;
  int line;        /* of its if / elseif / else keyword */
  int if_line;     /* of the if statement it belongs to */
  int first, last; /* lines of the first and last token of its body; 0 = empty */
} arm;

typedef struct lexer {
  const char *s;
  size_t n, i;
  int line;
} lexer;

/* Length of a long bracket opening at s[i] ("[[", "[==["), level in *lvl; 0 if none. */
static size_t long_open(const lexer *x, size_t i, int *lvl) {
  if (i >= x->n || x->s[i] != '[') return 0;
  size_t j = i + 1;
  while (j < x->n && x->s[j] == '=') j++;
  if (j < x->n && x->s[j] == '[') { *lvl = (int)(j - i - 1); return j - i + 1; }
  return 0;
}

static void skip_long(lexer *x, int lvl) {
  while (x->i < x->n) {
    char c = x->s[x->i++];
    if (c == '\n') x->line++;
    else if (c == ']') {
      size_t j = x->i;
      int k = 0;
      while (j < x->n && x->s[j] == '=') { j++; k++; }
      if (k == lvl && j < x->n && x->s[j] == ']') { x->i = j + 1; return; }
    }
  }
}

/* Next token: 1 with a name/keyword in word (or "" for any other token),
** 0 at the end. *line is the token's line. */
static int next_token(lexer *x, char *word, size_t wn, int *line) {
  for (;;) {
    if (x->i >= x->n) return 0;
    char c = x->s[x->i];
    int lvl;
    size_t k;
    if (c == '\n') { x->line++; x->i++; continue; }
    if (isspace((unsigned char)c)) { x->i++; continue; }
    if (c == '-' && x->i + 1 < x->n && x->s[x->i + 1] == '-') {   /* comment */
      x->i += 2;
      if ((k = long_open(x, x->i, &lvl))) { x->i += k; skip_long(x, lvl); continue; }
      while (x->i < x->n && x->s[x->i] != '\n') x->i++;
      continue;
    }
    *line = x->line;
    word[0] = '\0';
    if ((k = long_open(x, x->i, &lvl))) { x->i += k; skip_long(x, lvl); return 1; }
    if (c == '"' || c == '\'') {
      x->i++;
      while (x->i < x->n && x->s[x->i] != c) {
        if (x->s[x->i] == '\\' && x->i + 1 < x->n) {
          x->i++;
          if (x->s[x->i] == 'z') {   /* \z skips the whitespace after it */
            x->i++;
            while (x->i < x->n && isspace((unsigned char)x->s[x->i])) x->line += x->s[x->i++] == '\n';
            continue;
          }
        }
        if (x->s[x->i] == '\n') x->line++;
        x->i++;
      }
      x->i++;
      return 1;
    }
    if (isalpha((unsigned char)c) || c == '_') {
      size_t j = 0;
      while (x->i < x->n && (isalnum((unsigned char)x->s[x->i]) || x->s[x->i] == '_')) {
        if (j + 1 < wn) word[j++] = x->s[x->i];
        x->i++;
      }
      word[j] = '\0';
      return 1;
    }
    if (isdigit((unsigned char)c) || (c == '.' && x->i + 1 < x->n && isdigit((unsigned char)x->s[x->i + 1]))) {
      char prev = 0;
      while (x->i < x->n) {
        char d = x->s[x->i];
        if (isalnum((unsigned char)d) || d == '.' ||
            ((d == '+' || d == '-') && (prev == 'e' || prev == 'E' || prev == 'p' || prev == 'P'))) {
          prev = d;
          x->i++;
        } else break;
      }
      return 1;
    }
    x->i++;   /* an operator or punctuation */
    return 1;
  }
}

enum { BLK_IF, BLK_FUNC, BLK_DO, BLK_REPEAT };

typedef struct blk { int kind, if_line, arm; } blk;   /* arm: index of the open arm, -1 none */

/* Find the arms of every if statement. Returns how many (at most max). */
static int find_arms(const char *src, size_t len, arm *arms, int max) {
  lexer x = {src, len, 0, 1};
  blk stack[512];
  int depth = 0, n = 0, line, want_body = -1, last_line = 1;
  char w[16];
  if (len > 2 && src[0] == '#') while (x.i < len && src[x.i] != '\n') x.i++;   /* #! line */
  while (next_token(&x, w, sizeof w, &line)) {
    if (want_body >= 0) {   /* the first token after then / else */
      if (strcmp(w, "elseif") && strcmp(w, "else") && strcmp(w, "end")) arms[want_body].first = line;
      want_body = -1;
    }
    blk *top = depth ? &stack[depth - 1] : NULL;
    int close_arm = top && top->kind == BLK_IF && top->arm >= 0 &&
                    (!strcmp(w, "elseif") || !strcmp(w, "else") || !strcmp(w, "end"));
    if (close_arm) {
      arm *a = &arms[top->arm];
      if (a->first) a->last = last_line;
      top->arm = -1;
    }
    if (!strcmp(w, "if")) {
      if (depth < 512) stack[depth++] = (blk){BLK_IF, line, -1};
      if (n < max) arms[n] = (arm){ARM_IF, line, line, 0, 0};
    } else if (!strcmp(w, "elseif") && top && top->kind == BLK_IF) {
      if (n < max) arms[n] = (arm){ARM_ELSEIF, line, top->if_line, 0, 0};
    } else if (!strcmp(w, "then") && top && top->kind == BLK_IF) {
      if (n < max) { top->arm = n; want_body = n; n++; }
    } else if (!strcmp(w, "else") && top && top->kind == BLK_IF) {
      if (n < max) { arms[n] = (arm){ARM_ELSE, line, top->if_line, 0, 0}; top->arm = n; want_body = n; n++; }
    } else if (!strcmp(w, "function")) {
      if (depth < 512) stack[depth++] = (blk){BLK_FUNC, 0, -1};
    } else if (!strcmp(w, "do")) {
      if (depth < 512) stack[depth++] = (blk){BLK_DO, 0, -1};
    } else if (!strcmp(w, "repeat")) {
      if (depth < 512) stack[depth++] = (blk){BLK_REPEAT, 0, -1};
    } else if (!strcmp(w, "end") || !strcmp(w, "until")) {
      if (depth) depth--;
    }
    last_line = line;
  }
  return n;
}

/* ---- running the cohort ---- */

typedef struct cworker {
  pw_engine *e;
  uint64_t ok, failed, faults;        /* faults: failed other than for invalid input */
  exp_counter items, cases, errors;   /* rule -> items blocked, -> cases; status -> count */
  pw_buf first;                       /* the first FIRST_ERRORS failures: "line N: message" */
  int nfirst;
} cworker;

#define FIRST_ERRORS 5

static void coverage_line(void *arg, const char *line, size_t len, long lineno, pw_buf *out) {
  cworker *w = arg;
  pw_error err;
  (void)out;
  pw_status rc = pw_engine_eval(w->e, line, len, 0, NULL, &err);
  if (rc != PW_OK) {
    w->failed++;
    exp_count_add(&w->errors, pw_status_name(rc), 1);
    if (rc != PW_EINPUT) w->faults++;
    if (rc != PW_EINPUT && w->nfirst++ < FIRST_ERRORS)
      pw_buf_addf(&w->first, "%ld\t%s: %s\n", lineno, pw_status_name(rc), err.msg);
    return;
  }
  w->ok++;
  const pw_result *r = pw_engine_result(w->e);
  for (int i = 0; i < r->items.n; i++) {
    const pw_item *it = &r->items.v[i];
    if (!it->blocked || !it->rule) continue;
    exp_count_add(&w->items, it->rule, 1);
    int first = 1;   /* count a case once per rule */
    for (int j = 0; j < i && first; j++)
      if (r->items.v[j].blocked && r->items.v[j].rule && !strcmp(r->items.v[j].rule, it->rule)) first = 0;
    if (first) exp_count_add(&w->cases, it->rule, 1);
  }
}

static int cmp_lineno(const void *a, const void *b) {
  long x = strtol(*(char *const *)a, NULL, 10), y = strtol(*(char *const *)b, NULL, 10);
  return (x > y) - (x < y);
}

/* Order the workers' first failures by cohort line and keep FIRST_ERRORS. */
static void sort_first_errors(pw_buf *b) {
  if (!b->len) return;
  char *v[64];
  int n = 0;
  for (char *p = b->data; n < 64 && p < b->data + b->len; ) {
    char *nl = memchr(p, '\n', (size_t)(b->data + b->len - p));
    v[n++] = p;
    if (!nl) break;
    *nl = 0;
    p = nl + 1;
  }
  qsort(v, (size_t)n, sizeof *v, cmp_lineno);
  pw_buf out = {0};
  for (int i = 0; i < n && i < FIRST_ERRORS; i++) pw_buf_addf(&out, "%s\n", v[i]);
  pw_buf_free(b);
  *b = out;
}

/* ---- reporting ---- */

typedef struct report {
  const char *protocol, *cohort;
  pw_engine *e;
  char *src;
  const char **lines;   /* lines[1..nlines] point into src */
  int nlines;
  uint32_t *counts;     /* summed over workers, nlines + 1 */
  unsigned char *active;
  int nactive, nran;
  arm *arms;
  int narms, nbranches, ncovered;   /* counted arms (with an active line) */
  int *arm_line;        /* the arm's first active line, 0 = not counted */
  uint64_t ok, failed, faults;
  exp_counter items, cases, errors;
  pw_buf first;         /* "cohort line\tstatus: message\n", sorted by cohort line */
} report;

static void line_text(pw_buf *b, const report *r, int l) {
  const char *s = r->lines[l];
  size_t n = strcspn(s, "\n");
  while (n && (s[n - 1] == '\r' || s[n - 1] == ' ')) n--;
  while (n && (*s == ' ' || *s == '\t')) { s++; n--; }
  if (n > 100) n = 100;
  pw_buf_add(b, s, n);
}

/* Does the line hold nothing but a closing `end` (with `)`, `,`, `;`, `}`
** or a comment)? Lua gives a function's implicit return the line of its
** `end`, which never runs when every path returns first. */
static int end_only(const char *s) {
  int ends = 0;
  while (*s && *s != '\n') {
    if (*s == ' ' || *s == '\t' || *s == '\r' || *s == ')' || *s == ',' || *s == ';' || *s == '}') s++;
    else if (s[0] == '-' && s[1] == '-') break;
    else if (!strncmp(s, "end", 3) && !isalnum((unsigned char)s[3]) && s[3] != '_') { ends++; s += 3; }
    else return 0;
  }
  return ends > 0;
}

static void analyse(report *r) {
  r->nactive = r->nran = 0;
  for (int l = 1; l <= r->nlines; l++) {
    if (r->active[l] && !r->counts[l] && end_only(r->lines[l])) r->active[l] = 0;
    if (r->active[l]) { r->nactive++; r->nran += r->counts[l] > 0; }
  }
  r->nbranches = r->ncovered = 0;
  for (int i = 0; i < r->narms; i++) {
    const arm *a = &r->arms[i];
    r->arm_line[i] = 0;
    if (!a->first) continue;
    for (int l = a->first; l <= a->last && l <= r->nlines; l++)
      if (r->active[l]) { r->arm_line[i] = l; break; }
    if (!r->arm_line[i]) continue;
    r->nbranches++;
    r->ncovered += r->counts[r->arm_line[i]] > 0;
  }
}

/* Every rule: the kernel's, then plugin rules that fired. */
static int rule_list(const report *r, const char **ids, int max) {
  int n = 0;
  for (int i = 0; i < pw_safety_count() && n < max; i++) ids[n++] = pw_safety_rule(i)->id;
  size_t m;
  exp_count_entry *v = exp_count_sorted(&r->items, &m);
  for (size_t i = 0; i < m && n < max; i++) {
    int known = 0;
    for (int j = 0; j < n; j++) known |= !strcmp(ids[j], v[i].key);
    if (!known) ids[n++] = v[i].key;   /* keys live in r->items */
  }
  free(v);
  return n;
}

static void report_text(pw_buf *b, const report *r, int annotate) {
  pw_buf_addf(b, "coverage of %s (%s %s) over %s\n", r->protocol, pw_engine_protocol_id(r->e),
              pw_engine_protocol_version(r->e), strcmp(r->cohort, "-") ? r->cohort : "stdin");
  pw_buf_addf(b, "  cases     %llu evaluated, %llu failed\n", (unsigned long long)r->ok, (unsigned long long)r->failed);
  pw_buf_addf(b, "  lines     %d of %d active lines ran: %.1f%%\n", r->nran, r->nactive, exp_pct((uint64_t)r->nran, (uint64_t)r->nactive));
  pw_buf_addf(b, "  branches  %d of %d if/elseif/else arms ran: %.1f%%\n", r->ncovered, r->nbranches,
              exp_pct((uint64_t)r->ncovered, (uint64_t)r->nbranches));
  pw_buf_addf(b, "\nlines that never ran (%d):\n", r->nactive - r->nran);
  for (int l = 1; l <= r->nlines; l++)
    if (r->active[l] && !r->counts[l]) {
      pw_buf_addf(b, "  %5d  ", l);
      line_text(b, r, l);
      pw_buf_adds(b, "\n");
    }
  pw_buf_addf(b, "\nbranches never taken (%d):\n", r->nbranches - r->ncovered);
  for (int i = 0; i < r->narms; i++) {
    const arm *a = &r->arms[i];
    if (!r->arm_line[i] || r->counts[r->arm_line[i]]) continue;
    pw_buf_addf(b, "  %5d  %-6s ", a->line, arm_names[a->kind]);
    if (a->kind != ARM_IF) pw_buf_addf(b, "(if at %d) ", a->if_line);
    pw_buf_addf(b, "body from line %d: ", r->arm_line[i]);
    line_text(b, r, a->kind == ARM_ELSE ? r->arm_line[i] : a->line);
    pw_buf_adds(b, "\n");
  }
  const char *ids[256];
  int n = rule_list(r, ids, 256), never = 0;
  pw_buf_adds(b, "\nsafety rules: items blocked, cases (% of evaluated)\n");
  for (int i = 0; i < n; i++) {
    uint64_t it = exp_count_get(&r->items, ids[i]), cs = exp_count_get(&r->cases, ids[i]);
    if (!it) { never++; continue; }
    pw_buf_addf(b, "  %-36s %9llu %9llu  %5.1f%%\n", ids[i], (unsigned long long)it, (unsigned long long)cs, exp_pct(cs, r->ok));
  }
  pw_buf_addf(b, "rules that never fired (%d):", never);
  for (int i = 0, k = 0; i < n; i++)
    if (!exp_count_get(&r->items, ids[i])) pw_buf_addf(b, "%s%s", k++ ? ", " : " ", ids[i]);
  pw_buf_adds(b, never ? "\n" : " none\n");
  if (r->failed) exp_text_top(b, "failed cases by status:", &r->errors, 10, r->ok + r->failed);
  if (annotate) {
    pw_buf_adds(b, "\nsource (count per line; ##### = active, never ran; - = no code):\n");
    for (int l = 1; l <= r->nlines; l++) {
      if (!r->active[l]) pw_buf_adds(b, "          -: ");
      else if (!r->counts[l]) pw_buf_adds(b, "      #####: ");
      else pw_buf_addf(b, "%11u: ", r->counts[l]);
      pw_buf_addf(b, "%5d: ", l);
      const char *s = r->lines[l];
      pw_buf_add(b, s, strcspn(s, "\n"));
      pw_buf_adds(b, "\n");
    }
  }
}

static void json_never_ran(pw_jsonw *j, const report *r) {
  pw_jsonw_key(j, "never_ran");
  pw_jsonw_begin_array(j);
  for (int l = 1; l <= r->nlines; l++)
    if (r->active[l] && !r->counts[l]) {
      pw_buf t = {0};
      line_text(&t, r, l);
      pw_jsonw_begin_object(j);
      pw_jsonw_field_int(j, "line", l);
      pw_jsonw_field_str(j, "source", t.data ? t.data : "");
      pw_jsonw_end_object(j);
      pw_buf_free(&t);
    }
  pw_jsonw_end_array(j);
}

static void json_lines(pw_jsonw *j, const report *r) {
  char key[16];
  pw_jsonw_key(j, "lines");
  pw_jsonw_begin_object(j);
  pw_jsonw_field_int(j, "active", r->nactive);
  pw_jsonw_field_int(j, "ran", r->nran);
  pw_jsonw_key(j, "percent");
  pw_jsonw_rawf(j, "%.2f", exp_pct((uint64_t)r->nran, (uint64_t)r->nactive));
  json_never_ran(j, r);
  pw_jsonw_key(j, "counts");
  pw_jsonw_begin_object(j);
  for (int l = 1; l <= r->nlines; l++)
    if (r->active[l]) {
      snprintf(key, sizeof key, "%d", l);
      pw_jsonw_field_int(j, key, r->counts[l]);
    }
  pw_jsonw_end_object(j);
  pw_jsonw_end_object(j);
}

static void json_branches(pw_jsonw *j, const report *r) {
  pw_jsonw_key(j, "branches");
  pw_jsonw_begin_object(j);
  pw_jsonw_field_int(j, "arms", r->nbranches);
  pw_jsonw_field_int(j, "covered", r->ncovered);
  pw_jsonw_key(j, "percent");
  pw_jsonw_rawf(j, "%.2f", exp_pct((uint64_t)r->ncovered, (uint64_t)r->nbranches));
  pw_jsonw_key(j, "list");
  pw_jsonw_begin_array(j);
  for (int i = 0; i < r->narms; i++) {
    if (!r->arm_line[i]) continue;
    const arm *a = &r->arms[i];
    pw_jsonw_begin_object(j);
    pw_jsonw_field_int(j, "line", a->line);
    pw_jsonw_field_str(j, "kind", arm_names[a->kind]);
    pw_jsonw_field_int(j, "if_line", a->if_line);
    pw_jsonw_field_int(j, "first_line", r->arm_line[i]);
    pw_jsonw_field_int(j, "count", r->counts[r->arm_line[i]]);
    pw_jsonw_end_object(j);
  }
  pw_jsonw_end_array(j);
  pw_jsonw_end_object(j);
}

static void json_rules(pw_jsonw *j, const report *r) {
  const char *ids[256];
  int n = rule_list(r, ids, 256);
  pw_jsonw_key(j, "rules");
  pw_jsonw_begin_array(j);
  for (int i = 0; i < n; i++) {
    pw_jsonw_begin_object(j);
    pw_jsonw_field_str(j, "id", ids[i]);
    pw_jsonw_field_int(j, "items", (long long)exp_count_get(&r->items, ids[i]));
    pw_jsonw_field_int(j, "cases", (long long)exp_count_get(&r->cases, ids[i]));
    pw_jsonw_end_object(j);
  }
  pw_jsonw_end_array(j);
}

static void report_json(pw_buf *b, const report *r, double thr, double bthr, int pass) {
  pw_jsonw j;
  pw_jsonw_init(&j, b);
  pw_jsonw_begin_object(&j);
  pw_jsonw_key(&j, "protocol");
  pw_engine_protocol_json(r->e, pw_jsonw_value(&j));
  pw_jsonw_field_str(&j, "file", r->protocol);
  pw_jsonw_key(&j, "cases");
  pw_jsonw_begin_object(&j);
  pw_jsonw_field_int(&j, "evaluated", (long long)r->ok);
  pw_jsonw_field_int(&j, "failed", (long long)r->failed);
  exp_json_field_counts(&j, "by_status", &r->errors);
  pw_jsonw_end_object(&j);
  json_lines(&j, r);
  json_branches(&j, r);
  json_rules(&j, r);
  pw_jsonw_key(&j, "threshold");
  pw_jsonw_begin_object(&j);
  pw_jsonw_key(&j, "lines");
  if (thr >= 0) pw_jsonw_rawf(&j, "%g", thr); else pw_jsonw_null(&j);
  pw_jsonw_key(&j, "branches");
  if (bthr >= 0) pw_jsonw_rawf(&j, "%g", bthr); else pw_jsonw_null(&j);
  pw_jsonw_field_bool(&j, "passed", pass);
  pw_jsonw_end_object(&j);
  pw_jsonw_end_object(&j);
  pw_buf_add(b, "\n", 1);
}

static int parse_pct(const char *s, double *v) {
  char *end;
  errno = 0;
  *v = strtod(s, &end);
  return errno || end == s || *end || !(*v >= 0 && *v <= 100) ? -1 : 0;
}

/* Split the source into lines; lines[1..n]. */
static int split_lines(report *r) {
  int n = 1;
  for (const char *p = r->src; *p; p++) n += *p == '\n';
  r->lines = calloc((size_t)n + 2, sizeof *r->lines);
  if (!r->lines) return -1;
  int l = 1;
  r->lines[l] = r->src;
  for (char *p = r->src; *p; p++)
    if (*p == '\n' && l < n) r->lines[++l] = p + 1;
  r->nlines = n;
  return 0;
}

typedef struct copts {
  exp_opts o;
  double thr, bthr;   /* -1 = none */
  int json, annotate;
} copts;

/* Returns -1 to go on, else the exit code. */
static int parse_coverage_opts(int argc, char **argv, copts *co) {
  static const struct option longs[] = {
    {"coverage", no_argument, 0, 'C'}, {"threshold", required_argument, 0, 'T'},
    {"branch-threshold", required_argument, 0, 'B'}, PW_OPT_LONG_FORMAT,
    {"annotate", no_argument, 0, 'a'}, {"help", no_argument, 0, 'h'},
    EXP_LONG_OPTIONS, {0, 0, 0, 0}};
  int c, code;
  exp_opts_init(&co->o);
  co->thr = co->bthr = -1;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "f:j:h", longs, NULL)) != -1) {
    switch (c) {
    case 'C': break;
    case 'T':
      if (parse_pct(optarg, &co->thr)) return exp_usage("check", usage_coverage, "--threshold takes a percentage 0..100, got '%s'", optarg);
      break;
    case 'B':
      if (parse_pct(optarg, &co->bthr)) return exp_usage("check", usage_coverage, "--branch-threshold takes a percentage 0..100, got '%s'", optarg);
      break;
    case 'a': co->annotate = 1; break;
    case 'h': fputs(usage_coverage, stdout); return PW_EX_OK;
    default:
      if ((code = exp_shared_opt(c, optarg, &co->o, "check", usage_coverage)) != -2) {
        if (code >= 0) return code;
        break;
      }
      return exp_usage("check", usage_coverage, "unknown or incomplete option '%s'", argv[optind - 1]);
    }
  }
  co->json = pw_cmd_json(&co->o.cmd) == 1;
  if (optind != argc - 2) return exp_usage("check", usage_coverage, "expected PROTOCOL.lua and COHORT.jsonl (or - for stdin)");
  return -1;
}

/* The workers' counts summed into r, and the protocol's lines and arms. */
static void merge_workers(report *r, cworker *w, int jobs, const pw_buf *src) {
  int n;   /* lines of the file the engine loaded, plus one */
  pw_engine_coverage_counts(w[0].e, &n);
  r->e = w[0].e;
  r->src = src->data;
  r->counts = calloc((size_t)n + 1, sizeof *r->counts);
  r->active = calloc((size_t)n + 1, 1);
  r->arms = calloc(4096, sizeof *r->arms);
  r->arm_line = calloc(4096, sizeof *r->arm_line);
  if (!r->counts || !r->active || !r->arms || !r->arm_line || split_lines(r)) abort();
  for (int i = 0; i < jobs; i++) {
    int m;
    const uint32_t *wc = pw_engine_coverage_counts(w[i].e, &m);
    for (int l = 0; l < m && l < n; l++) r->counts[l] += wc[l];
    r->ok += w[i].ok;
    r->failed += w[i].failed;
    r->faults += w[i].faults;
    exp_count_merge(&r->items, &w[i].items);
    exp_count_merge(&r->cases, &w[i].cases);
    exp_count_merge(&r->errors, &w[i].errors);
    if (w[i].first.len) pw_buf_add(&r->first, w[i].first.data, w[i].first.len);
  }
  sort_first_errors(&r->first);
  pw_engine_coverage_active(w[0].e, r->active, n);
  if (r->nlines > n - 1) r->nlines = n - 1;   /* the engine counted the file it loaded */
  r->narms = find_arms(src->data, src->len, r->arms, 4096);
  analyse(r);
}

/* Any case the protocol or a plugin failed on (raised, budget, memory: not
** an invalid facts line, which is the cohort's fault) fails the check whatever the thresholds: print the first
** failures as COHORT:LINE: status: message (the message carries the
** protocol's file:line when the protocol raised). */
static void report_failures(const report *r) {
  fprintf(stderr, "pathwise: check: the protocol failed on %llu of %llu cases; first errors:\n",
          (unsigned long long)r->faults, (unsigned long long)(r->ok + r->failed));
  const char *p = r->first.data, *end = r->first.data + r->first.len;
  while (p && p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *tab = memchr(p, '\t', (size_t)((nl ? nl : end) - p));
    if (!tab) break;
    fprintf(stderr, "  %s:%.*s: %.*s\n", r->cohort, (int)(tab - p), p, (int)((nl ? nl : end) - tab - 1), tab + 1);
    p = nl ? nl + 1 : end;
  }
}

/* Write the report; PW_EX_FAIL when a threshold is not met or a case failed. */
static int write_report(const report *r, const copts *co) {
  double lp = exp_pct((uint64_t)r->nran, (uint64_t)r->nactive), bp = exp_pct((uint64_t)r->ncovered, (uint64_t)r->nbranches);
  double thr = co->thr, bthr = co->bthr;
  int pass = !(thr >= 0 && lp < thr) && !(bthr >= 0 && bp < bthr) && !r->faults;
  pw_buf b = {0};
  if (co->json) report_json(&b, r, thr, bthr, pass);
  else {
    report_text(&b, r, co->annotate);
    if (thr >= 0) pw_buf_addf(&b, "threshold: line coverage %.1f%% %s %g%%\n", lp, lp < thr ? "is below" : ">=", thr);
    if (bthr >= 0) pw_buf_addf(&b, "threshold: branch coverage %.1f%% %s %g%%\n", bp, bp < bthr ? "is below" : ">=", bthr);
  }
  int code = exp_write(stdout, "stdout", &b);
  pw_buf_free(&b);
  if (code == PW_EX_OK && !pass) {
    if (thr >= 0 && lp < thr) fprintf(stderr, "pathwise: check: line coverage %.1f%% is below the threshold %g%%\n", lp, thr);
    if (bthr >= 0 && bp < bthr) fprintf(stderr, "pathwise: check: branch coverage %.1f%% is below the threshold %g%%\n", bp, bthr);
    code = PW_EX_FAIL;
  }
  if (code == PW_EX_OK || code == PW_EX_FAIL) {
    if (r->faults) report_failures(r);
    if (r->faults) code = PW_EX_FAIL;
  }
  return code;
}

static void free_report(report *r, cworker *w, int jobs) {
  for (int i = 0; i < jobs; i++) {
    pw_engine_free(w[i].e);
    exp_count_free(&w[i].items);
    exp_count_free(&w[i].cases);
    exp_count_free(&w[i].errors);
    pw_buf_free(&w[i].first);
  }
  pw_buf_free(&r->first);
  exp_count_free(&r->items);
  exp_count_free(&r->cases);
  exp_count_free(&r->errors);
  free(r->counts);
  free(r->active);
  free(r->arms);
  free(r->arm_line);
  free(r->lines);
}

int pw_coverage_main(int argc, char **argv) {
  copts co;
  memset(&co, 0, sizeof co);
  int code = parse_coverage_opts(argc, argv, &co);
  if (code >= 0) return code;
  report r;
  memset(&r, 0, sizeof r);
  r.protocol = argv[optind];
  r.cohort = argv[optind + 1];
  int jobs = exp_jobs(&co.o);
  cworker *w = calloc((size_t)jobs, sizeof *w);
  void **states = calloc((size_t)jobs, sizeof *states);
  if (!w || !states) { free(w); free(states); fprintf(stderr, "pathwise: out of memory\n"); return PW_EX_SOFTWARE; }
  code = PW_EX_OK;
  for (int i = 0; i < jobs && code == PW_EX_OK; i++) {
    pw_error err;
    w[i].e = exp_engine(r.protocol, &co.o, NULL, 0, &code);
    if (code == PW_EX_OK && pw_engine_coverage_start(w[i].e, &err) != PW_OK) {
      fprintf(stderr, "pathwise: check: %s\n", err.msg);
      code = pw_cmd_exit_code(err.code);
    }
    states[i] = &w[i];
  }
  pw_buf src = {0};
  if (code == PW_EX_OK && pw_cmd_read(r.protocol, &src)) {
    fprintf(stderr, "pathwise: cannot read %s: %s\n", r.protocol, pw_file_why(errno));
    code = PW_EX_NOINPUT;
  }
  if (code == PW_EX_OK) {
    exp_pipeline p = {0};
    p.input = r.cohort;
    p.jobs = jobs;
    p.progress = exp_show_progress(&co.o);
    p.workers = states;
    p.process = coverage_line;
    code = exp_pipeline_run(&p);
  }
  if (code == PW_EX_OK) {
    merge_workers(&r, w, jobs, &src);
    code = write_report(&r, &co);
  }
  free_report(&r, w, jobs);
  pw_buf_free(&src);
  free(w);
  free(states);
  return code;
}
