/*
** cds.c: the CDS Hooks 2.0 service, transport-free (see cds.h).
*/
#include "cds.h"

#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "buf.h"
#include "engine.h"
#include "error.h"
#include "jsonw.h"
#include "safety.h"
#include "sha256.h"

#define RX_SYSTEM "http://www.nlm.nih.gov/research/umls/rxnorm"
#define LOINC_PREFIX "http://loinc.org|"
#define MAX_DRAFTS 64
#define SUMMARY_MAX 139

static const char *const HOOKS[PW_CDS_NHOOKS] = {"patient-view", "order-select", "order-sign"};

/* The prefetch keys: template (after "?patient={{context.patientId}}"), needed? */
typedef struct prefetch_key { const char *key, *type; int needed, observations; } prefetch_key;
static const prefetch_key PREFETCH[] = {
  {"patient", "Patient", 1, 0},
  {"conditions", "Condition", 1, 0},
  {"observations", "Observation", 1, 1},
  {"procedures", "Procedure", 0, 0},
  {"medicationStatements", "MedicationStatement", 0, 0},
  {"medicationRequests", "MedicationRequest", 0, 0},
  {"medicationAdministrations", "MedicationAdministration", 0, 0},
  {"serviceRequests", "ServiceRequest", 0, 0},
};
#define NPREFETCH ((int)(sizeof PREFETCH / sizeof PREFETCH[0]))

typedef struct rx_entry { char *key, *agent; } rx_entry;

struct pw_cds {
  rx_entry *rx;
  int nrx;
  pw_buf loinc;   /* "http://loinc.org|a,http://loinc.org|b" */
};

const char *pw_cds_hook_name(int hook) { return hook >= 0 && hook < PW_CDS_NHOOKS ? HOOKS[hook] : NULL; }

/* {====== the code table ============================================== */

static int add_section(pw_cds *c, lua_State *L, const char *name) {
  lua_getfield(L, -1, name);
  if (!lua_istable(L, -1)) { lua_pop(L, 1); return 0; }
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING) {
      rx_entry *n = realloc(c->rx, (size_t)(c->nrx + 1) * sizeof *n);
      if (!n) { lua_pop(L, 3); return -1; }
      c->rx = n;
      n[c->nrx].key = strdup(lua_tostring(L, -2));
      n[c->nrx].agent = strdup(lua_tostring(L, -1));
      if (!n[c->nrx].key || !n[c->nrx].agent) { free(n[c->nrx].key); free(n[c->nrx].agent); lua_pop(L, 3); return -1; }
      c->nrx++;
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The LOINC codes of these sections, sorted (table order is not stable). */
static void add_loinc(pw_cds *c, lua_State *L, const char *const *names, size_t nn) {
  const char *codes[512];
  size_t n = 0;
  for (size_t i = 0; i < nn; i++) {
    lua_getfield(L, -1, names[i]);
    if (!lua_istable(L, -1)) { lua_pop(L, 1); continue; }
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
      if (!strncmp(k, LOINC_PREFIX, strlen(LOINC_PREFIX)) && lua_toboolean(L, -1) && n < 512) codes[n++] = k;
      lua_pop(L, 1);
    }
    lua_pop(L, 1);   /* the strings stay alive in the code table */
  }
  qsort(codes, n, sizeof codes[0], cmp_str);
  for (size_t i = 0; i < n; i++) {
    if (i && !strcmp(codes[i], codes[i - 1])) continue;
    if (c->loinc.len) pw_buf_add(&c->loinc, ",", 1);
    pw_buf_adds(&c->loinc, codes[i]);
  }
}

pw_cds *pw_cds_new(const char *codes_path, pw_error *err) {
  pw_cds *c = calloc(1, sizeof *c);
  lua_State *L = luaL_newstate();   /* the repository's own data file: a plain state, no libraries */
  if (!c || !L) {
    pw_error_set(err, PW_EMEMORY, "out of memory");
    goto fail;
  }
  if (luaL_loadfile(L, codes_path) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK || !lua_istable(L, -1)) {
    pw_error_set(err, PW_EINPUT, "FHIR code table %s: %s", codes_path,
                 lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "not a table");
    goto fail;
  }
  static const char *const obs[] = {"ecog", "variant", "gene_tests", "msi", "msi_ihc", "disease_status"};
  add_loinc(c, L, obs, sizeof obs / sizeof obs[0]);
  if (add_section(c, L, "agents") || add_section(c, L, "products") || c->loinc.failed) {
    pw_error_set(err, PW_EMEMORY, "out of memory");
    goto fail;
  }
  lua_close(L);
  return c;
fail:
  if (L) lua_close(L);
  pw_cds_free(c);
  return NULL;
}

void pw_cds_free(pw_cds *c) {
  if (!c) return;
  for (int i = 0; i < c->nrx; i++) { free(c->rx[i].key); free(c->rx[i].agent); }
  free(c->rx);
  pw_buf_free(&c->loinc);
  free(c);
}

static const char *rx_agent(const pw_cds *c, const char *system, const char *code) {
  char key[256];
  snprintf(key, sizeof key, "%s|%s", system, code);
  for (int i = 0; i < c->nrx; i++)
    if (!strcmp(c->rx[i].key, key)) return c->rx[i].agent;
  return NULL;
}

/* }====== */

/* {====== discovery ==================================================== */

static void discovery_service(const pw_cds *c, pw_jsonw *w, const pw_cds_protocol *p, int hook) {
  char id[200], buf[512];
  snprintf(id, sizeof id, "%s-%s", p->id, HOOKS[hook]);
  pw_jsonw_begin_object(w);
  pw_jsonw_field_str(w, "hook", HOOKS[hook]);
  snprintf(buf, sizeof buf, "%s (%s)", p->title && *p->title ? p->title : p->id, HOOKS[hook]);
  pw_jsonw_field_str(w, "title", buf);
  snprintf(buf, sizeof buf, hook == PW_CDS_PATIENT_VIEW
           ? "Protocol %s %s: the recommended plan, missing facts with the tests to order, urgent warnings."
           : "Protocol %s %s: draft medication orders checked against the protocol's safety rules.",
           p->id, p->version ? p->version : "");
  pw_jsonw_field_str(w, "description", buf);
  pw_jsonw_field_str(w, "id", id);
  pw_jsonw_key(w, "prefetch");
  pw_jsonw_begin_object(w);
  for (int i = 0; i < NPREFETCH; i++) {
    pw_buf t = {0};
    if (!strcmp(PREFETCH[i].type, "Patient")) pw_buf_adds(&t, "Patient/{{context.patientId}}");
    else pw_buf_addf(&t, "%s?patient={{context.patientId}}", PREFETCH[i].type);
    if (PREFETCH[i].observations && c->loinc.len) {
      pw_buf_adds(&t, "&code=");
      pw_buf_add(&t, c->loinc.data, c->loinc.len);
    }
    pw_buf_add(&t, "", 1);
    pw_jsonw_field_str(w, PREFETCH[i].key, t.data);
    pw_buf_free(&t);
  }
  pw_jsonw_end_object(w);
  pw_jsonw_end_object(w);
}

void pw_cds_discovery(const pw_cds *c, const pw_cds_protocol *p, int n, pw_buf *out) {
  pw_jsonw w;
  pw_jsonw_init(&w, out);
  pw_jsonw_begin_object(&w);
  pw_jsonw_key(&w, "services");
  pw_jsonw_begin_array(&w);
  for (int i = 0; i < n; i++)
    for (int h = 0; h < PW_CDS_NHOOKS; h++) discovery_service(c, &w, &p[i], h);
  pw_jsonw_end_array(&w);
  pw_jsonw_end_object(&w);
}

int pw_cds_service(const char *id, const pw_cds_protocol *p, int n, int *proto) {
  for (int i = 0; i < n; i++) {
    size_t l = strlen(p[i].id);
    if (strncmp(id, p[i].id, l) || id[l] != '-') continue;
    for (int h = 0; h < PW_CDS_NHOOKS; h++)
      if (!strcmp(id + l + 1, HOOKS[h])) { *proto = i; return h; }
  }
  return -1;
}

void pw_cds_outcome(pw_buf *out, const char *code, const char *msg) {
  pw_jsonw w;
  pw_jsonw_init(&w, out);
  pw_jsonw_begin_object(&w);
  pw_jsonw_field_str(&w, "resourceType", "OperationOutcome");
  pw_jsonw_key(&w, "issue");
  pw_jsonw_begin_array(&w);
  pw_jsonw_begin_object(&w);
  pw_jsonw_field_str(&w, "severity", "error");
  pw_jsonw_field_str(&w, "code", code);
  pw_jsonw_field_str(&w, "diagnostics", msg);
  pw_jsonw_end_object(&w);
  pw_jsonw_end_array(&w);
  pw_jsonw_end_object(&w);
}

/* }====== */

/* {====== a call ======================================================= */

typedef struct draft {
  char ref[160];          /* MedicationRequest/<id> */
  char agent[64];         /* "" = not known to the engine */
  char drug[160];         /* display or system|code, for "not evaluated" */
  int selected;
} draft;

typedef struct call {
  const pw_cds *c;
  int hook;
  char instance[128];
  char as_of[11];         /* from extension "org.pathwise.as_of", else "" */
  draft d[MAX_DRAFTS];
  int nd;
  pw_buf notes;           /* Markdown list of data problems */
  char msg[600];
} call;

static int is_null(lua_State *L, int idx) { return lua_type(L, idx) == LUA_TLIGHTUSERDATA; }

static int raw_type(lua_State *L, int t, const char *k) {
  lua_pushstring(L, k);
  return lua_rawget(L, t);
}

/* A string member (popped; the string stays owned by the table). */
static const char *raw_str(lua_State *L, int t, const char *k) {
  const char *s = raw_type(L, t, k) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
  lua_pop(L, 1);
  return s;
}

/* Data problems of one prefetch value at idx. */
static void prefetch_notes(call *k, lua_State *L, int v, const char *key) {
  const char *rt = raw_str(L, v, "resourceType");
  if (rt && !strcmp(rt, "OperationOutcome")) {
    pw_buf_addf(&k->notes, "- prefetch `%s` is an OperationOutcome: those records are incomplete.\n", key);
    return;
  }
  if (!rt || strcmp(rt, "Bundle")) return;
  int paged = 0, outcome = 0;
  if (raw_type(L, v, "link") == LUA_TTABLE) {
    for (lua_Integer i = 1; lua_rawgeti(L, -1, i) == LUA_TTABLE; i++) {
      const char *rel = raw_str(L, lua_gettop(L), "relation");
      if (rel && !strcmp(rel, "next")) paged = 1;
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  if (raw_type(L, v, "entry") == LUA_TTABLE) {
    for (lua_Integer i = 1; lua_rawgeti(L, -1, i) == LUA_TTABLE; i++) {
      if (raw_type(L, lua_gettop(L), "resource") == LUA_TTABLE) {
        const char *r = raw_str(L, lua_gettop(L), "resourceType");
        if (r && !strcmp(r, "OperationOutcome")) outcome = 1;
      }
      lua_pop(L, 2);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  if (paged) pw_buf_addf(&k->notes, "- prefetch `%s` is paged (a next link): only its first page was read; records are incomplete.\n", key);
  if (outcome) pw_buf_addf(&k->notes, "- prefetch `%s` carries an OperationOutcome: the search was incomplete.\n", key);
}

/* Needed keys absent -> 412; null -> unknown; problems -> notes. */
static int read_prefetch(call *k, lua_State *L, int req) {
  int pre = raw_type(L, req, "prefetch") == LUA_TTABLE ? lua_gettop(L) : 0;
  for (int i = 0; i < NPREFETCH; i++) {
    int t = pre ? raw_type(L, pre, PREFETCH[i].key) : LUA_TNIL;
    if (t == LUA_TNIL && PREFETCH[i].needed) {
      snprintf(k->msg, sizeof k->msg, "prefetch key '%s' (%s) is needed and was not sent", PREFETCH[i].key,
               PREFETCH[i].type);
      if (pre) lua_pop(L, 1);
      lua_pop(L, 1);
      return 412;
    }
    if (pre && is_null(L, -1))
      pw_buf_addf(&k->notes, "- prefetch `%s` was null (not available): the facts it would give are unknown.\n",
                  PREFETCH[i].key);
    else if (t == LUA_TTABLE) prefetch_notes(k, L, lua_gettop(L), PREFETCH[i].key);
    if (pre) lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return 0;
}

/* One draft MedicationRequest at idx: its agent through the RxNorm table. */
static void read_draft(call *k, lua_State *L, int res) {
  draft *d = &k->d[k->nd++];
  memset(d, 0, sizeof *d);
  const char *id = raw_str(L, res, "id");
  snprintf(d->ref, sizeof d->ref, "MedicationRequest/%s", id ? id : "?");
  if (raw_type(L, res, "medicationCodeableConcept") == LUA_TTABLE) {
    int cc = lua_gettop(L);
    const char *text = raw_str(L, cc, "text");
    if (text) snprintf(d->drug, sizeof d->drug, "%s", text);
    if (raw_type(L, cc, "coding") == LUA_TTABLE) {
      for (lua_Integer i = 1; lua_rawgeti(L, -1, i) == LUA_TTABLE; i++) {
        int cd = lua_gettop(L);
        const char *sys = raw_str(L, cd, "system"), *code = raw_str(L, cd, "code"), *disp = raw_str(L, cd, "display");
        const char *agent = sys && code ? rx_agent(k->c, sys, code) : NULL;
        if (agent && !d->agent[0]) snprintf(d->agent, sizeof d->agent, "%s", agent);
        if (!d->drug[0] && disp) snprintf(d->drug, sizeof d->drug, "%s", disp);
        else if (!d->drug[0] && code) snprintf(d->drug, sizeof d->drug, "%s|%s", sys ? sys : "?", code);
        lua_pop(L, 1);
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  if (!d->drug[0]) {
    char tmp[sizeof d->drug];
    snprintf(tmp, sizeof tmp, "%s (no coded medication)", d->ref);
    memcpy(d->drug, tmp, sizeof tmp);
  }
}

static int is_selected(lua_State *L, int ctx, const char *ref) {
  int top = lua_gettop(L), sel = 0;
  if (raw_type(L, ctx, "selections") == LUA_TTABLE)
    for (lua_Integer i = 1; lua_rawgeti(L, top + 1, i) == LUA_TSTRING; i++) {
      if (!strcmp(lua_tostring(L, -1), ref)) sel = 1;
      lua_pop(L, 1);
    }
  lua_settop(L, top);
  return sel;
}

static int read_drafts(call *k, lua_State *L, int ctx) {
  int top = lua_gettop(L);
  if (raw_type(L, ctx, "draftOrders") != LUA_TTABLE) {
    lua_settop(L, top);
    snprintf(k->msg, sizeof k->msg, "context.draftOrders: expected a Bundle of draft orders");
    return 400;
  }
  if (raw_type(L, top + 1, "entry") == LUA_TTABLE) {
    for (lua_Integer i = 1; lua_rawgeti(L, top + 2, i) == LUA_TTABLE; i++) {
      if (raw_type(L, top + 3, "resource") == LUA_TTABLE) {
        const char *rt = raw_str(L, top + 4, "resourceType");
        if (rt && !strcmp(rt, "MedicationRequest") && k->nd < MAX_DRAFTS) {
          read_draft(k, L, top + 4);
          draft *d = &k->d[k->nd - 1];
          d->selected = k->hook != PW_CDS_ORDER_SELECT || is_selected(L, ctx, d->ref);
        }
      }
      lua_settop(L, top + 2);
    }
  }
  lua_settop(L, top);
  return 0;
}

/* The request envelope: hook, hookInstance, context (+ draftOrders). */
static int read_request(call *k, lua_State *L, int req) {
  const char *hook = raw_str(L, req, "hook"), *inst = raw_str(L, req, "hookInstance");
  if (!hook || strcmp(hook, HOOKS[k->hook])) {
    snprintf(k->msg, sizeof k->msg, "hook: this service answers \"%s\"", HOOKS[k->hook]);
    return 400;
  }
  if (!inst || !*inst || strlen(inst) >= sizeof k->instance) {
    snprintf(k->msg, sizeof k->msg, "hookInstance: expected a UUID string");
    return 400;
  }
  snprintf(k->instance, sizeof k->instance, "%s", inst);
  if (raw_type(L, req, "extension") == LUA_TTABLE) {   /* the as-of date, for reproducing a call */
    const char *d = raw_str(L, lua_gettop(L), "org.pathwise.as_of");
    if (d && !pw_adapter_date_ok(d)) {
      lua_pop(L, 1);
      snprintf(k->msg, sizeof k->msg, "extension.org.pathwise.as_of: expected a date YYYY-MM-DD");
      return 400;
    }
    if (d) snprintf(k->as_of, sizeof k->as_of, "%s", d);
  }
  lua_pop(L, 1);
  if (raw_type(L, req, "context") != LUA_TTABLE) {
    lua_pop(L, 1);
    snprintf(k->msg, sizeof k->msg, "context: expected an object");
    return 400;
  }
  int st = k->hook == PW_CDS_PATIENT_VIEW ? 0 : read_drafts(k, L, lua_gettop(L));
  lua_pop(L, 1);
  return st ? st : read_prefetch(k, L, req);
}

/* }====== */

/* {====== cards ======================================================== */

typedef struct cards {
  call *k;
  lua_State *L;
  int res;                /* the decoded result */
  pw_jsonw w;
  const char *result;     /* its JSON text, for the extension */
  size_t rlen;
  int n;                  /* cards written */
  char label[400];
  char proto[400];        /* {"id","version","sha256"} JSON */
} cards;

/* Deterministic id: a UUID-shaped SHA-256 of hookInstance and item. */
static void make_uuid(const char *instance, const char *kind, const char *item, char out[37]) {
  pw_buf b = {0};
  char hex[65];
  pw_buf_addf(&b, "%s\n%s\n%s", instance, kind, item);
  pw_sha256_hex(b.data ? b.data : "", b.len, hex);
  pw_buf_free(&b);
  hex[12] = '5';
  hex[16] = "89ab"[(hex[16] >= 'a' ? hex[16] - 'a' + 10 : hex[16] - '0') & 3];
  snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

/* A summary under 140 characters, cut at a UTF-8 boundary. */
static void summary(pw_jsonw *w, const char *s) {
  char buf[SUMMARY_MAX + 1];
  size_t n = strlen(s);
  if (n <= SUMMARY_MAX) { pw_jsonw_field_str(w, "summary", s); return; }
  n = SUMMARY_MAX - 3;
  while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
  snprintf(buf, sizeof buf, "%.*s...", (int)n, s);
  pw_jsonw_field_str(w, "summary", buf);
}

static void citations(lua_State *L, int t, pw_buf *md) {
  if (raw_type(L, t, "citations") == LUA_TTABLE && lua_rawlen(L, -1) > 0) {
    pw_buf_adds(md, " [");
    for (lua_Integer i = 1; lua_rawgeti(L, -1, i) == LUA_TNUMBER; i++) {
      pw_buf_addf(md, "%s%lld", i > 1 ? ", " : "", (long long)lua_tointeger(L, -1));
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
    pw_buf_adds(md, "]");
  }
  lua_pop(L, 1);
}

static void card_open(cards *cs, const char *indicator, const char *kind, const char *item,
                      const char *sum, pw_buf *detail) {
  char id[37];
  pw_jsonw *w = &cs->w;
  make_uuid(cs->k->instance, kind, item, id);
  pw_jsonw_begin_object(w);
  pw_jsonw_field_str(w, "uuid", id);
  summary(w, sum);
  pw_buf_add(detail, "", 1);
  if (detail->data && detail->data[0]) pw_jsonw_field_str(w, "detail", detail->data);
  pw_jsonw_field_str(w, "indicator", indicator);
  pw_jsonw_key(w, "source");
  pw_jsonw_begin_object(w);
  pw_jsonw_field_str(w, "label", cs->label);
  pw_jsonw_end_object(w);
}

static void card_close(cards *cs) {
  pw_jsonw *w = &cs->w;
  pw_jsonw_key(w, "extension");
  pw_jsonw_begin_object(w);
  pw_jsonw_key(w, "org.pathwise.protocol");
  pw_jsonw_raw(w, cs->proto, strlen(cs->proto));
  if (cs->n == 0) {   /* the full engine result rides on the first card */
    pw_jsonw_key(w, "org.pathwise.result");
    pw_jsonw_raw(w, cs->result, cs->rlen);
  }
  pw_jsonw_end_object(w);
  pw_jsonw_end_object(w);
  cs->n++;
}

static const char *const OVERRIDE[][2] = {
  {"clinical-judgement", "Clinical judgement: the benefit outweighs the risk for this patient"},
  {"data-outdated", "The patient data the rule used is out of date or wrong"},
  {"result-elsewhere", "The missing result is available from another source"},
};

/* One blocked draft order: critical, its reason, rule, guideline sentence. */
static void card_blocked(cards *cs, const draft *d, int b) {
  lua_State *L = cs->L;
  const char *rule = raw_str(L, b, "rule"), *reason = raw_str(L, b, "reason");
  const pw_rule_info *ri = rule ? pw_safety_rule_by_id(rule) : NULL;
  pw_buf md = {0};
  char sum[400];
  snprintf(sum, sizeof sum, "Do not order %s: blocked by rule %s", d->agent, rule ? rule : "of the protocol");
  pw_buf_addf(&md, "**%s** is blocked by rule `%s`: %s.", d->drug, rule ? rule : "?", reason ? reason : "");
  if (ri && ri->guideline) pw_buf_addf(&md, "\n\nGuideline: \"%s\"", ri->guideline);
  citations(L, b, &md);
  card_open(cs, "critical", "blocked", d->ref, sum, &md);
  pw_buf_free(&md);
  pw_jsonw *w = &cs->w;
  char sid[37], label[300];
  make_uuid(cs->k->instance, "delete", d->ref, sid);
  pw_jsonw_field_str(w, "selectionBehavior", "at-most-one");
  pw_jsonw_key(w, "suggestions");
  pw_jsonw_begin_array(w);
  pw_jsonw_begin_object(w);
  snprintf(label, sizeof label, "Remove the draft order for %s", d->drug);
  pw_jsonw_field_str(w, "label", label);
  pw_jsonw_field_str(w, "uuid", sid);
  pw_jsonw_field_bool(w, "isRecommended", 1);
  pw_jsonw_key(w, "actions");
  pw_jsonw_begin_array(w);
  pw_jsonw_begin_object(w);
  pw_jsonw_field_str(w, "type", "delete");
  pw_jsonw_field_str(w, "description", label);
  pw_jsonw_field_str(w, "resourceId", d->ref);
  pw_jsonw_end_object(w);
  pw_jsonw_end_array(w);
  pw_jsonw_end_object(w);
  pw_jsonw_end_array(w);
  pw_jsonw_key(w, "overrideReasons");
  pw_jsonw_begin_array(w);
  for (size_t i = 0; i < sizeof OVERRIDE / sizeof OVERRIDE[0]; i++) {
    pw_jsonw_begin_object(w);
    pw_jsonw_field_str(w, "system", "https://pathwise.example/fhir/CodeSystem/override-reason");
    pw_jsonw_field_str(w, "code", OVERRIDE[i][0]);
    pw_jsonw_field_str(w, "display", OVERRIDE[i][1]);
    pw_jsonw_end_object(w);
  }
  pw_jsonw_end_array(w);
  card_close(cs);
}

/* For each draft whose agent the result blocked (and is selected). */
static void cards_blocked(cards *cs) {
  lua_State *L = cs->L;
  int top = lua_gettop(L);
  if (raw_type(L, cs->res, "blocked") != LUA_TTABLE) { lua_settop(L, top); return; }
  for (int i = 0; i < cs->k->nd; i++) {
    const draft *d = &cs->k->d[i];
    if (!d->agent[0] || !d->selected) continue;
    for (lua_Integer j = 1; lua_rawgeti(L, top + 1, j) == LUA_TTABLE; j++) {
      const char *id = raw_str(L, top + 2, "id"), *src = raw_str(L, top + 2, "source");
      int hit = id && !strcmp(id, d->agent) && src && !strcmp(src, "proposed_order");
      if (hit) card_blocked(cs, d, top + 2);
      lua_settop(L, top + 1);
      if (hit) break;
    }
    lua_settop(L, top + 1);
  }
  lua_settop(L, top);
}

static void cards_not_evaluated(cards *cs) {
  pw_buf md = {0}, items = {0};
  int n = 0;
  for (int i = 0; i < cs->k->nd; i++) {
    const draft *d = &cs->k->d[i];
    if (d->agent[0] || !d->selected) continue;
    pw_buf_addf(&md, "- %s (`%s`)\n", d->drug, d->ref);
    pw_buf_addf(&items, "%s|", d->ref);
    n++;
  }
  if (n) {
    char sum[200];
    snprintf(sum, sizeof sum, "%d draft order%s not evaluated: the drug is not in this protocol's knowledge",
             n, n > 1 ? "s" : "");
    pw_buf_add(&items, "", 1);
    card_open(cs, "info", "not-evaluated", items.data, sum, &md);
    card_close(cs);
  }
  pw_buf_free(&md);
  pw_buf_free(&items);
}

/* The plan and its alternatives: one info card. */
static void card_plan(cards *cs) {
  lua_State *L = cs->L;
  int top = lua_gettop(L);
  pw_buf md = {0};
  char sum[400] = "";
  int nrec = 0;
  if (raw_type(L, cs->res, "recommendations") == LUA_TTABLE) {
    for (lua_Integer i = 1; lua_rawgeti(L, top + 1, i) == LUA_TTABLE; i++) {
      const char *text = raw_str(L, top + 2, "text"), *strength = raw_str(L, top + 2, "strength");
      if (text) {
        if (!nrec) snprintf(sum, sizeof sum, "Plan: %s", text);
        pw_buf_addf(&md, "- %s (%s)", text, strength ? strength : "");
        citations(L, top + 2, &md);
        pw_buf_add(&md, "\n", 1);
        nrec++;
      }
      lua_settop(L, top + 1);
    }
  }
  lua_settop(L, top);
  if (raw_type(L, cs->res, "alternatives") == LUA_TTABLE) {
    for (lua_Integer i = 1; lua_rawgeti(L, top + 1, i) == LUA_TTABLE; i++) {
      if (raw_type(L, top + 2, "items") == LUA_TTABLE) {
        pw_buf_adds(&md, i == 1 ? "\nAlternatives (choose one):\n" : "\nAlternatives (choose one):\n");
        for (lua_Integer j = 1; lua_rawgeti(L, top + 3, j) == LUA_TSTRING; j++) {
          pw_buf_addf(&md, "%s`%s`", j > 1 ? ", " : "- ", lua_tostring(L, -1));
          lua_pop(L, 1);
        }
        pw_buf_add(&md, "\n", 1);
      }
      lua_settop(L, top + 1);
    }
  }
  lua_settop(L, top);
  const char *pathway = raw_str(L, cs->res, "pathway");
  if (nrec) card_open(cs, "info", "plan", pathway ? pathway : "plan", sum, &md), card_close(cs);
  pw_buf_free(&md);
}

/* Missing facts with the tests to order, and the data notes: one warning. */
static void card_missing(cards *cs) {
  lua_State *L = cs->L;
  int top = lua_gettop(L), n = 0;
  pw_buf md = {0}, tests = {0};
  if (raw_type(L, cs->res, "missing") == LUA_TTABLE) {
    for (lua_Integer i = 1; lua_rawgeti(L, top + 1, i) == LUA_TTABLE; i++) {
      const char *fact = raw_str(L, top + 2, "fact"), *why = raw_str(L, top + 2, "reason");
      const char *test = raw_str(L, top + 2, "test");
      pw_buf_addf(&md, "- `%s` unknown: %s%s%s", fact ? fact : "?", why ? why : "", test ? " Test: " : "",
                  test ? test : "");
      citations(L, top + 2, &md);
      pw_buf_add(&md, "\n", 1);
      if (test && (!tests.data || !strstr(tests.data, test))) {
        pw_buf_addf(&tests, "%s%s", tests.len ? "; " : "", test);
        pw_buf_add(&tests, "", 1);
        tests.len--;
      }
      n++;
      lua_settop(L, top + 1);
    }
  }
  lua_settop(L, top);
  if (cs->k->notes.len) {
    pw_buf_adds(&md, n ? "\nIncomplete data:\n" : "Incomplete data:\n");
    pw_buf_add(&md, cs->k->notes.data, cs->k->notes.len);
  }
  char sum[600];
  if (n) snprintf(sum, sizeof sum, "%d fact%s missing%s: order %s", n, n > 1 ? "s" : "",
                  cs->k->notes.len ? ", data incomplete" : "", tests.len ? tests.data : "the tests listed");
  else snprintf(sum, sizeof sum, "Incomplete data: some prefetched records were not available");
  if (n || cs->k->notes.len) card_open(cs, "warning", "missing", "missing", sum, &md), card_close(cs);
  pw_buf_free(&md);
  pw_buf_free(&tests);
}

/* Urgent warnings (cord compression, ...): each its own critical card. */
static void cards_urgent(cards *cs) {
  lua_State *L = cs->L;
  int top = lua_gettop(L);
  if (raw_type(L, cs->res, "warnings") == LUA_TTABLE) {
    for (lua_Integer i = 1; lua_rawgeti(L, top + 1, i) == LUA_TTABLE; i++) {
      const char *level = raw_str(L, top + 2, "level"), *text = raw_str(L, top + 2, "text");
      const char *id = raw_str(L, top + 2, "id");
      if (level && !strcmp(level, "urgent") && text) {
        pw_buf md = {0};
        pw_buf_adds(&md, text);
        citations(L, top + 2, &md);
        card_open(cs, "critical", "urgent", id ? id : text, text, &md);
        card_close(cs);
        pw_buf_free(&md);
      }
      lua_settop(L, top + 1);
    }
  }
  lua_settop(L, top);
}

static void write_cards(cards *cs) {
  lua_State *L = cs->L;
  pw_jsonw_begin_object(&cs->w);
  pw_jsonw_key(&cs->w, "cards");
  pw_jsonw_begin_array(&cs->w);
  int top = lua_gettop(L);
  int applicable = raw_type(L, cs->res, "applicable") != LUA_TBOOLEAN || lua_toboolean(L, -1);
  lua_settop(L, top);
  if (applicable) {
    if (cs->k->hook == PW_CDS_PATIENT_VIEW) {
      cards_urgent(cs);
      card_plan(cs);
    } else {
      cards_blocked(cs);
      cards_not_evaluated(cs);
    }
    card_missing(cs);
  }
  pw_jsonw_end_array(&cs->w);
  pw_jsonw_end_object(&cs->w);
}

/* }====== */

/* {====== the call ===================================================== */

/* Source label and protocol identity from the result's "protocol". */
static void source_of(cards *cs) {
  lua_State *L = cs->L;
  int top = lua_gettop(L);
  const char *id = "?", *title = NULL, *version = "?", *sha = "?";
  if (raw_type(L, cs->res, "protocol") == LUA_TTABLE) {
    id = raw_str(L, top + 1, "id");
    title = raw_str(L, top + 1, "title");
    version = raw_str(L, top + 1, "version");
    sha = raw_str(L, top + 1, "sha256");
  }
  snprintf(cs->label, sizeof cs->label, "%s, version %s (sha256 %.12s)", title ? title : (id ? id : "?"),
           version ? version : "?", sha ? sha : "?");
  pw_buf b = {0};
  pw_jsonw w;
  pw_jsonw_init(&w, &b);
  pw_jsonw_begin_object(&w);
  pw_jsonw_field_str(&w, "id", id ? id : "?");
  pw_jsonw_field_str(&w, "title", title ? title : "");
  pw_jsonw_field_str(&w, "version", version ? version : "?");
  pw_jsonw_field_str(&w, "sha256", sha ? sha : "?");
  pw_jsonw_end_object(&w);
  pw_buf_add(&b, "", 1);
  snprintf(cs->proto, sizeof cs->proto, "%s", b.data ? b.data : "{}");
  pw_buf_free(&b);
  lua_settop(L, top);
}

/* Evaluate the facts (with the known drafts as orders) and write cards. */
static int evaluate(call *k, pw_engine *e, const pw_adapter_output *in, pw_buf *out) {
  lua_State *L = pw_engine_lua(e);
  int base = lua_gettop(L), orders = 0, status = 200;
  pw_error err;
  pw_buf res = {0};
  if (pw_engine_decode(e, in->facts.data, in->facts.len, NULL, &err) != PW_OK) goto fail;
  if (k->hook != PW_CDS_PATIENT_VIEW) {
    lua_createtable(L, k->nd, 0);
    orders = lua_gettop(L);
    lua_Integer n = 0;
    for (int i = 0; i < k->nd; i++)
      if (k->d[i].agent[0]) { lua_pushstring(L, k->d[i].agent); lua_rawseti(L, orders, ++n); }
  }
  if (pw_engine_eval_table(e, base + 1, orders, 0, &res, &err) != PW_OK) goto fail;
  lua_settop(L, base);
  if (pw_engine_decode(e, res.data, res.len, NULL, &err) != PW_OK) goto fail;
  cards cs;
  memset(&cs, 0, sizeof cs);
  cs.k = k;
  cs.L = L;
  cs.res = base + 1;
  cs.result = res.data;
  cs.rlen = res.len;
  while (cs.rlen && (res.data[cs.rlen - 1] == '\n' || res.data[cs.rlen - 1] == ' ')) cs.rlen--;
  source_of(&cs);
  pw_jsonw_init(&cs.w, out);
  write_cards(&cs);
  goto done;
fail:
  status = err.code == PW_EINPUT ? 422 : 500;
  snprintf(k->msg, sizeof k->msg, "facts from the prefetch: %.500s", err.msg);
done:
  lua_settop(L, base);
  pw_buf_free(&res);
  return status;
}

int pw_cds_call(const pw_cds *c, pw_engine *e, pw_adapter *a, int hook, const char *body,
                size_t len, const char *as_of, pw_buf *out) {
  call *k = calloc(1, sizeof *k);
  if (!k) { pw_cds_outcome(out, "exception", "out of memory"); return 503; }
  k->c = c;
  k->hook = hook;
  lua_State *L = pw_adapter_lua(a);
  int base = lua_gettop(L), status = 0;
  pw_error err;
  pw_adapter_output in = {0};
  size_t start = out->len;
  if (pw_adapter_decode(a, body, len, NULL, &err) != PW_OK) {
    status = err.code == PW_EMEMORY ? 413 : 400;
    snprintf(k->msg, sizeof k->msg, "request body: %.500s", err.msg);
  } else if (lua_type(L, base + 1) != LUA_TTABLE) {
    status = 400;
    snprintf(k->msg, sizeof k->msg, "request body: expected a JSON object");
  } else if (!(status = read_request(k, L, base + 1))) {
    char today[11];
    if (k->as_of[0]) as_of = k->as_of;
    if (!as_of) { pw_adapter_today(today); as_of = today; }
    if (pw_adapter_run_value(a, base + 1, as_of, &in, &err) != PW_OK) {
      status = err.code == PW_EINPUT ? 422 : 500;
      snprintf(k->msg, sizeof k->msg, "prefetch: %.500s", err.msg);
    } else {
      status = evaluate(k, e, &in, out);
    }
  }
  lua_settop(L, base);
  lua_gc(L, LUA_GCCOLLECT);
  if (status != 200) {
    out->len = start;
    pw_cds_outcome(out, status == 412 ? "not-found" : status >= 500 ? "exception" : "invalid", k->msg);
  }
  pw_adapter_output_free(&in);
  pw_buf_free(&k->notes);
  free(k);
  return status;
}

/* }====== */
