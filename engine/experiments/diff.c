/*
** diff.c: `pathwise diff`, what changes for a cohort between two
** protocols (or one protocol with and without plugins).
**
** Each worker thread owns an engine for A and one for B and compares the
** two C results (pw_engine_result) of every case. Items are matched by a
** key: the id, "@target" for palliative radiotherapy, "order:" for
** proposed orders, "#n" for the n-th repeat of the same key.
*/
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include "exp.h"
#include "experiments.h"
#include "diff_report.h"
#include "resultdiff.h"

static const char *const usage_diff =
  "usage: pathwise diff --a PROTOCOL_A --b PROTOCOL_B [options] COHORT.jsonl|-\n"
  "\n"
  "Evaluate every case of a cohort (one facts object per line) with protocol A\n"
  "and protocol B and report what changed, case by case, and a summary table\n"
  "of how many cases changed in which way. A and B may be the same file with\n"
  "different plugins.\n"
  "\n"
  "      --a FILE            protocol A (the reference)\n"
  "      --b FILE            protocol B (the candidate)\n"
  "      --a-plugin FILE     a plugin for A only (repeatable)\n"
  "      --b-plugin FILE     a plugin for B only (repeatable)\n"
  "  -f, --format text|json  text for people (default) or one JSON document\n"
  "                          (schemas/diff.schema.json): each changed item under\n"
  "                          A and B, the patient's key facts, patients left with\n"
  "                          no systemic regimen, the references\n"
  "      --html FILE         also write a self-contained HTML page: the two sides'\n"
  "                          provenance, the summary table, a chart of changes by\n"
  "                          category, patients left with no systemic regimen, the\n"
  "                          first 200 changed cases (key facts, each changed item\n"
  "                          A -> B) and the references (no network needed)\n"
  "  -s, --summary-only      leave out the per-case changes\n"
  EXP_USAGE_SHARED
  "                          (--plugin loads a plugin on both sides)\n"
  "  -h, --help              this help\n"
  "\n"
  "a case changed when any of these differ between A and B:\n"
  "  applicability     applies true / false / cannot tell\n"
  "  pathway           the pathway name\n"
  "  added             a recommendation of B that A does not make\n"
  "  removed           a recommendation of A that B does not make (nor blocks)\n"
  "  modified          a recommendation of both whose strength, text, rationale,\n"
  "                    citations, group or preference differ, or an item both\n"
  "                    block under different rules\n"
  "  newly blocked     an item B blocks (its rule, e.g. a plugin's) that A\n"
  "                    recommends, allows (a proposed order) or does not propose\n"
  "  no longer blocked an item A blocks and B does not\n"
  "  error             the line fails on one side only (failing on both is\n"
  "                    counted as invalid, not as a change)\n"
  "Items are matched by id, with @N for the metastasis a radiotherapy item\n"
  "targets and order: for proposed orders.\n"
  "\n"
  "exit codes: 0 done (whether or not cases changed), 64 usage, 66 input not\n"
  "            found, 74 read or write error, 78 protocol or plugin failed to load\n";

/* The comparison itself is resultdiff.c's; diff adds the error category. */
enum { CAT_APPLICABILITY = PW_RDIFF_APPLICABILITY, CAT_PATHWAY = PW_RDIFF_PATHWAY, CAT_ADDED = PW_RDIFF_ADDED,
       CAT_REMOVED = PW_RDIFF_REMOVED, CAT_MODIFIED = PW_RDIFF_MODIFIED, CAT_BLOCKED = PW_RDIFF_BLOCKED,
       CAT_UNBLOCKED = PW_RDIFF_UNBLOCKED, CAT_ERROR = PW_RDIFF_NCATS, NCATS };
static const char *const cat_names[NCATS] = {
  "applicability", "pathway", "added", "removed", "modified", "newly blocked",
  "no longer blocked", "error"};
static const char *const cat_json[NCATS] = {
  "applicability", "pathway", "added", "removed", "modified", "newly_blocked",
  "no_longer_blocked", "error"};
static const char *const cat_help[NCATS] = {
  "whether the protocol applies changed",
  "the pathway changed",
  "B recommends an item A does not",
  "A recommends an item B does not",
  "an item changed its wording, strength, citations or blocking rule",
  "B blocks an item A did not block",
  "A blocks an item B does not block",
  "the case fails on one side only"};

#define HTML_CASES 200
#define MAX_KEYS PW_RDIFF_MAX_KEYS

/* The first HTML_CASES of something, in cohort order: changed cases, or the
** patients of a no-regimen list below. */
typedef struct kept { long line; char *html; } kept;
typedef struct kept_list { kept keep[HTML_CASES]; int nkept; } kept_list;

/* Patients left with no systemic regimen: under A, under B, under B only
** (the change made it), under A only (the change solved it). The first
** HTML_CASES of each, in cohort order, are listed by line and patient id. */
enum { NR_A, NR_B, NR_ONLY_B, NR_ONLY_A, NR_LISTS };
static const char *const nr_json[NR_LISTS] = {"a", "b", "only_b", "only_a"};
static const char *const nr_help[NR_LISTS] = {
  "under A", "under B", "under B but not under A (the change leaves them with none)",
  "under A but not under B (the change gives them one)"};
typedef struct nr_list {
  uint64_t n;
  kept_list l;   /* html holds the patient id (may be NULL) */
} nr_list;

/* Summary counters, one per kind, keyed by their parts joined with US
** (\x1f): JSON writes the parts as a record, text and HTML a label made
** from them (count_label). */
#define US "\x1f"
enum { K_PATH, K_APPLIC, K_ADDED, K_REMOVED, K_MODIFIED, K_BLOCKED, K_UNBLOCKED, K_ERRORS, NK };
typedef struct dworker {
  pw_engine *a, *b;
  int format_json, summary_only, html;
  uint64_t cases, changed, invalid, cat[NCATS];
  exp_counter cnt[NK];
  pw_buf key;   /* count_case's, reused */
  kept_list shown;   /* the changed cases the HTML page shows */
  nr_list nr[NR_LISTS];
} dworker;

/* ---- matching items: resultdiff.c ---- */

typedef pw_rdiff_key keyed;

/* Count one case under kind k by the key in b (out of memory: the
** counter is marked incomplete, never silently short). */
static void count(dworker *w, int k, const pw_buf *b) {
  if (b->failed || !b->data) w->cnt[k].failed = 1;
  else exp_count_add(&w->cnt[k], b->data, 1);
}

/* An item's key without "@target" and "#n": the summary counts by id. */
static void item_key(pw_buf *b, const char *key) {
  pw_buf_reset(b);
  pw_buf_add(b, key, strcspn(key, "@#"));
}

static const char *applic_name(int a) { return a == 1 ? "yes" : a == 0 ? "no" : "cannot tell"; }
static const char *pw_name(const char *p) { return p ? p : "none"; }

/* How text and HTML show a counter's key (its parts split at US). */
static void count_label(pw_buf *o, int k, const char *key) {
  const char *p[3] = {key, "", ""};
  int n[3] = {0, 0, 0};
  for (int i = 0; i < 3; i++) {
    n[i] = (int)strcspn(p[i], US);
    if (i < 2 && p[i][n[i]]) p[i + 1] = p[i] + n[i] + 1;
    else break;
  }
  switch (k) {
  case K_PATH:
    pw_buf_addf(o, "%.*s -> %.*s", n[0] ? n[0] : 4, n[0] ? p[0] : "none", n[1] ? n[1] : 4, n[1] ? p[1] : "none");
    break;
  case K_APPLIC: pw_buf_addf(o, "%s -> %s", applic_name(atoi(p[0])), applic_name(atoi(p[1]))); break;
  case K_MODIFIED: pw_buf_addf(o, "%.*s (%.*s)", n[0], p[0], n[1], p[1]); break;
  case K_BLOCKED: pw_buf_addf(o, "%.*s by %.*s", n[0], p[0], n[1], p[1]); break;
  case K_UNBLOCKED: pw_buf_addf(o, "%.*s (was %.*s)", n[0], p[0], n[1], p[1]); break;
  case K_ERRORS:
    if (n[0] != 4) pw_buf_addf(o, "%c fails: %.*s", p[0][0] == 'a' ? 'A' : 'B', n[1], p[1]);   /* a or b */
    else if ((size_t)n[1] == strlen(pw_status_name(PW_EINPUT)) && !memcmp(p[1], pw_status_name(PW_EINPUT), (size_t)n[1]))
      pw_buf_addf(o, "both fail: invalid %.*s", n[2], p[2]);
    else pw_buf_addf(o, "both fail: %.*s", n[1], p[1]);
    break;
  default: pw_buf_addf(o, "%.*s", n[0], p[0]);   /* added, removed: the item */
  }
}

/* ---- one case ---- */

typedef pw_rdiff_change change;

typedef struct dcase {
  long line;
  const char *patient_id;
  pw_status ra, rb;
  const char *err;             /* message of the failing side */
  const pw_result *a, *b;
  const pw_facts *facts;       /* of the side that evaluated (A if both) */
  int nr_a, nr_b;              /* left with no systemic regimen under A, B */
  change ch[2 * MAX_KEYS];
  int nch;
  int cats[NCATS];
} dcase;


static void compare(dcase *d, keyed *ka, int na, keyed *kb, int nb) {
  pw_rdiff rd = {d->ch, 0, d->cats};
  pw_rdiff_compare(&rd, d->a, ka, na, d->b, kb, nb);
  d->nch = rd.nch;
}

/* ---- writing one case ---- */

static void list_text(pw_buf *o, const dcase *d, int cat, const char *label) {
  int k = 0;
  for (int i = 0; i < d->nch; i++) {
    const change *c = &d->ch[i];
    if (c->cat != cat) continue;
    pw_buf_adds(o, k++ ? ", " : label);
    pw_buf_adds(o, c->key);
    if (cat == CAT_MODIFIED) pw_buf_addf(o, " (%s)", c->what);
    else if (cat == CAT_BLOCKED) pw_buf_addf(o, " by %s", c->b->rule);
    else if (cat == CAT_UNBLOCKED) pw_buf_addf(o, " (was %s)", c->a->rule);
  }
  if (k) pw_buf_adds(o, "\n");
}

static void case_text(pw_buf *o, const dcase *d) {
  pw_buf_addf(o, "line %ld", d->line);
  if (d->patient_id) pw_buf_addf(o, " (%s)", d->patient_id);
  pw_buf_adds(o, "\n");
  if (d->cats[CAT_ERROR])
    pw_buf_addf(o, "  error in %s: %s\n", d->ra != PW_OK ? "A" : "B", d->err);
  if (d->cats[CAT_APPLICABILITY])
    pw_buf_addf(o, "  applicable: %s -> %s\n", applic_name(d->a->applicable), applic_name(d->b->applicable));
  if (d->cats[CAT_PATHWAY])
    pw_buf_addf(o, "  pathway: %s -> %s\n", pw_name(d->a->pathway), pw_name(d->b->pathway));
  list_text(o, d, CAT_ADDED, "  added: ");
  list_text(o, d, CAT_REMOVED, "  removed: ");
  list_text(o, d, CAT_MODIFIED, "  modified: ");
  list_text(o, d, CAT_BLOCKED, "  newly blocked: ");
  list_text(o, d, CAT_UNBLOCKED, "  no longer blocked: ");
}

static void json_applic(pw_jsonw *j, const char *key, int applicable) {
  pw_jsonw_key(j, key);
  if (applicable < 0) pw_jsonw_null(j);
  else pw_jsonw_bool(j, applicable);
}

/* A pair {"a":..,"b":..} of strings. */
static void json_ab(pw_jsonw *j, const char *key, const char *a, const char *b) {
  pw_jsonw_key(j, key);
  pw_jsonw_begin_object(j);
  pw_jsonw_field_str(j, "a", a);
  pw_jsonw_field_str(j, "b", b);
  pw_jsonw_end_object(j);
}

static void json_head(pw_jsonw *j, const dcase *d) {
  pw_jsonw_field_int(j, "line", d->line);
  pw_jsonw_field_str(j, "patient_id", d->patient_id);
  pw_jsonw_key(j, "changes");
  pw_jsonw_begin_array(j);
  for (int c = 0; c < NCATS; c++)
    if (d->cats[c]) pw_jsonw_str(j, cat_json[c]);
  pw_jsonw_end_array(j);
  if (d->cats[CAT_ERROR]) {
    pw_jsonw_key(j, "error");
    pw_jsonw_begin_object(j);
    pw_jsonw_field_str(j, "side", d->ra != PW_OK ? "a" : "b");
    pw_jsonw_field_str(j, "status", pw_status_name(d->ra != PW_OK ? d->ra : d->rb));
    pw_jsonw_field_str(j, "message", d->err);
    pw_jsonw_end_object(j);
  } else {
    pw_jsonw_key(j, "applicable");
    pw_jsonw_begin_object(j);
    json_applic(j, "a", d->a->applicable);
    json_applic(j, "b", d->b->applicable);
    pw_jsonw_end_object(j);
    json_ab(j, "pathway", d->a->pathway, d->b->pathway);
  }
}

/* A list of changed fields, "text, citations" -> ["text","citations"]. */
static void json_fields(pw_jsonw *j, const char *s, size_t n) {
  const char *end = s + n;
  pw_jsonw_begin_array(j);
  while (s < end) {
    size_t l = 0;
    while (s + l < end && s[l] != ',') l++;
    char f[64];
    snprintf(f, sizeof f, "%.*s", (int)l, s);   /* field names are short: text, strength, ... */
    pw_jsonw_str(j, f);
    s += l;
    while (s < end && (*s == ',' || *s == ' ')) s++;
  }
  pw_jsonw_end_array(j);
}

/* One change of category cat: the item, its state under A and under B
** (null where absent), and what changed. */
static void json_change(pw_jsonw *j, const dcase *d, const change *c, int cat) {
  pw_jsonw_begin_object(j);
  pw_jsonw_field_str(j, "item", c->key);
  if (cat == CAT_MODIFIED) {
    pw_jsonw_key(j, "fields");
    json_fields(j, c->what, strlen(c->what));
    if (c->a->blocked) json_ab(j, "rule", c->a->rule, c->b->rule);
  } else if (cat == CAT_BLOCKED || cat == CAT_UNBLOCKED) {
    const pw_item *it = cat == CAT_BLOCKED ? c->b : c->a;
    pw_jsonw_field_str(j, "rule", it->rule);
    pw_jsonw_field_str(j, "reason", it->reason);
  }
  pw_jsonw_key(j, "a");
  pw_dreport_item_json(j, d->a, c->a);
  pw_jsonw_key(j, "b");
  pw_dreport_item_json(j, d->b, c->b);
  pw_jsonw_end_object(j);
}

/* Each case starts with a comma; emit_out drops the very first one. */
static void case_json(pw_buf *o, const dcase *d) {
  pw_jsonw j;
  pw_buf_add(o, ",\n", 2);
  pw_jsonw_init(&j, o);
  pw_jsonw_begin_object(&j);
  json_head(&j, d);
  pw_jsonw_key(&j, "facts");
  if (d->facts) pw_dreport_facts_json(&j, d->facts);
  else pw_jsonw_null(&j);
  pw_jsonw_key(&j, "no_systemic_regimen");
  pw_jsonw_begin_object(&j);
  json_applic(&j, "a", d->ra == PW_OK ? d->nr_a : -1);
  json_applic(&j, "b", d->rb == PW_OK ? d->nr_b : -1);
  pw_jsonw_end_object(&j);
  for (int cat = CAT_ADDED; cat <= CAT_UNBLOCKED; cat++) {
    pw_jsonw_key(&j, cat_json[cat]);
    pw_jsonw_begin_array(&j);
    for (int i = 0; i < d->nch; i++)
      if (d->ch[i].cat == cat) json_change(&j, d, &d->ch[i], cat);
    pw_jsonw_end_array(&j);
  }
  pw_jsonw_end_object(&j);
}

/* Each changed item on a line of its own: what changed, then before -> after. */
static void items_html(pw_buf *o, const dcase *d) {
  pw_buf o2 = {0};
  for (int i = 0; i < d->nch; i++) {
    const change *c = &d->ch[i];
    if (i) pw_buf_adds(o, "<br>\n");
    pw_buf_adds(o, "<b>");
    exp_html(o, c->key);
    pw_buf_addf(o, "</b> <small>%s", cat_names[c->cat]);   /* an item's: added .. no longer blocked */
    if (c->cat == CAT_MODIFIED) { pw_buf_adds(o, ": "); exp_html(o, c->what); }
    pw_buf_adds(o, "</small>: ");
    pw_buf_reset(&o2);
    pw_dreport_item_label(&o2, d->a, c->a);
    exp_html(o, o2.data);
    pw_buf_adds(o, " &rarr; ");
    pw_buf_reset(&o2);
    pw_dreport_item_label(&o2, d->b, c->b);
    exp_html(o, o2.data);
  }
  pw_buf_free(&o2);
}

static char *case_html(const dcase *d) {
  pw_buf o = {0}, f = {0};
  pw_buf_addf(&o, "<tr><td>%ld</td><td>", d->line);
  exp_html(&o, d->patient_id ? d->patient_id : "");
  pw_buf_adds(&o, "</td><td>");
  if (d->facts) {
    pw_dreport_facts_label(&f, d->facts);
    exp_html(&o, f.data);
    pw_buf_free(&f);
  }
  pw_buf_adds(&o, "</td><td>");
  if (d->cats[CAT_ERROR]) {
    pw_buf_addf(&o, "error in %s: ", d->ra != PW_OK ? "A" : "B");
    exp_html(&o, d->err);
  } else if (d->cats[CAT_PATHWAY] || d->cats[CAT_APPLICABILITY]) {
    exp_html(&o, pw_name(d->a->pathway));
    pw_buf_adds(&o, " &rarr; ");
    exp_html(&o, pw_name(d->b->pathway));
  }
  if (d->nr_a != d->nr_b && !d->cats[CAT_ERROR])
    pw_buf_addf(&o, "%sno systemic regimen under %s", d->cats[CAT_PATHWAY] || d->cats[CAT_APPLICABILITY] ? "<br>" : "",
                d->nr_b ? "B" : "A");
  pw_buf_adds(&o, "</td><td>");
  items_html(&o, d);
  pw_buf_adds(&o, "</td></tr>\n");
  return o.data;
}

/* ---- counting ---- */

static void count_case(dworker *w, const dcase *d) {
  pw_buf *key = &w->key;
  for (int c = 0; c < NCATS; c++) w->cat[c] += (uint64_t)d->cats[c];
  if (d->cats[CAT_ERROR]) {
    pw_buf_reset(key);
    pw_buf_addf(key, "%s" US "%s" US, d->ra != PW_OK ? "a" : "b", pw_status_name(d->ra != PW_OK ? d->ra : d->rb));
    count(w, K_ERRORS, key);
    return;
  }
  if (d->cats[CAT_PATHWAY]) {
    pw_buf_reset(key);
    pw_buf_addf(key, "%s" US "%s", d->a->pathway ? d->a->pathway : "", d->b->pathway ? d->b->pathway : "");
    count(w, K_PATH, key);
  }
  if (d->cats[CAT_APPLICABILITY]) {
    pw_buf_reset(key);
    pw_buf_addf(key, "%d" US "%d", d->a->applicable, d->b->applicable);
    count(w, K_APPLIC, key);
  }
  for (int i = 0; i < d->nch; i++) {
    const change *c = &d->ch[i];
    item_key(key, c->key);
    switch (c->cat) {
    case CAT_ADDED: count(w, K_ADDED, key); break;
    case CAT_REMOVED: count(w, K_REMOVED, key); break;
    case CAT_MODIFIED: pw_buf_addf(key, US "%s", c->what); count(w, K_MODIFIED, key); break;
    case CAT_BLOCKED: pw_buf_addf(key, US "%s", c->b->rule); count(w, K_BLOCKED, key); break;
    case CAT_UNBLOCKED: pw_buf_addf(key, US "%s", c->a->rule); count(w, K_UNBLOCKED, key); break;
    }
  }
}

static void nr_add(nr_list *l, const dcase *d) {
  l->n++;
  if (l->l.nkept == HTML_CASES) return;
  l->l.keep[l->l.nkept].line = d->line;
  l->l.keep[l->l.nkept++].html = d->patient_id ? strdup(d->patient_id) : NULL;
}

static void note_no_regimen(dworker *w, const dcase *d) {
  if (d->nr_a) nr_add(&w->nr[NR_A], d);
  if (d->nr_b) nr_add(&w->nr[NR_B], d);
  if (d->nr_b && !d->nr_a) nr_add(&w->nr[NR_ONLY_B], d);
  if (d->nr_a && !d->nr_b) nr_add(&w->nr[NR_ONLY_A], d);
}

static void diff_line(void *arg, const char *line, size_t len, long lineno, pw_buf *out) {
  dworker *w = arg;
  static __thread dcase d;
  static __thread keyed ka[MAX_KEYS], kb[MAX_KEYS];
  pw_error ea, eb;
  memset(d.cats, 0, sizeof d.cats);
  d.nch = 0;
  d.line = lineno;
  d.ra = pw_engine_eval(w->a, line, len, 0, NULL, &ea);
  d.rb = pw_engine_eval(w->b, line, len, 0, NULL, &eb);
  d.a = pw_engine_result(w->a);
  d.b = pw_engine_result(w->b);
  d.patient_id = d.ra == PW_OK ? d.a->patient_id : d.rb == PW_OK ? d.b->patient_id : NULL;
  d.err = NULL;
  w->cases++;
  if (d.ra != PW_OK && d.rb != PW_OK) {
    w->invalid++;
    char field[128] = "";
    if (d.ra == PW_EINPUT) exp_error_field(ea.msg, field, sizeof field);
    pw_buf_reset(&w->key);
    pw_buf_addf(&w->key, "both" US "%s" US "%s", pw_status_name(d.ra), field);
    count(w, K_ERRORS, &w->key);
    return;
  }
  d.facts = pw_engine_facts(d.ra == PW_OK ? w->a : w->b);
  d.nr_a = d.ra == PW_OK && pw_dreport_no_regimen(d.a);
  d.nr_b = d.rb == PW_OK && pw_dreport_no_regimen(d.b);
  note_no_regimen(w, &d);
  if (d.ra != PW_OK || d.rb != PW_OK) {
    d.cats[CAT_ERROR] = 1;
    d.err = d.ra != PW_OK ? ea.msg : eb.msg;
  } else {
    int na = pw_rdiff_keys(d.a, ka), nb = pw_rdiff_keys(d.b, kb);
    compare(&d, ka, na, kb, nb);
  }
  int changed = 0;
  for (int c = 0; c < NCATS; c++) changed |= d.cats[c];
  if (!changed) return;
  w->changed++;
  count_case(w, &d);
  if (!w->summary_only) {
    if (w->format_json) case_json(out, &d);
    else case_text(out, &d);
  }
  if (w->html && w->shown.nkept < HTML_CASES) {
    w->shown.keep[w->shown.nkept].line = lineno;
    w->shown.keep[w->shown.nkept++].html = case_html(&d);
  }
}

/* ---- the summary ---- */

typedef struct side { const char *path; const char *plugins[2 * PW_MAX_PLUGINS]; int nplugins; } side;

static const char *base_name(const char *p) {
  const char *s = strrchr(p, '/');
  return s ? s + 1 : p;
}

static void side_text(pw_buf *o, const char *label, pw_engine *e, const side *s) {
  pw_buf_addf(o, "  %s: %s %s", label, pw_engine_protocol_id(e), pw_engine_protocol_version(e));
  for (int i = 0; i < s->nplugins; i++) pw_buf_addf(o, "%s%s", i ? ", " : " + plugin ", base_name(s->plugins[i]));
  pw_buf_adds(o, "\n");
}

static void side_json(pw_jsonw *j, const char *key, pw_engine *e, const side *s) {
  pw_jsonw_key(j, key);
  pw_jsonw_begin_object(j);
  pw_jsonw_key(j, "protocol");
  pw_engine_protocol_json(e, pw_jsonw_value(j));
  pw_jsonw_key(j, "plugins");
  pw_jsonw_begin_array(j);
  for (int i = 0; i < s->nplugins; i++) pw_jsonw_str(j, base_name(s->plugins[i]));
  pw_jsonw_end_array(j);
  pw_jsonw_key(j, "references");
  pw_dreport_refs_json(j, pw_engine_info(e));
  pw_jsonw_end_object(j);
}

static void summary_text(pw_buf *o, const dworker *w) {
  uint64_t compared = w->cases - w->invalid;
  pw_buf_adds(o, "\nsummary\n");
  pw_buf_addf(o, "  %-20s %9llu\n", "cases", (unsigned long long)w->cases);
  if (w->invalid) pw_buf_addf(o, "  %-20s %9llu  (fail on both sides: not compared)\n", "invalid", (unsigned long long)w->invalid);
  pw_buf_addf(o, "  %-20s %9llu  %5.1f%%\n", "unchanged", (unsigned long long)(compared - w->changed), exp_pct(compared - w->changed, compared));
  pw_buf_addf(o, "  %-20s %9llu  %5.1f%%\n", "changed", (unsigned long long)w->changed, exp_pct(w->changed, compared));
  pw_buf_adds(o, "changed cases by category (a case may count in several):\n");
  for (int c = 0; c < NCATS; c++)
    pw_buf_addf(o, "  %-20s %9llu  %5.1f%%\n", cat_names[c], (unsigned long long)w->cat[c], exp_pct(w->cat[c], compared));
  static const char *const title[NK] = {
    "pathway changes (A -> B):", "applicability changes (A -> B):", "added:", "removed:", "modified:",
    "newly blocked:", "no longer blocked:", "errors:"};
  for (int k = 0; k < NK; k++) {
    if ((k == K_APPLIC || k == K_ERRORS) && !w->cnt[k].used) continue;
    exp_text_top_labelled(o, title[k], &w->cnt[k], k == K_APPLIC || k == K_ERRORS ? 10 : 20,
                          k == K_ERRORS ? w->cases : compared, count_label, k);
  }
}

/* One part of a record: "fields" is a list, "a"/"b" of an applicability
** change are true/false/null, "rule" is followed by its "plugin" (null for
** a safety rule); an empty part is null. */
static void json_part(pw_jsonw *j, const char *name, const char *v, size_t n) {
  pw_jsonw_key(j, name[0] == '?' ? name + 1 : name);
  if (name[0] == '?') {   /* applicability: 1, 0, -1 */
    if (n == 2 && !memcmp(v, "-1", 2)) pw_jsonw_null(j);
    else pw_jsonw_bool(j, n == 1 && v[0] == '1');
    return;
  }
  if (!strcmp(name, "fields")) { json_fields(j, v, n); return; }
  char *copy = n ? strndup(v, n) : NULL;   /* whole: a rule names a plugin id of any length */
  if (n && !copy) { j->b->failed = 1; return; }
  pw_jsonw_str(j, copy);
  if (!strcmp(name, "rule")) {
    char *slash = copy ? strchr(copy, '/') : NULL;
    if (slash) *slash = '\0';
    pw_jsonw_field_str(j, "plugin", slash ? copy : NULL);
  }
  free(copy);
}

/* A counter as an array of records: the key's parts (split at US) under
** names, then "cases". Largest first. */
static void json_records(pw_jsonw *j, const char *key, const exp_counter *c, const char *const *names, int nnames) {
  size_t n;
  exp_count_entry *v = exp_count_sorted(c, &n);
  if (c->failed || (!v && c->used)) j->b->failed = 1;   /* never write counts as if whole */
  pw_jsonw_key(j, key);
  pw_jsonw_begin_array(j);
  for (size_t i = 0; i < n; i++) {
    pw_jsonw_begin_object(j);
    const char *p = v[i].key;
    for (int k = 0; k < nnames; k++) {
      size_t l = strcspn(p, US);
      json_part(j, names[k], p, l);
      p += l;
      if (*p) p++;
    }
    pw_jsonw_field_int(j, "cases", (long long)v[i].n);
    pw_jsonw_end_object(j);
  }
  pw_jsonw_end_array(j);
  free(v);
}

static void nr_json_list(pw_jsonw *j, const nr_list *l) {
  pw_jsonw_begin_object(j);
  pw_jsonw_field_int(j, "cases", (long long)l->n);
  pw_jsonw_key(j, "patients");
  pw_jsonw_begin_array(j);
  for (int i = 0; i < l->l.nkept; i++) {
    pw_jsonw_begin_object(j);
    pw_jsonw_field_int(j, "line", l->l.keep[i].line);
    pw_jsonw_field_str(j, "patient_id", l->l.keep[i].html);
    pw_jsonw_end_object(j);
  }
  pw_jsonw_end_array(j);
  pw_jsonw_end_object(j);
}

static void summary_json(pw_jsonw *j, const dworker *w) {
  static const char *const n_item[] = {"item"}, *const n_mod[] = {"item", "fields"},
                           *const n_rule[] = {"item", "rule"}, *const n_path[] = {"a", "b"},
                           *const n_app[] = {"?a", "?b"}, *const n_err[] = {"side", "status", "field"};
  pw_jsonw_begin_object(j);
  pw_jsonw_field_int(j, "cases", (long long)w->cases);
  pw_jsonw_field_int(j, "invalid", (long long)w->invalid);
  pw_jsonw_field_int(j, "unchanged", (long long)(w->cases - w->invalid - w->changed));
  pw_jsonw_field_int(j, "changed", (long long)w->changed);
  pw_jsonw_key(j, "categories");
  pw_jsonw_begin_object(j);
  for (int c = 0; c < NCATS; c++) pw_jsonw_field_int(j, cat_json[c], (long long)w->cat[c]);
  pw_jsonw_end_object(j);
  json_records(j, "pathway_changes", &w->cnt[K_PATH], n_path, 2);
  json_records(j, "applicability_changes", &w->cnt[K_APPLIC], n_app, 2);
  json_records(j, "added", &w->cnt[K_ADDED], n_item, 1);
  json_records(j, "removed", &w->cnt[K_REMOVED], n_item, 1);
  json_records(j, "modified", &w->cnt[K_MODIFIED], n_mod, 2);
  json_records(j, "newly_blocked", &w->cnt[K_BLOCKED], n_rule, 2);
  json_records(j, "no_longer_blocked", &w->cnt[K_UNBLOCKED], n_rule, 2);
  json_records(j, "errors", &w->cnt[K_ERRORS], n_err, 3);
  pw_jsonw_key(j, "no_systemic_regimen");
  pw_jsonw_begin_object(j);
  for (int k = 0; k < NR_LISTS; k++) {
    pw_jsonw_key(j, nr_json[k]);
    nr_json_list(j, &w->nr[k]);
  }
  pw_jsonw_end_object(j);
  pw_jsonw_end_object(j);
}

/* ---- the HTML page ---- */

static void html_counts(pw_buf *o, const char *title, const exp_counter *c, int k, uint64_t denom) {
  size_t n;
  exp_count_entry *v = exp_count_sorted(c, &n);
  pw_buf lab = {0};
  if (n) {
    pw_buf_adds(o, "<h3>");
    exp_html(o, title);
    pw_buf_adds(o, "</h3>\n<table class=\"t\"><tr><th>item</th><th>cases</th><th>%</th></tr>\n");
    for (size_t i = 0; i < n && i < 30; i++) {
      pw_buf_adds(o, "<tr><td>");
      pw_buf_reset(&lab);
      count_label(&lab, k, v[i].key);
      exp_html(o, lab.failed ? v[i].key : lab.data);
      pw_buf_addf(o, "</td><td class=\"n\">%llu</td><td class=\"n\">%.1f</td></tr>\n",
                  (unsigned long long)v[i].n, exp_pct(v[i].n, denom));
    }
    pw_buf_adds(o, "</table>\n");
  }
  pw_buf_free(&lab);
  free(v);
}

/* The page's head and the provenance of both sides. */
static void html_head(pw_buf *o, pw_engine *ea, pw_engine *eb) {
  pw_buf_adds(o, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
                 "<title>pathwise diff</title>\n<style>\n"
                 "body{font-family:system-ui,sans-serif;margin:2em;max-width:72em;color:#222}\n"
                 "table.t{border-collapse:collapse;margin:.5em 0 1.5em}\n"
                 ".t td,.t th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}\n"
                 ".t th{background:#f2f2f2}.n{text-align:right;font-variant-numeric:tabular-nums}\n"
                 "small{color:#666}code{background:#f4f4f4;padding:0 .2em}\n"
                 "</style></head><body>\n<h1>pathwise diff</h1>\n"
                 "<h2 id=\"provenance\">Protocols compared</h2>\n"
                 "<table class=\"t\"><tr><th></th><th>protocol</th><th>plugins</th></tr>\n");
  pw_dreport_side_html(o, "A (reference)", pw_engine_info(ea));
  pw_dreport_side_html(o, "B (candidate)", pw_engine_info(eb));
  pw_buf_adds(o, "</table>\n");
}

/* Patients left with no systemic regimen: counts, then who. */
static void html_no_regimen(pw_buf *o, const dworker *w) {
  pw_buf_adds(o, "<h2 id=\"no-regimen\">Patients left with no systemic regimen</h2>\n"
                 "<p>The protocol proposed systemic therapy and every regimen is blocked "
                 "(the result's <code>no_systemic_regimen</code> warning).</p>\n"
                 "<table class=\"t\"><tr><th>left with no systemic regimen</th><th>cases</th><th>patients (line: id)</th></tr>\n");
  for (int k = 0; k < NR_LISTS; k++) {
    const nr_list *l = &w->nr[k];
    pw_buf_addf(o, "<tr><td>%s</td><td class=\"n\">%llu</td><td>", nr_help[k], (unsigned long long)l->n);
    for (int i = 0; i < l->l.nkept; i++) {
      pw_buf_addf(o, "%s%ld", i ? ", " : "", l->l.keep[i].line);
      if (l->l.keep[i].html) { pw_buf_adds(o, ": "); exp_html(o, l->l.keep[i].html); }
    }
    if ((uint64_t)l->l.nkept < l->n) pw_buf_addf(o, " &hellip; (the first %d)", l->l.nkept);
    pw_buf_adds(o, "</td></tr>\n");
  }
  pw_buf_adds(o, "</table>\n");
}

static void html_page(pw_buf *o, const dworker *w, pw_engine *ea, pw_engine *eb) {
  static const char *const colours[NCATS] = {
    "#8c6bb1", "#2b8cbe", "#41ab5d", "#e6550d", "#fdae6b", "#de2d26", "#74c476", "#969696"};
  uint64_t compared = w->cases - w->invalid, max = 1;
  for (int c = 0; c < NCATS; c++) if (w->cat[c] > max) max = w->cat[c];
  if (w->changed > max) max = w->changed;
  html_head(o, ea, eb);
  pw_buf_addf(o, "<h2>Summary</h2>\n<table class=\"t\"><tr><th>cases</th><th>count</th><th>%% of compared</th><th>meaning</th></tr>\n"
                 "<tr><td>cases</td><td class=\"n\">%llu</td><td></td><td>lines in the cohort</td></tr>\n",
              (unsigned long long)w->cases);
  if (w->invalid)
    pw_buf_addf(o, "<tr><td>invalid</td><td class=\"n\">%llu</td><td></td><td>fail on both sides, not compared</td></tr>\n",
                (unsigned long long)w->invalid);
  pw_buf_addf(o, "<tr><td>unchanged</td><td class=\"n\">%llu</td><td class=\"n\">%.1f</td><td>same result under A and B</td></tr>\n"
                 "<tr><td><b>changed</b></td><td class=\"n\"><b>%llu</b></td><td class=\"n\"><b>%.1f</b></td><td>any category below</td></tr>\n",
              (unsigned long long)(compared - w->changed), exp_pct(compared - w->changed, compared),
              (unsigned long long)w->changed, exp_pct(w->changed, compared));
  for (int c = 0; c < NCATS; c++)
    pw_buf_addf(o, "<tr><td>%s</td><td class=\"n\">%llu</td><td class=\"n\">%.1f</td><td>%s</td></tr>\n", cat_names[c],
                (unsigned long long)w->cat[c], exp_pct(w->cat[c], compared), cat_help[c]);
  pw_buf_adds(o, "</table>\n<h2>Changed cases by category</h2>\n");
  /* a horizontal bar chart in inline SVG */
  int bar = 22, left = 150, width = 520, h = (NCATS + 1) * bar + 10;
  pw_buf_addf(o, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" role=\"img\" "
                 "aria-label=\"changed cases by category\" font-family=\"system-ui,sans-serif\" font-size=\"13\">\n",
              left + width + 120, h);
  for (int c = -1; c < NCATS; c++) {
    uint64_t v = c < 0 ? w->changed : w->cat[c];
    int y = (c + 1) * bar + 4, len = (int)((double)width * (double)v / (double)max + 0.5);
    pw_buf_addf(o, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>", left - 8, y + 15, c < 0 ? "changed (any)" : cat_names[c]);
    pw_buf_addf(o, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"><title>%llu cases</title></rect>",
                left, y + 2, len, bar - 6, c < 0 ? "#444" : colours[c], (unsigned long long)v);
    pw_buf_addf(o, "<text x=\"%d\" y=\"%d\">%llu (%.1f%%)</text>\n", left + len + 6, y + 15, (unsigned long long)v,
                exp_pct(v, compared));
  }
  pw_buf_adds(o, "</svg>\n<h2>Details</h2>\n");
  static const char *const title[NK] = {
    "pathway changes (A \xe2\x86\x92 B)", "applicability changes (A \xe2\x86\x92 B)", "added", "removed",
    "modified", "newly blocked", "no longer blocked", "errors"};
  for (int k = 0; k < NK; k++) html_counts(o, title[k], &w->cnt[k], k, k == K_ERRORS ? w->cases : compared);
  html_no_regimen(o, w);
  pw_buf_addf(o, "<h2 id=\"cases\">Changed cases</h2>\n<p>The first %d of %llu changed cases, in cohort order. "
                 "Each changed item shows its state under A &rarr; under B.</p>\n"
                 "<table class=\"t\"><tr><th>line</th><th>patient</th><th>key facts</th><th>pathway A &rarr; B</th>"
                 "<th>changed items: A &rarr; B</th></tr>\n",
              w->shown.nkept, (unsigned long long)w->changed);
  for (int i = 0; i < w->shown.nkept; i++) pw_buf_adds(o, w->shown.keep[i].html);
  pw_buf_adds(o, "</table>\n");
  pw_dreport_refs_html(o, pw_engine_info(ea), pw_engine_info(eb));
  pw_buf_adds(o, "<p><small>Written by pathwise " PW_VERSION " diff.</small></p>\n</body></html>\n");
}

/* ---- main ---- */

static int by_line(const void *x, const void *y) {
  const kept *a = x, *b = y;
  return (a->line > b->line) - (a->line < b->line);
}

/* Merge src into dst (the first HTML_CASES of both, in cohort order); src is emptied. */
static void merge_kept(kept_list *dst, kept_list *src) {
  kept all[2 * HTML_CASES];
  int k = 0;
  for (int i = 0; i < dst->nkept; i++) all[k++] = dst->keep[i];
  for (int i = 0; i < src->nkept; i++) all[k++] = src->keep[i];
  src->nkept = 0;
  qsort(all, (size_t)k, sizeof *all, by_line);
  for (int i = HTML_CASES; i < k; i++) free(all[i].html);
  dst->nkept = k < HTML_CASES ? k : HTML_CASES;
  memcpy(dst->keep, all, sizeof(kept) * (size_t)dst->nkept);
}

static void free_kept(kept_list *l) {
  for (int i = 0; i < l->nkept; i++) free(l->keep[i].html);
}

static void merge(dworker *w, int n) {
  for (int i = 1; i < n; i++) {
    w[0].cases += w[i].cases;
    w[0].changed += w[i].changed;
    w[0].invalid += w[i].invalid;
    merge_kept(&w[0].shown, &w[i].shown);
    for (int l = 0; l < NR_LISTS; l++) {
      w[0].nr[l].n += w[i].nr[l].n;
      merge_kept(&w[0].nr[l].l, &w[i].nr[l].l);
    }
    for (int c = 0; c < NCATS; c++) w[0].cat[c] += w[i].cat[c];
    for (int k = 0; k < NK; k++) exp_count_merge(&w[0].cnt[k], &w[i].cnt[k]);
  }
}

static void free_worker(dworker *w) {
  pw_engine_free(w->a);
  pw_engine_free(w->b);
  for (int k = 0; k < NK; k++) exp_count_free(&w->cnt[k]);
  pw_buf_free(&w->key);
  free_kept(&w->shown);
  for (int l = 0; l < NR_LISTS; l++) free_kept(&w->nr[l].l);
}

/* JSON cases are separated by commas: the first one written loses its own. */
typedef struct emitter { int json, started; } emitter;

static int emit_out(void *ud, const char *data, size_t len) {
  emitter *em = ud;
  if (em->json && !em->started && len > 0 && data[0] == ',') { data++; len--; }
  em->started = 1;
  return fwrite(data, 1, len, stdout) == len ? 0 : -1;
}

typedef struct dopts {
  exp_opts o;
  side a, b;
  const char *html;
  int json, summary_only;
} dopts;

/* Returns -1 to go on, else the exit code. */
static int parse_diff_opts(int argc, char **argv, dopts *d) {
  static const struct option longs[] = {
    {"a", required_argument, 0, 'A'}, {"b", required_argument, 0, 'B'},
    {"a-plugin", required_argument, 0, 'x'}, {"b-plugin", required_argument, 0, 'y'},
    PW_OPT_LONG_FORMAT, {"html", required_argument, 0, 'H'},
    {"summary-only", no_argument, 0, 's'}, {"help", no_argument, 0, 'h'},
    EXP_LONG_OPTIONS, {0, 0, 0, 0}};
  int c, code;
  exp_opts_init(&d->o);
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "f:sj:h", longs, NULL)) != -1) {
    switch (c) {
    case 'A': d->a.path = optarg; break;
    case 'B': d->b.path = optarg; break;
    case 'x': case 'y': {
      side *s = c == 'x' ? &d->a : &d->b;
      if (s->nplugins == PW_MAX_PLUGINS) return exp_usage("diff", usage_diff, "at most %d plugins a side", PW_MAX_PLUGINS);
      s->plugins[s->nplugins++] = optarg;
      break;
    }
    case 'H': d->html = optarg; break;
    case 's': d->summary_only = 1; break;
    case 'h': fputs(usage_diff, stdout); return PW_EX_OK;
    default:
      if ((code = exp_shared_opt(c, optarg, &d->o, "diff", usage_diff)) != -2) {
        if (code >= 0) return code;
        break;
      }
      return exp_usage("diff", usage_diff, "unknown or incomplete option '%s'", argv[optind - 1]);
    }
  }
  d->json = pw_cmd_json(&d->o.cmd) == 1;
  if (!d->a.path || !d->b.path) return exp_usage("diff", usage_diff, "both --a and --b are required");
  if (optind != argc - 1) return exp_usage("diff", usage_diff, "expected exactly one COHORT.jsonl (or - for stdin)");
  return -1;
}

/* What goes before the cases: the two sides. */
static int write_head(const dopts *d, const dworker *w) {
  pw_buf head = {0};
  if (d->json) {   /* {"a":..,"b":..,"cases":[ then the cases as they come */
    pw_jsonw j;
    pw_jsonw_init(&j, &head);
    pw_jsonw_begin_object(&j);
    side_json(&j, "a", w->a, &d->a);
    side_json(&j, "b", w->b, &d->b);
    pw_jsonw_key(&j, "cases");
    pw_jsonw_begin_array(&j);
  } else {
    pw_buf_adds(&head, "pathwise diff\n");
    side_text(&head, "A", w->a, &d->a);
    side_text(&head, "B", w->b, &d->b);
    pw_buf_adds(&head, "\n");
  }
  int code = exp_write(stdout, "stdout", &head);
  pw_buf_free(&head);
  return code;
}

/* What goes after the cases: the summary, then the HTML page if asked. */
static int write_tail(const dopts *d, const dworker *w) {
  pw_buf b = {0};
  if (d->json) {   /* close the cases, then the summary and the document */
    pw_jsonw j;
    pw_buf_adds(&b, "\n]");
    pw_jsonw_init_in(&j, &b);
    pw_jsonw_key(&j, "summary");
    summary_json(&j, w);
    pw_jsonw_end_object(&j);
    pw_buf_add(&b, "\n", 1);
  } else {
    summary_text(&b, w);
  }
  int code = exp_write(stdout, "stdout", &b);
  if (d->html && code == PW_EX_OK) {
    pw_buf_reset(&b);
    html_page(&b, w, w->a, w->b);
    FILE *f = fopen(d->html, "wb");
    if (!f) { perror(d->html); code = PW_EX_IOERR; }
    else {
      code = exp_write(f, d->html, &b);
      if (fclose(f) && code == PW_EX_OK) code = PW_EX_IOERR;
    }
  }
  pw_buf_free(&b);
  return code;
}

int pw_diff_main(int argc, char **argv) {
  dopts d;
  memset(&d, 0, sizeof d);
  int code = parse_diff_opts(argc, argv, &d);
  if (code >= 0) return code;
  int ns = d.a.nplugins;
  for (int s = 0; s < 2; s++) {   /* the shared --plugin list, for display */
    side *sd = s ? &d.b : &d.a;
    for (int i = 0; i < d.o.cmd.nplugins && sd->nplugins < 2 * PW_MAX_PLUGINS; i++) sd->plugins[sd->nplugins++] = d.o.cmd.plugins[i];
  }
  int jobs = exp_jobs(&d.o);
  dworker *w = calloc((size_t)jobs, sizeof *w);
  void **states = calloc((size_t)jobs, sizeof *states);
  if (!w || !states) { free(w); free(states); fprintf(stderr, "pathwise: out of memory\n"); return PW_EX_SOFTWARE; }
  code = PW_EX_OK;
  for (int i = 0; i < jobs && code == PW_EX_OK; i++) {
    w[i].a = exp_engine(d.a.path, &d.o, d.a.plugins, ns, &code);
    if (code == PW_EX_OK) w[i].b = exp_engine(d.b.path, &d.o, d.b.plugins, d.b.nplugins - d.o.cmd.nplugins, &code);
    w[i].format_json = d.json;
    w[i].summary_only = d.summary_only;
    w[i].html = d.html != NULL;
    states[i] = &w[i];
  }
  if (code == PW_EX_OK) code = write_head(&d, &w[0]);
  if (code == PW_EX_OK) {
    emitter em = {d.json, 0};
    exp_pipeline p = {0};
    p.input = argv[optind];
    p.jobs = jobs;
    p.progress = exp_show_progress(&d.o);
    p.workers = states;
    p.process = diff_line;
    p.emit = emit_out;
    p.ud = &em;
    code = exp_pipeline_run(&p);
    if (code == PW_EX_OK) {
      merge(w, jobs);
      code = write_tail(&d, &w[0]);
    }
  }
  for (int i = 0; i < jobs; i++) free_worker(&w[i]);
  free(w);
  free(states);
  return code;
}
