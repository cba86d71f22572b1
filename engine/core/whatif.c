/*
** whatif.c: what would change the plan (see whatif.h).
**
** One run: evaluate the patient; copy that result; find the facts left
** absent or "unknown" that the catalogue below can enumerate (and the
** panels they form); evaluate each value (each combination, for a panel)
** with the value set in the decoded facts table; compare each variant
** with the patient's result (resultdiff.c); restore the table; evaluate
** the patient again so the engine holds the patient's own result.
*/
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "facts.h"
#include "jsonw.h"
#include "knowledge.h"
#include "resultdiff.h"
#include "whatif.h"

/* ---- the catalogue: facts pathwise can try, and their values ---- */

#define MAX_VALS 8
#define MAX_DIMS 4

typedef struct wi_val { const char *key, *json; } wi_val;
typedef struct wi_spec {
  const char *path, *name;   /* name: short, in a panel's value keys */
  int null_is_value;         /* JSON null is a value (no surgery planned), not unknown */
  int nvals;                 /* 0: from the facts schema: an enum's names (but "unknown"),
                                a set's "none" ([]) and each name alone */
  wi_val vals[MAX_VALS];
} wi_spec;

enum {
  S_ECOG, S_METASTATIC, S_REGIMENS, S_OUTCOME, S_SITE, S_RESECTED, S_PELVIC_RT, S_PSYMPTOMS,
  S_NEURO_GRADE, S_NEURO_PERSISTENT, S_KRAS, S_NRAS, S_BRAF, S_MSI, S_SURGERY, S_RT_SITES,
  S_MSYMPTOMS, NSPECS
};

#define BOOLS 2, {{"true", "true"}, {"false", "false"}}
#define GRADES 5, {{"0", "0"}, {"1", "1"}, {"2", "2"}, {"3", "3"}, {"4", "4"}}
#define FOLFOX(o) "[{\"name\":\"FOLFOX\",\"line\":1,\"outcome\":\"" o "\"}]"

/* Fixed order: facts are explored, and values tried, in this order. An enum
** takes every value the facts schema (facts_schema.c) lists; numbers take
** the values the protocol and the kernel tell apart: every ECOG and
** neuropathy grade, surgery within 42 days (30) or later (60) or none. */
static const wi_spec specs[NSPECS] = {
  {"ecog", "ecog", 0, GRADES},
  {"metastatic", "metastatic", 0, BOOLS},
  {"prior_regimens", "prior_regimens", 0, 4,
   {{"folfox_progression", FOLFOX("progression")}, {"folfox_intolerance", FOLFOX("intolerance")},
    {"folfox_ongoing", FOLFOX("ongoing")}, {"none", "[]"}}},
  {"prior_regimens[].outcome", "outcome", 0, 0, {{0}}},   /* each record whose outcome is unknown */
  {"primary.site", "site", 0, 0, {{0}}},
  {"primary.resected", "resected", 0, BOOLS},
  {"primary.prior_pelvic_radiation", "prior_pelvic_radiation", 0, BOOLS},
  {"primary.symptoms", "primary_symptoms", 0, 0, {{0}}},
  {"neuropathy.grade", "neuropathy_grade", 0, GRADES},
  {"neuropathy.persistent", "neuropathy_persistent", 0, BOOLS},
  {"molecular.kras", "kras", 0, 0, {{0}}},
  {"molecular.nras", "nras", 0, 0, {{0}}},
  {"molecular.braf_v600e", "braf_v600e", 0, 0, {{0}}},
  {"molecular.msi", "msi", 0, 0, {{0}}},
  {"planned_surgery_in_days", "surgery", 1, 3, {{"none", "null"}, {"30", "30"}, {"60", "60"}}},
  {"prior_radiation_sites", "prior_radiation_sites", 0, 2, {{"none", "[]"}, {"groin", "[\"groin\"]"}}},
  {"metastases[].symptoms", "symptoms", 0, 0, {{0}}},     /* each metastasis whose symptoms are unknown */
};

/* Tests ordered together: every combination of the members that are unknown. */
typedef struct wi_panel { const char *id, *label; int n, members[MAX_DIMS]; } wi_panel;
static const wi_panel panels[] = {
  {"panel.ras", "RAS panel", 2, {S_KRAS, S_NRAS}},
  {"panel.molecular", "molecular panel", 4, {S_KRAS, S_NRAS, S_BRAF, S_MSI}},
};
#define NPANELS ((int)(sizeof panels / sizeof panels[0]))
#define MAX_ENTRIES 64
#define MAX_SKIPS 32

/* ---- state of one run ---- */

typedef struct wi_value {
  int combo[MAX_DIMS];       /* value index per dimension */
  int impact;
  size_t j_off, j_len;       /* the differences as JSON, in frag */
  size_t t_off, t_len;       /* ... as text ("" when nothing changes) */
} wi_value;

typedef struct wi_entry {
  char id[48];               /* fact path ("metastases[1].symptoms") or panel id */
  int panel;                 /* index in panels, -1 for one fact */
  int elem;                  /* a list's record (0-based) for a "list[].field" spec, else -1 */
  int ndims, dims[MAX_DIMS]; /* spec indices */
  const char *orders[MAX_DIMS];
  int norders;
  const char *test;          /* one fact: the test the missing list names */
  int listed;                /* one fact: in the patient's missing list */
  int impact, v0, nv;
  int nerr;                  /* values whose evaluation failed: never "no change" */
} wi_entry;

typedef struct wi_skip { char fact[48]; const char *reason; } wi_skip;

struct pw_whatif {
  pw_result base;            /* the patient's own result (copied) */
  pw_rdiff_key kb[PW_RDIFF_MAX_KEYS], kv[PW_RDIFF_MAX_KEYS];
  pw_rdiff_change ch[2 * PW_RDIFF_MAX_KEYS];
  int cats[PW_RDIFF_NCATS];
  wi_entry ent[MAX_ENTRIES];
  int nent, rank[MAX_ENTRIES];
  wi_value val[PW_WHATIF_MAX_EVALS];
  int nval;
  wi_skip skip[MAX_SKIPS];
  int nskip;
  pw_buf frag, scratch;
  int evals;
  uint64_t elapsed_us;
};

static const char *const impact_names[] = {"none", "option", "regimen", "pathway"};
/* The values of spec s: its own list, or the names of its enum in the schema. */
static int nvals(int s) {
  if (specs[s].nvals) return specs[s].nvals;
  const pw_field *f = pw_facts_field(specs[s].path);
  int n = !f ? 0 : f->kind == PW_FK_ENUM ? f->nnames - (f->unknown_name != 0) : f->kind == PW_FK_SET ? 1 + f->nnames : 0;
  return n < MAX_VALS ? n : MAX_VALS;
}

static const char *val_key(int s, int j) {
  if (specs[s].nvals) return specs[s].vals[j].key;
  const pw_field *f = pw_facts_field(specs[s].path);
  if (f->kind == PW_FK_SET) return j ? f->names[j - 1] : "none";
  for (int i = 0; i < f->nnames; i++)
    if (i + 1 != f->unknown_name && j-- == 0) return f->names[i];
  return "?";
}

/* The value as JSON text, into buf. */
static const char *val_json(int s, int j, char *buf, size_t n) {
  if (specs[s].nvals) return specs[s].vals[j].json;
  const pw_field *f = pw_facts_field(specs[s].path);
  if (f->kind == PW_FK_SET) snprintf(buf, n, j ? "[\"%s\"]" : "[]", val_key(s, j));
  else snprintf(buf, n, "\"%s\"", val_key(s, j));   /* schema names are plain */
  return buf;
}

const char *pw_whatif_impact_name(int impact) { return impact_names[impact & 3]; }

pw_whatif *pw_whatif_new(void) {
  pw_whatif *w = calloc(1, sizeof *w);
  if (w) pw_result_reset(&w->base);
  return w;
}

void pw_whatif_free(pw_whatif *w) {
  if (!w) return;
  pw_result_free(&w->base);
  pw_buf_free(&w->frag);
  pw_buf_free(&w->scratch);
  free(w);
}

static pw_status fail(pw_error *err, pw_status code, const char *msg) {
  if (err) {
    err->code = code;
    snprintf(err->msg, sizeof err->msg, "%s", msg);
  }
  return code;
}

static uint64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- a copy of the patient's result: what the comparison reads ---- */

static const char *dup(pw_arena *a, const char *s) {
  return s ? pw_arena_strdup(a, s, strlen(s)) : NULL;
}

static int copy_result(pw_result *d, const pw_result *s) {
  pw_result_reset(d);
  d->applicable = s->applicable;
  d->patient_id = dup(&d->arena, s->patient_id);
  d->pathway = dup(&d->arena, s->pathway);
  for (int i = 0; i < s->items.n; i++) {
    const pw_item *x = &s->items.v[i];
    pw_item *y = pw_result_add_item(d);
    if (!y) return -1;
    *y = *x;
    y->facts = NULL;
    y->nfacts = 0;
    y->evidence = y->rule_evidence = NULL;
    y->id = dup(&d->arena, x->id);
    y->kind = dup(&d->arena, x->kind);
    y->strength = dup(&d->arena, x->strength);
    y->text = dup(&d->arena, x->text);
    y->rationale = dup(&d->arena, x->rationale);
    y->group = dup(&d->arena, x->group);
    y->rule = dup(&d->arena, x->rule);
    y->reason = dup(&d->arena, x->reason);
    if (!y->id) return -1;
  }
  for (int i = 0; i < s->missing.n; i++) {
    const pw_missing *x = &s->missing.v[i];
    pw_missing *y = pw_result_add_missing(d, x->fact);
    if (!y || !y->fact) return -1;
    y->why = dup(&d->arena, x->why);
    y->order = dup(&d->arena, x->order);
    y->test = dup(&d->arena, x->test);
    y->cites = x->cites;
    y->source = x->source;
  }
  return 0;
}

/* ---- reading and writing the facts table (raw access only) ---- */

/* "molecular.kras" -> parent "molecular", leaf "kras"; "ecog" -> "", "ecog";
** "metastases[].symptoms" -> parent "metastases" (a list), leaf "symptoms". */
static const char *split(const char *path, char *parent, size_t n) {
  const char *dot = strchr(path, '.');
  if (!dot) { parent[0] = '\0'; return path; }
  size_t l = (size_t)(dot - path);
  if (l >= 2 && dot[-2] == '[' && dot[-1] == ']') l -= 2;
  snprintf(parent, n, "%.*s", (int)l, path);
  return dot + 1;
}

/* Push record elem (0-based) of list `name`; 0, or -1 (nothing pushed)
** when there is no such record. */
static int push_record(lua_State *L, int facts, const char *name, int elem) {
  lua_pushstring(L, name);
  if (lua_rawget(L, facts) != LUA_TTABLE) { lua_pop(L, 1); return -1; }
  int t = lua_rawgeti(L, -1, elem + 1);
  lua_remove(L, -2);
  if (t != LUA_TTABLE) { lua_pop(L, 1); return -1; }
  return 0;
}

/* Is the fact (of record elem, for a list's field) absent, "unknown" or
** (unless null is a value) null? */
static int is_unknown(lua_State *L, int facts, const wi_spec *sp, int elem) {
  char parent[32];
  const char *leaf = split(sp->path, parent, sizeof parent);
  int top = lua_gettop(L), t = facts, unknown;
  if (elem >= 0) {
    if (push_record(L, facts, parent, elem)) return 0;
    t = lua_gettop(L);
  } else if (parent[0]) {
    lua_pushstring(L, parent);
    if (lua_rawget(L, facts) != LUA_TTABLE) { lua_settop(L, top); return 1; }
    t = lua_gettop(L);
  }
  lua_pushstring(L, leaf);
  int ty = lua_rawget(L, t);
  unknown = ty == LUA_TNIL || (ty == LUA_TSTRING && !strcmp(lua_tostring(L, -1), "unknown")) ||
            (ty == LUA_TLIGHTUSERDATA && !lua_touserdata(L, -1) && !sp->null_is_value);
  lua_settop(L, top);
  return unknown;
}

/* Set dimension d of entry en to its value j (from the decoded values list
** at V). Pushes two slots for restore_value: the parent as it was, the
** value as it was. Returns 1 when the parent was not a table and was
** replaced by one. A list's record always exists (find_entries checked). */
static int set_value(lua_State *L, int facts, int V, const wi_entry *en, int d, int j) {
  int s = en->dims[d];
  char parent[32];
  const char *leaf = split(specs[s].path, parent, sizeof parent);
  int replaced = 0, t = facts;
  if (en->elem >= 0) {
    lua_pushnil(L);                              /* slot 1: unused */
    push_record(L, facts, parent, en->elem);
    t = lua_gettop(L);
  } else if (parent[0]) {
    lua_pushstring(L, parent);
    if (lua_rawget(L, facts) != LUA_TTABLE) {   /* slot 1 */
      lua_pushstring(L, parent);
      lua_newtable(L);
      lua_rawset(L, facts);
      replaced = 1;
    }
    lua_pushstring(L, parent);
    lua_rawget(L, facts);
    t = lua_gettop(L);
  } else {
    lua_pushnil(L);
  }
  lua_pushstring(L, leaf);
  lua_rawget(L, t);                              /* slot 2 */
  lua_pushstring(L, leaf);
  lua_rawgeti(L, V, s + 1);
  lua_rawgeti(L, -1, j + 1);
  lua_remove(L, -2);
  lua_rawset(L, t);
  if (t != facts) lua_remove(L, t);
  return replaced;
}

static void restore_value(lua_State *L, int facts, const wi_entry *en, int d, int replaced) {
  char parent[32];
  const char *leaf = split(specs[en->dims[d]].path, parent, sizeof parent);
  if (!parent[0]) {
    lua_pushstring(L, leaf);
    lua_pushvalue(L, -2);
    lua_rawset(L, facts);
  } else if (replaced) {
    lua_pushstring(L, parent);
    lua_pushvalue(L, -3);
    lua_rawset(L, facts);
  } else {
    if (en->elem >= 0) push_record(L, facts, parent, en->elem);
    else { lua_pushstring(L, parent); lua_rawget(L, facts); }
    lua_pushstring(L, leaf);
    lua_pushvalue(L, -3);
    lua_rawset(L, -3);
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
}

/* Decode every catalogue value with the engine's own decoder, so a value
** is represented exactly as the same JSON in a patient's record would be.
** Pushes the list of lists. */
static pw_status push_values(pw_whatif *w, pw_engine *e, pw_error *err) {
  pw_buf *b = &w->scratch;
  pw_buf_reset(b);
  pw_buf_adds(b, "{\"v\":[");
  for (int s = 0; s < NSPECS; s++) {
    pw_buf_adds(b, s ? ",[" : "[");
    for (int j = 0; j < nvals(s); j++) {
      char tmp[80];
      pw_buf_addf(b, "%s%s", j ? "," : "", val_json(s, j, tmp, sizeof tmp));
    }
    pw_buf_adds(b, "]");
  }
  pw_buf_adds(b, "]}");
  pw_status rc = pw_engine_decode(e, b->data, b->len, NULL, err);
  if (rc != PW_OK) return rc;
  lua_State *L = pw_engine_lua(e);
  lua_pushliteral(L, "v");
  lua_rawget(L, -2);
  lua_remove(L, -2);
  return PW_OK;
}

/* ---- what to explore ---- */

static const pw_missing *missing_of(const pw_result *r, const char *fact) {
  for (int i = 0; i < r->missing.n; i++)
    if (!strcmp(r->missing.v[i].fact, fact)) return &r->missing.v[i];
  return NULL;
}

static int single_of(const pw_whatif *w, int s) {
  for (int i = 0; i < w->nent; i++)
    if (w->ent[i].panel < 0 && w->ent[i].elem < 0 && w->ent[i].dims[0] == s) return i;
  return -1;
}

static void add_order(wi_entry *en, const char *order) {
  if (!order) return;
  for (int k = 0; k < en->norders; k++)
    if (!strcmp(en->orders[k], order)) return;
  if (en->norders < MAX_DIMS) en->orders[en->norders++] = order;
}

static void add_skip(pw_whatif *w, const char *fact, const char *reason) {
  if (w->nskip == MAX_SKIPS) return;
  snprintf(w->skip[w->nskip].fact, sizeof w->skip[0].fact, "%s", fact);
  w->skip[w->nskip++].reason = reason;
}

static void add_panels(pw_whatif *w) {
  int prev[MAX_DIMS], nprev = -1;
  for (int p = 0; p < NPANELS && w->nent < MAX_ENTRIES; p++) {
    wi_entry en = {0};
    snprintf(en.id, sizeof en.id, "%s", panels[p].id);
    en.panel = p;
    en.elem = -1;
    for (int k = 0; k < panels[p].n; k++) {
      int i = single_of(w, panels[p].members[k]);
      if (i < 0) continue;
      en.dims[en.ndims++] = panels[p].members[k];
      add_order(&en, w->ent[i].norders ? w->ent[i].orders[0] : NULL);
    }
    if (en.ndims < 2) continue;
    if (en.ndims == nprev && !memcmp(prev, en.dims, sizeof(int) * (size_t)en.ndims)) continue;   /* same tests */
    memcpy(prev, en.dims, sizeof prev);
    nprev = en.ndims;
    w->ent[w->nent++] = en;
  }
}

/* One fact to try: spec s, of record elem of its list (or -1). */
static void add_single(pw_whatif *w, int s, int elem) {
  char parent[32];
  split(specs[s].path, parent, sizeof parent);
  if (w->nent == MAX_ENTRIES) {
    add_skip(w, specs[s].path, "over the limit of facts per patient");
    return;
  }
  wi_entry *en = &w->ent[w->nent++];
  memset(en, 0, sizeof *en);
  if (elem < 0) snprintf(en->id, sizeof en->id, "%s", specs[s].path);
  else snprintf(en->id, sizeof en->id, "%s[%d].%s", parent, elem, strchr(specs[s].path, '.') + 1);
  en->panel = -1;
  en->elem = elem;
  en->ndims = 1;
  en->dims[0] = s;
  const pw_missing *m = missing_of(&w->base, elem < 0 ? specs[s].path : parent);
  if (m) {
    en->listed = 1;
    en->test = m->test;
    add_order(en, m->order);
  }
}

/* Is a missing fact covered by an entry (itself, or a field of one of its records)? */
static int covered(const pw_whatif *w, const char *fact) {
  size_t n = strlen(fact);
  for (int i = 0; i < w->nent; i++)
    if (!strcmp(w->ent[i].id, fact) || (!strncmp(w->ent[i].id, fact, n) && w->ent[i].id[n] == '[')) return 1;
  return 0;
}

static void find_entries(pw_whatif *w, lua_State *L, int facts) {
  for (int s = 0; s < NSPECS; s++) {
    char parent[32];
    split(specs[s].path, parent, sizeof parent);
    if (!strstr(specs[s].path, "[]")) {
      if (is_unknown(L, facts, &specs[s], -1)) add_single(w, s, -1);
      continue;
    }
    lua_pushstring(L, parent);
    int n = lua_rawget(L, facts) == LUA_TTABLE ? (int)lua_rawlen(L, -1) : 0;
    lua_pop(L, 1);
    for (int i = 0; i < n; i++)
      if (is_unknown(L, facts, &specs[s], i)) add_single(w, s, i);
  }
  add_panels(w);
  for (int i = 0; i < w->base.missing.n; i++) {
    const char *fact = w->base.missing.v[i].fact;
    int s = 0;
    while (s < NSPECS && strcmp(specs[s].path, fact)) s++;
    if (covered(w, fact)) continue;
    if (s == NSPECS) add_skip(w, fact, "no values to try for this fact");
    else add_skip(w, fact, "recorded but incomplete: values are tried only for a fact that is absent or unknown");
  }
}

/* ---- comparing one variant with the patient's result ---- */

static int excluded(const wi_entry *en, const char *key) {
  for (int k = 0; k < en->norders; k++)   /* the test that yields the result itself */
    if (!strcmp(en->orders[k], key)) return 1;
  return 0;
}

/* "text, rationale": only the wording changed (no strtok: batch runs threads). */
static int wording_only(const char *what) {
  while (*what) {
    size_t l = strcspn(what, ", ");
    if (!(l == 4 && !strncmp(what, "text", 4)) && !(l == 9 && !strncmp(what, "rationale", 9))) return 0;
    what += l;
    what += strspn(what, ", ");
  }
  return 1;
}

/* A systemic anticancer item that is the plan (not an alternative offered beside it). */
static int regimen_item(const pw_item *it) {
  uint32_t systemic = ~pw_knowledge_class_agents(PW_CLS_BONE_AGENT);
  return it && (it->agents & systemic) && (!it->group || it->preferred || it->source == PW_SRC_ORDER);
}

static int change_impact(const pw_rdiff_change *c) {
  if (c->cat == PW_RDIFF_MODIFIED && wording_only(c->what)) return PW_WI_NONE;
  return regimen_item(c->a) || regimen_item(c->b) ? PW_WI_REGIMEN : PW_WI_OPTION;
}

static const char *const cat_json[PW_RDIFF_NCATS] = {
  "applicability", "pathway", "added", "removed", "modified", "newly_blocked", "no_longer_blocked"};
static const char *const cat_verb[PW_RDIFF_NCATS] = {
  NULL, NULL, "adds", "removes", "changes", "blocks", "unblocks"};

static const char *applic_name(int a) { return a == 1 ? "yes" : a == 0 ? "no" : "cannot tell"; }
static const char *pw_name(const char *p) { return p ? p : "none"; }

static void value_json(pw_buf *b, const pw_rdiff_change *ch, int n, const int *cats, const pw_result *r, int impact) {
  pw_jsonw j;
  pw_jsonw_init(&j, b);
  pw_jsonw_begin_object(&j);
  pw_jsonw_field_str(&j, "impact", impact_names[impact]);
  pw_jsonw_key(&j, "changes");
  pw_jsonw_begin_array(&j);
  for (int c = 0; c < PW_RDIFF_NCATS; c++)
    if (cats[c]) pw_jsonw_str(&j, cat_json[c]);
  pw_jsonw_end_array(&j);
  pw_jsonw_key(&j, "applicable");
  if (r->applicable < 0) pw_jsonw_null(&j);
  else pw_jsonw_bool(&j, r->applicable);
  pw_jsonw_field_str(&j, "pathway", r->pathway);
  for (int cat = PW_RDIFF_ADDED; cat < PW_RDIFF_NCATS; cat++) {
    pw_jsonw_key(&j, cat_json[cat]);
    pw_jsonw_begin_array(&j);
    for (int i = 0; i < n; i++) {
      const pw_rdiff_change *c = &ch[i];
      if (c->cat != cat) continue;
      if (cat == PW_RDIFF_ADDED || cat == PW_RDIFF_REMOVED) { pw_jsonw_str(&j, c->key); continue; }
      pw_jsonw_begin_object(&j);
      pw_jsonw_field_str(&j, "item", c->key);
      if (cat == PW_RDIFF_MODIFIED) {
        pw_jsonw_key(&j, "fields");
        pw_jsonw_begin_array(&j);
        for (const char *f = c->what; *f;) {   /* "text, citations" -> ["text","citations"] */
          size_t l = strcspn(f, ",");
          pw_jsonw_rawf(&j, "\"%.*s\"", (int)l, f);
          f += l;
          f += strspn(f, ", ");
        }
        pw_jsonw_end_array(&j);
      } else {
        pw_jsonw_field_str(&j, "rule", (cat == PW_RDIFF_BLOCKED ? c->b : c->a)->rule);
      }
      pw_jsonw_end_object(&j);
    }
    pw_jsonw_end_array(&j);
  }
  pw_jsonw_end_object(&j);
}

/* "pathway a -> b; adds x, y; blocks z (by rule)"; "" when nothing that
** matters changed (wording only). */
static void value_text(pw_buf *b, const pw_rdiff_change *ch, int n, const int *cats, const pw_result *base,
                       const pw_result *r) {
  const char *sep = "";
  if (cats[PW_RDIFF_APPLICABILITY]) {
    pw_buf_addf(b, "protocol applies: %s -> %s", applic_name(base->applicable), applic_name(r->applicable));
    sep = "; ";
  }
  if (cats[PW_RDIFF_PATHWAY]) {
    pw_buf_addf(b, "%spathway %s -> %s", sep, pw_name(base->pathway), pw_name(r->pathway));
    sep = "; ";
  }
  for (int cat = PW_RDIFF_ADDED; cat < PW_RDIFF_NCATS; cat++) {
    int k = 0;
    for (int i = 0; i < n; i++) {
      const pw_rdiff_change *c = &ch[i];
      if (c->cat != cat || change_impact(c) == PW_WI_NONE) continue;
      if (k++) pw_buf_addf(b, ", %s", c->key);
      else pw_buf_addf(b, "%s%s %s", sep, cat_verb[cat], c->key);
      if (cat == PW_RDIFF_MODIFIED) pw_buf_addf(b, " (%s)", c->what);
      else if (cat == PW_RDIFF_BLOCKED) pw_buf_addf(b, " (by %s)", c->b->rule);
      else if (cat == PW_RDIFF_UNBLOCKED) pw_buf_addf(b, " (was %s)", c->a->rule);
      sep = "; ";
    }
  }
}

static void record_diff(pw_whatif *w, const wi_entry *en, wi_value *v, const pw_result *r) {
  int nb = pw_rdiff_keys(&w->base, w->kb), nv = pw_rdiff_keys(r, w->kv), n = 0;
  memset(w->cats, 0, sizeof w->cats);
  pw_rdiff d = {w->ch, 0, w->cats};
  pw_rdiff_compare(&d, &w->base, w->kb, nb, r, w->kv, nv);
  for (int c = PW_RDIFF_ADDED; c < PW_RDIFF_NCATS; c++) w->cats[c] = 0;
  v->impact = w->cats[PW_RDIFF_APPLICABILITY] || w->cats[PW_RDIFF_PATHWAY] ? PW_WI_PATHWAY : PW_WI_NONE;
  for (int i = 0; i < d.nch; i++) {
    if (excluded(en, w->ch[i].key)) continue;
    w->ch[n] = w->ch[i];
    w->cats[w->ch[n].cat] = 1;
    int imp = change_impact(&w->ch[n++]);
    if (imp > v->impact) v->impact = imp;
  }
  v->j_off = w->frag.len;
  value_json(&w->frag, w->ch, n, w->cats, r, v->impact);
  v->j_len = w->frag.len - v->j_off;
  v->t_off = w->frag.len;
  value_text(&w->frag, w->ch, n, w->cats, &w->base, r);
  v->t_len = w->frag.len - v->t_off;
}

static void record_error(pw_whatif *w, wi_value *v, pw_status rc, const pw_error *verr) {
  pw_jsonw j;
  v->impact = PW_WI_NONE;
  v->j_off = w->frag.len;
  pw_jsonw_init(&j, &w->frag);
  pw_jsonw_begin_object(&j);
  pw_jsonw_field_str(&j, "impact", "none");
  pw_jsonw_key(&j, "error");
  pw_jsonw_begin_object(&j);
  pw_jsonw_field_str(&j, "status", pw_status_name(rc));
  pw_jsonw_field_str(&j, "message", verr->msg);
  pw_jsonw_end_object(&j);
  pw_jsonw_end_object(&j);
  v->j_len = w->frag.len - v->j_off;
  v->t_off = w->frag.len;
  pw_buf_addf(&w->frag, "cannot tell: the evaluation failed (%s: %s)", pw_status_name(rc), verr->msg);
  v->t_len = w->frag.len - v->t_off;
}

/* ---- exploring ---- */

static int combos(const wi_entry *en) {
  int n = 1;
  for (int d = 0; d < en->ndims; d++) n *= nvals(en->dims[d]);
  return n;
}

/* Combination c (the first dimension varies slowest) into v->combo. */
static void decode_combo(const wi_entry *en, int c, wi_value *v) {
  for (int d = en->ndims - 1; d >= 0; d--) {
    int nv = nvals(en->dims[d]);
    v->combo[d] = c % nv;
    c /= nv;
  }
}

static pw_status explore_entry(pw_whatif *w, pw_engine *e, wi_entry *en, int facts, int V, pw_error *err) {
  lua_State *L = pw_engine_lua(e);
  int n = combos(en);
  en->v0 = w->nval;
  for (int c = 0; c < n; c++) {
    wi_value *v = &w->val[w->nval++];
    int replaced[MAX_DIMS], top = lua_gettop(L);
    memset(v, 0, sizeof *v);
    decode_combo(en, c, v);
    for (int d = 0; d < en->ndims; d++) replaced[d] = set_value(L, facts, V, en, d, v->combo[d]);
    pw_error verr;
    pw_status rc = pw_engine_eval_table(e, facts, 0, 0, NULL, &verr);
    w->evals++;
    lua_settop(L, top + 2 * en->ndims);
    for (int d = en->ndims - 1; d >= 0; d--) restore_value(L, facts, en, d, replaced[d]);
    if (rc == PW_EMEMORY || rc == PW_EINTERNAL) {
      if (err) *err = verr;
      return rc;
    }
    if (rc == PW_OK) record_diff(w, en, v, pw_engine_result(e));
    else record_error(w, v, rc, &verr), en->nerr++;
    if (v->impact > en->impact) en->impact = v->impact;
  }
  en->nv = n;
  return PW_OK;
}

static pw_status explore(pw_whatif *w, pw_engine *e, int facts, int V, pw_error *err) {
  int kept = 0;
  for (int i = 0; i < w->nent; i++) {
    wi_entry *en = &w->ent[i];
    if (w->nval + combos(en) > PW_WHATIF_MAX_EVALS) {
      add_skip(w, en->id, "over the limit of evaluations per patient");
      continue;
    }
    pw_status rc = explore_entry(w, e, en, facts, V, err);
    if (rc != PW_OK) return rc;
    w->ent[kept++] = *en;
  }
  w->nent = kept;
  return PW_OK;
}

/* Rank: impact first, then one fact before a panel, then catalogue order. */
static void rank(pw_whatif *w) {
  for (int i = 0; i < w->nent; i++) {
    int j = i;
    const wi_entry *x = &w->ent[i];
    for (; j > 0; j--) {
      const wi_entry *y = &w->ent[w->rank[j - 1]];
      if (y->impact > x->impact || (y->impact == x->impact && (y->panel >= 0) <= (x->panel >= 0))) break;
      w->rank[j] = w->rank[j - 1];
    }
    w->rank[j] = i;
  }
}

pw_status pw_whatif_run(pw_whatif *w, pw_engine *e, int facts_idx, unsigned flags, pw_buf *result_json,
                        pw_error *err) {
  lua_State *L = pw_engine_lua(e);
  uint64_t t0 = now_us();
  int facts = lua_absindex(L, facts_idx), top = lua_gettop(L);
  w->nent = w->nval = w->nskip = w->evals = 0;
  w->elapsed_us = 0;
  pw_buf_reset(&w->frag);
  pw_status rc = pw_engine_eval_table(e, facts, 0, flags, NULL, err);
  if (rc != PW_OK) return rc;
  if (copy_result(&w->base, pw_engine_result(e)) || !lua_checkstack(L, 2 * MAX_DIMS + 16))
    return fail(err, PW_EMEMORY, "what-if: out of memory");
  find_entries(w, L, facts);
  if (w->nent) rc = push_values(w, e, err);
  if (w->nent && rc == PW_OK) rc = explore(w, e, facts, lua_gettop(L), err);
  lua_settop(L, top);
  if (rc == PW_OK) rc = pw_engine_eval_table(e, facts, 0, flags, result_json, err);   /* the patient's own, again */
  rank(w);
  w->elapsed_us = now_us() - t0;
  return rc;
}

/* ---- accessors ---- */

int pw_whatif_count(const pw_whatif *w) { return w->nent; }
const char *pw_whatif_id(const pw_whatif *w, int i) { return w->ent[w->rank[i]].id; }
int pw_whatif_impact(const pw_whatif *w, int i) { return w->ent[w->rank[i]].impact; }
int pw_whatif_evaluations(const pw_whatif *w) { return w->evals; }
uint64_t pw_whatif_elapsed_us(const pw_whatif *w) { return w->elapsed_us; }

/* ---- text ---- */

static void entry_label(pw_buf *b, const wi_entry *en) {
  if (en->panel < 0) { pw_buf_adds(b, en->id); return; }
  pw_buf_addf(b, "%s: ", panels[en->panel].label);
  for (int d = 0; d < en->ndims; d++) pw_buf_addf(b, "%s%s", d ? " + " : "", specs[en->dims[d]].path);
  pw_buf_adds(b, " together");
}

static void entry_how(pw_buf *b, const wi_entry *en) {
  if (en->norders) {
    pw_buf_adds(b, " (order ");
    for (int k = 0; k < en->norders; k++) pw_buf_addf(b, "%s%s", k ? ", " : "", en->orders[k]);
    pw_buf_adds(b, ")");
  } else if (en->test) {
    pw_buf_addf(b, " (%s)", en->test);
  }
}

static int same_text(const pw_whatif *w, const wi_value *a, const wi_value *b) {
  return a->t_len == b->t_len && !memcmp(w->frag.data + a->t_off, w->frag.data + b->t_off, a->t_len);
}

static int in_cube(const wi_entry *en, const unsigned *cube, const wi_value *v) {
  for (int d = 0; d < en->ndims; d++)
    if (!(cube[d] & (1u << v->combo[d]))) return 0;
  return 1;
}

/* Does every value in the cube have the same effect as g? */
static int cube_in_group(const pw_whatif *w, const wi_entry *en, const unsigned *cube, const wi_value *g) {
  for (int i = 0; i < en->nv; i++) {
    const wi_value *v = &w->val[en->v0 + i];
    if (in_cube(en, cube, v) && !same_text(w, v, g)) return 0;
  }
  return 1;
}

/* "kras wild_type, nras wild_type" (a panel), "0, 1 or 2" (one fact). */
static void cube_text(pw_buf *b, const wi_entry *en, const unsigned *cube) {
  int any = 0;
  for (int d = 0; d < en->ndims; d++) {
    int s = en->dims[d], n = 0, k = 0;
    for (int j = 0; j < nvals(s); j++) n += (cube[d] >> j) & 1;
    if (en->ndims > 1 && n == nvals(s)) continue;   /* any value */
    pw_buf_adds(b, any++ ? ", " : "");
    if (en->ndims > 1) pw_buf_addf(b, "%s ", specs[s].name);
    for (int j = 0; j < nvals(s); j++)
      if ((cube[d] >> j) & 1) pw_buf_addf(b, "%s%s", !k++ ? "" : k == n ? " or " : ", ", val_key(s, j));
  }
  if (!any) pw_buf_adds(b, "any result");
}

/* The values of one entry, grouped by effect, each group as few "cubes"
** (a set of values per fact) as a greedy widening finds. */
static void entry_groups(pw_buf *b, const pw_whatif *w, const wi_entry *en) {
  unsigned char covered[PW_WHATIF_MAX_EVALS] = {0};
  int lines = 0;
  for (int pass = 0; pass < 2; pass++) {   /* what changes the plan first, then "no change" */
    for (int i = 0; i < en->nv; i++) {
      const wi_value *g = &w->val[en->v0 + i];
      if (covered[i] || (g->t_len == 0) != pass) continue;
      if (pass && en->panel >= 0 && lines) { pw_buf_adds(b, "     - otherwise: no change\n"); return; }
      unsigned cube[MAX_DIMS];
      for (int d = 0; d < en->ndims; d++) cube[d] = 1u << g->combo[d];
      for (int d = 0; d < en->ndims; d++)
        for (int j = 0; j < nvals(en->dims[d]); j++) {
          unsigned was = cube[d];
          cube[d] |= 1u << j;
          if (cube[d] != was && !cube_in_group(w, en, cube, g)) cube[d] = was;
        }
      for (int k = 0; k < en->nv; k++)
        if (in_cube(en, cube, &w->val[en->v0 + k])) covered[k] = 1;
      pw_buf_adds(b, "     - ");
      cube_text(b, en, cube);
      pw_buf_adds(b, ": ");
      if (g->t_len) pw_buf_add(b, w->frag.data + g->t_off, g->t_len);
      else pw_buf_adds(b, "no change");
      pw_buf_adds(b, "\n");
      lines++;
    }
  }
}

/* A fact that changes nothing alone but is in a panel that changes something. */
static int panel_changes(const pw_whatif *w, const wi_entry *single) {
  for (int i = 0; i < w->nent; i++) {
    const wi_entry *p = &w->ent[i];
    if (p->panel < 0 || p->impact == PW_WI_NONE) continue;
    for (int d = 0; d < p->ndims; d++)
      if (p->dims[d] == single->dims[0]) return 1;
  }
  return 0;
}

/* Entries that change nothing: kind 0 one fact (whatever its result), 1 one
** fact that only its panel makes matter, 2 a panel. */
static void list_entries(pw_buf *b, const pw_whatif *w, int kind, const char *head) {
  int k = 0;
  for (int r = 0; r < w->nent; r++) {
    const wi_entry *en = &w->ent[w->rank[r]];
    if (en->impact != PW_WI_NONE || en->nerr) continue;
    int is = en->panel >= 0 ? 2 : panel_changes(w, en);
    if (is != kind) continue;
    pw_buf_adds(b, k++ ? ", " : head);
    if (en->panel >= 0) {
      pw_buf_adds(b, panels[en->panel].label);
      continue;
    }
    pw_buf_adds(b, en->id);
    entry_how(b, en);
  }
  if (k) pw_buf_adds(b, ".\n");
}

static const char *const impact_phrase[] = {"nothing", "an option", "the regimen", "the pathway"};

void pw_whatif_text(const pw_whatif *w, pw_buf *b) {
  int changing = 0;
  pw_buf_addf(b, "\nWHAT WOULD CHANGE THE PLAN (%d evaluations, %.2f ms)\n", w->evals, (double)w->elapsed_us / 1000.0);
  for (int r = 0; r < w->nent; r++) {
    const wi_entry *en = &w->ent[w->rank[r]];
    if (en->impact == PW_WI_NONE && !en->nerr) continue;
    pw_buf_addf(b, "  %d. ", ++changing);
    entry_label(b, en);
    entry_how(b, en);
    if (en->impact != PW_WI_NONE) pw_buf_addf(b, ": changes %s", impact_phrase[en->impact]);
    pw_buf_adds(b, en->nerr ? (en->impact ? "; cannot tell for some values\n" : ": cannot tell for some values\n") : "\n");
    entry_groups(b, w, en);
  }
  if (!w->nent && !w->nskip) pw_buf_adds(b, "  No missing or unknown fact that pathwise can try: nothing to explore.\n");
  else if (!w->nent) pw_buf_adds(b, "  No missing fact that pathwise can try; those not explored (below) may change the plan.\n");
  else if (!changing && !w->nskip) pw_buf_adds(b, "  No pending result or missing fact changes the plan for this patient.\n");
  else if (!changing) pw_buf_adds(b, "  None of the facts tried changes the plan; those not explored (below) may.\n");
  list_entries(b, w, 0, "  No change whatever the result (other facts as recorded): ");
  list_entries(b, w, 1, "  No change alone, only in combination (panels above): ");
  list_entries(b, w, 2, "  No change from any combination: ");
  for (int i = 0; i < w->nskip; i++)
    pw_buf_addf(b, "  Not explored: %s (%s).\n", w->skip[i].fact, w->skip[i].reason);
}

/* ---- JSON ---- */

static void entry_json(pw_jsonw *j, const pw_whatif *w, const wi_entry *en, int rank_no) {
  pw_buf tmp = {0};
  entry_label(&tmp, en);
  pw_jsonw_key(j, en->id);
  pw_jsonw_begin_object(j);
  pw_jsonw_field_str(j, "label", tmp.data);
  pw_jsonw_key(j, "facts");
  pw_jsonw_begin_array(j);
  for (int d = 0; d < en->ndims; d++) pw_jsonw_str(j, en->panel < 0 ? en->id : specs[en->dims[d]].path);
  pw_jsonw_end_array(j);
  pw_jsonw_key(j, "orders");
  pw_jsonw_begin_array(j);
  for (int k = 0; k < en->norders; k++) pw_jsonw_str(j, en->orders[k]);
  pw_jsonw_end_array(j);
  pw_jsonw_field_str(j, "test", en->test);
  pw_jsonw_field_bool(j, "listed_missing", en->listed);
  pw_jsonw_field_str(j, "impact", impact_names[en->impact]);
  pw_jsonw_field_int(j, "rank", rank_no);
  pw_jsonw_field_int(j, "evaluations", en->nv);
  pw_jsonw_field_int(j, "errors", en->nerr);
  pw_jsonw_key(j, "values");
  pw_jsonw_begin_object(j);
  for (int i = 0; i < en->nv; i++) {   /* "wild_type", or "kras=wild_type,nras=mutant" in a panel */
    const wi_value *v = &w->val[en->v0 + i];
    pw_buf_reset(&tmp);
    for (int d = 0; d < en->ndims; d++) {
      if (en->ndims > 1) pw_buf_addf(&tmp, "%s%s=", d ? "," : "", specs[en->dims[d]].name);
      pw_buf_adds(&tmp, val_key(en->dims[d], v->combo[d]));
    }
    pw_jsonw_key(j, tmp.data);
    pw_jsonw_raw(j, w->frag.data + v->j_off, v->j_len);
  }
  pw_jsonw_end_object(j);
  pw_jsonw_end_object(j);
  pw_buf_free(&tmp);
}

void pw_whatif_json(const pw_whatif *w, pw_buf *b) {
  pw_jsonw j;
  pw_jsonw_init(&j, b);
  pw_jsonw_begin_object(&j);
  pw_jsonw_field_int(&j, "evaluations", w->evals);
  pw_jsonw_field_int(&j, "elapsed_us", (long long)w->elapsed_us);
  pw_jsonw_field_int(&j, "limit", PW_WHATIF_MAX_EVALS);
  pw_jsonw_key(&j, "ranking");
  pw_jsonw_begin_array(&j);
  for (int r = 0; r < w->nent; r++) pw_jsonw_str(&j, w->ent[w->rank[r]].id);
  pw_jsonw_end_array(&j);
  pw_jsonw_key(&j, "changes_nothing");
  pw_jsonw_begin_array(&j);
  for (int r = 0; r < w->nent; r++) {
    const wi_entry *en = &w->ent[w->rank[r]];
    if (en->impact == PW_WI_NONE && !en->nerr && !(en->panel < 0 && panel_changes(w, en))) pw_jsonw_str(&j, en->id);
  }
  pw_jsonw_end_array(&j);
  pw_jsonw_key(&j, "facts");
  pw_jsonw_begin_object(&j);
  for (int r = 0; r < w->nent; r++) entry_json(&j, w, &w->ent[w->rank[r]], r + 1);
  pw_jsonw_end_object(&j);
  pw_jsonw_key(&j, "not_explored");
  pw_jsonw_begin_array(&j);
  for (int i = 0; i < w->nskip; i++) {
    pw_jsonw_begin_object(&j);
    pw_jsonw_field_str(&j, "fact", w->skip[i].fact);
    pw_jsonw_field_str(&j, "reason", w->skip[i].reason);
    pw_jsonw_end_object(&j);
  }
  pw_jsonw_end_array(&j);
  pw_jsonw_end_object(&j);
}

/* ---- eval --what-if, the server's "what_if": true, batch --what-if ---- */

void pw_whatif_insert_section(pw_buf *rep, const char *sec, size_t n) {
  size_t at = rep->len;
  const char *m = rep->data ? strstr(rep->data, "\nMISSING FACTS") : NULL;
  if (m) {
    const char *end = strstr(m + 1, "\n\n");
    if (end) at = (size_t)(end - rep->data) + 1;
  }
  pw_buf_add(rep, sec, n);
  memmove(rep->data + at + n, rep->data + at, rep->len - n - at);
  memcpy(rep->data + at, sec, n);
}

pw_status pw_whatif_eval_table(pw_engine *e, int facts_idx, unsigned flags, int text, pw_whatif *w, pw_buf *out,
                               pw_error *err) {
  pw_whatif *own = NULL;
  if (!w && !(w = own = pw_whatif_new())) return fail(err, PW_EMEMORY, "what-if: out of memory");
  size_t start = out->len;
  pw_status rc = pw_whatif_run(w, e, facts_idx, flags, text ? NULL : out, err);
  if (rc == PW_OK && text) {
    pw_buf rep = {0}, sec = {0};
    pw_engine_render_text(e, &rep);
    pw_whatif_text(w, &sec);
    pw_whatif_insert_section(&rep, sec.data, sec.len);
    pw_buf_add(out, rep.data, rep.len);
    pw_buf_free(&rep);
    pw_buf_free(&sec);
  } else if (rc == PW_OK && out->len > start && out->data[out->len - 1] == '}') {
    pw_jsonw j;
    out->len--;   /* reopen the result object: what_if goes in before its closing brace */
    pw_jsonw_init_in(&j, out);
    pw_jsonw_key(&j, "what_if");
    pw_whatif_json(w, pw_jsonw_value(&j));
    pw_jsonw_end_object(&j);
  } else if (rc == PW_OK) {
    rc = fail(err, PW_EINTERNAL, "what-if: the result is not a JSON object");
  }
  if (rc != PW_OK && out->len > start) {
    out->len = start;
    out->data[start] = '\0';
  }
  pw_whatif_free(own);
  return rc;
}

pw_status pw_whatif_eval(pw_engine *e, const char *json, size_t len, unsigned flags, int text, pw_whatif *w,
                         pw_buf *out, pw_error *err) {
  lua_State *L = pw_engine_lua(e);
  int top = lua_gettop(L);
  pw_status rc = pw_engine_decode(e, json, len, NULL, err);
  if (rc == PW_OK) rc = pw_whatif_eval_table(e, -1, flags, text, w, out, err);
  lua_settop(L, top);
  return rc;
}
