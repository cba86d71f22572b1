/*
** facts.c: validation of patient facts and read-only views; see facts.h.
*/
#include <ctype.h>
#include <lauxlib.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "engine.h"
#include "facts.h"
#include "gate.h"
#include "knowledge.h"

#define MAX_STR 256

typedef struct vctx {
  lua_State *L;
  pw_facts *f;
  pw_arena *a;
  char *err;
  size_t errlen;
} vctx;

typedef struct names { const char *const *v; int n; } names;
static const char *const prim_sites[] = {"rectum", "colon_left", "colon_right"};
static const char *const mol_vals[] = {"wild_type", "mutant", "unknown"};
static const char *const braf_vals[] = {"wild_type", "mutant", "unknown"};
static const char *const msi_vals[] = {"msi_high", "mss", "unknown"};
static const char *const outcomes[] = {"progression", "ongoing", "intolerance"};
static const char *const met_sites[] = {"bone", "inguinal_nodes", "retroperitoneal", "liver",
                                        "lung", "peritoneum", "brain", "other"};
static const char *const psyms[] = {"bleeding", "obstruction", "intractable_pain"};
static const char *const msyms[] = {"pain", "fracture_risk", "skin_breakdown",
                                    "lymphedema", "obstruction", "neurologic"};
#define NAMES(a) ((names){a, (int)(sizeof a / sizeof a[0])})

void pw_facts_clear(pw_facts *f) {
  memset(f, 0, sizeof *f);
  f->ecog = f->metastatic = PW_UNKNOWN;
  f->primary.resected = f->primary.prior_pelvic_radiation = PW_UNKNOWN;
  f->neuropathy.grade = f->neuropathy.persistent = PW_UNKNOWN;
}

/* ---- describing what came, for error messages ---- */

static int is_list(lua_State *L, int idx) {
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx), count = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) { lua_pop(L, 1); count++; }
  return count == n;
}

static void describe(lua_State *L, int idx, char *b, size_t n) {
  switch (lua_type(L, idx)) {
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) snprintf(b, n, "%lld", (long long)lua_tointeger(L, idx));
    else snprintf(b, n, "%.17g", (double)lua_tonumber(L, idx));
    break;
  case LUA_TSTRING: {
    size_t len, j = 0;
    const char *s = lua_tolstring(L, idx, &len);
    char t[48];
    for (size_t i = 0; i < len && j < 40; i++) t[j++] = isprint((unsigned char)s[i]) ? s[i] : '?';
    t[j] = '\0';
    snprintf(b, n, "\"%s\"%s", t, len > 40 ? "..." : "");
    break;
  }
  case LUA_TBOOLEAN: snprintf(b, n, "%s", lua_toboolean(L, idx) ? "true" : "false"); break;
  case LUA_TTABLE: snprintf(b, n, "%s", lua_rawlen(L, idx) > 0 ? "an array" : "an object"); break;
  case LUA_TLIGHTUSERDATA: snprintf(b, n, "null"); break;
  default: snprintf(b, n, "a %s", lua_typename(L, lua_type(L, idx)));
  }
}

static int fail(vctx *c, int idx, const char *path, const char *expected) {
  char got[96];
  describe(c->L, idx, got, sizeof got);
  snprintf(c->err, c->errlen, "%s: expected %s, got %s", path, expected, got);
  return -1;
}

/* Paths for messages are built for every member validated, so without
** snprintf: the same text, truncated the same way (b holds n > 0 bytes). */
static size_t path_add(char *b, size_t n, size_t k, const char *s) {
  while (*s && k + 1 < n) b[k++] = *s++;
  b[k] = '\0';
  return k;
}

static void path_join(char *b, size_t n, const char *x, const char *y) {   /* "%s.%s" */
  path_add(b, n, path_add(b, n, path_add(b, n, 0, x), "."), y);
}

static void path_index(char *b, size_t n, const char *x, lua_Integer i) {   /* "%s[%lld]" */
  char d[24], *q = d + sizeof d;
  unsigned long long u = i < 0 ? 0ull - (unsigned long long)i : (unsigned long long)i;
  *--q = '\0';
  *--q = ']';
  do { *--q = (char)('0' + u % 10); u /= 10; } while (u);
  if (i < 0) *--q = '-';
  path_add(b, n, path_add(b, n, path_add(b, n, 0, x), "["), q);
}

static int is_null(lua_State *L, int idx) {
  return lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == NULL;
}

/* ---- scalar readers: value at stack top-level index idx ---- */

static int get_int(vctx *c, int idx, const char *path, long lo, long hi,
                   const char *expected, int *out) {
  lua_State *L = c->L;
  if (lua_type(L, idx) == LUA_TNUMBER) {
    if (lua_isinteger(L, idx)) {
      lua_Integer v = lua_tointeger(L, idx);
      if (v >= lo && v <= hi) { *out = (int)v; return 0; }
    } else {
      double d = (double)lua_tonumber(L, idx);
      if (isfinite(d) && d == floor(d) && d >= (double)lo && d <= (double)hi) { *out = (int)d; return 0; }
    }
  }
  return fail(c, idx, path, expected);
}

static int get_bool(vctx *c, int idx, const char *path, int *out) {
  if (lua_type(c->L, idx) != LUA_TBOOLEAN) return fail(c, idx, path, "true or false");
  *out = lua_toboolean(c->L, idx);
  return 0;
}

static int get_str(vctx *c, int idx, const char *path, const char **out) {
  size_t n;
  if (lua_type(c->L, idx) != LUA_TSTRING) return fail(c, idx, path, "a string");
  const char *s = lua_tolstring(c->L, idx, &n);
  if (n == 0 || n > MAX_STR || strlen(s) != n) return fail(c, idx, path, "a string of 1..256 characters");
  *out = pw_arena_strdup(c->a, s, n);
  return *out ? 0 : -1;
}

/* enum: returns 1-based position in nm, via *out */
static int get_enum(vctx *c, int idx, const char *path, names nm, int *out) {
  if (lua_type(c->L, idx) == LUA_TSTRING) {
    const char *s = lua_tostring(c->L, idx);
    for (int i = 0; i < nm.n; i++)
      if (strcmp(s, nm.v[i]) == 0) { *out = i + 1; return 0; }
  }
  char exp[200];
  size_t k = (size_t)snprintf(exp, sizeof exp, "one of ");
  for (int i = 0; i < nm.n && k < sizeof exp; i++)
    k += (size_t)snprintf(exp + k, sizeof exp - k, "%s%s", i ? ", " : "", nm.v[i]);
  return fail(c, idx, path, exp);
}

/* A list of enum values into a bit set. */
static int get_symptoms(vctx *c, int idx, const char *path, names nm, unsigned *out) {
  lua_State *L = c->L;
  char p[160];
  if (!lua_istable(L, idx) || !is_list(L, idx)) return fail(c, idx, path, "an array of symptoms");
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
  if (n > PW_FACTS_MAX_LIST) return fail(c, idx, path, "an array of at most 64 items");
  *out = 0;
  for (lua_Integer i = 1; i <= n; i++) {
    int v;
    lua_rawgeti(L, idx, i);
    path_index(p, sizeof p, path, i - 1);
    if (get_enum(c, lua_gettop(L), p, nm, &v)) return -1;
    *out |= 1u << (v - 1);
    lua_pop(L, 1);
  }
  return 0;
}

/* Iterate an object's members: calls fn(c, key, value index, path prefix). */
typedef int (*member_fn)(vctx *c, const char *key, int vidx, const char *prefix, void *ud);

static int unknown_field(vctx *c, const char *prefix, const char *key) {
  pw_facts *f = c->f;
  if (f->nunknown >= PW_FACTS_MAX_UNKNOWN) return 0;
  char p[200];
  size_t klen = strlen(key);
  /* long keys are shown cut, on a UTF-8 boundary: the path goes into JSON */
  int shown = (int)(klen > 64 ? pw_utf8_cut(key, 64) : klen);
  snprintf(p, sizeof p, "%s%s%.*s%s", prefix, *prefix ? "." : "", shown, key, (size_t)shown < klen ? "..." : "");
  f->unknown[f->nunknown] = pw_arena_strdup(c->a, p, strlen(p));
  if (f->unknown[f->nunknown]) f->nunknown++;
  return 0;
}

typedef struct mkey { const char *s; size_t n; } mkey;

static int mkey_cmp(const void *pa, const void *pb) {
  const mkey *a = pa, *b = pb;
  int r = memcmp(a->s, b->s, a->n < b->n ? a->n : b->n);
  return r ? r : (a->n > b->n) - (a->n < b->n);
}

/* Members in key order, not lua_next's (which follows the hash seed), so
** the first error reported and the order of unknown-field warnings are the
** same on every run. The keys stay alive in the table at idx. */
static int each_member(vctx *c, int idx, const char *path, member_fn fn, void *ud) {
  lua_State *L = c->L;
  mkey small[24], *keys = small;
  size_t n = 0, cap = sizeof small / sizeof small[0];
  if (!lua_istable(L, idx)) return fail(c, idx, *path ? path : "facts", "an object");
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING) {
      lua_pop(L, 1);
      return fail(c, idx, *path ? path : "facts", "an object");
    }
    if (n == cap) {
      mkey *more = pw_arena_alloc(c->a, 2 * cap * sizeof *more);
      if (!more) {
        lua_pop(L, 1);
        snprintf(c->err, c->errlen, "%s: out of memory", *path ? path : "facts");
        return -1;
      }
      memcpy(more, keys, n * sizeof *keys);
      keys = more;
      cap *= 2;
    }
    keys[n].s = lua_tolstring(L, -1, &keys[n].n);
    n++;
  }
  if (n > 1) qsort(keys, n, sizeof *keys, mkey_cmp);
  for (size_t i = 0; i < n; i++) {
    lua_pushlstring(L, keys[i].s, keys[i].n);
    lua_rawget(L, idx);
    int r = fn(c, keys[i].s, lua_gettop(L), path, ud);
    lua_pop(L, 1);
    if (r) return -1;
  }
  return 0;
}

#define KEY(k) (strcmp(key, k) == 0)

static int primary_member(vctx *c, const char *key, int v, const char *pre, void *ud) {
  pw_facts *f = c->f;
  (void)ud;
  if (is_null(c->L, v)) return 0;
  if (KEY("site")) return get_enum(c, v, "primary.site", NAMES(prim_sites), &f->primary.site);
  if (KEY("resected")) return get_bool(c, v, "primary.resected", &f->primary.resected);
  if (KEY("prior_pelvic_radiation"))
    return get_bool(c, v, "primary.prior_pelvic_radiation", &f->primary.prior_pelvic_radiation);
  if (KEY("symptoms")) {
    f->primary.symptoms_known = 1;
    return get_symptoms(c, v, "primary.symptoms", NAMES(psyms), &f->primary.symptoms);
  }
  return unknown_field(c, pre, key);
}

static int neuropathy_member(vctx *c, const char *key, int v, const char *pre, void *ud) {
  (void)ud;
  if (is_null(c->L, v)) return 0;
  if (KEY("grade"))
    return get_int(c, v, "neuropathy.grade", 0, 4, "integer 0..4", &c->f->neuropathy.grade);
  if (KEY("persistent")) return get_bool(c, v, "neuropathy.persistent", &c->f->neuropathy.persistent);
  return unknown_field(c, pre, key);
}

static int molecular_member(vctx *c, const char *key, int v, const char *pre, void *ud) {
  pw_facts *f = c->f;
  int *slot = NULL, r;
  names nm = NAMES(mol_vals);
  char path[64];
  (void)ud;
  if (is_null(c->L, v)) return 0;
  if (KEY("kras")) slot = &f->kras;
  else if (KEY("nras")) slot = &f->nras;
  else if (KEY("braf_v600e")) { slot = &f->braf_v600e; nm = NAMES(braf_vals); }
  else if (KEY("msi")) { slot = &f->msi; nm = NAMES(msi_vals); }
  else return unknown_field(c, pre, key);
  path_join(path, sizeof path, "molecular", key);
  if ((r = get_enum(c, v, path, nm, slot))) return r;
  if (*slot == 3) *slot = 0;   /* "unknown" */
  return 0;
}

typedef struct list_item { int i; } list_item;

static int regimen_member(vctx *c, const char *key, int v, const char *pre, void *ud) {
  pw_regimen_fact *r = ud;
  char path[96];
  if (is_null(c->L, v)) return 0;
  path_join(path, sizeof path, pre, key);
  if (KEY("name")) return get_str(c, v, path, &r->name);
  if (KEY("line")) return get_int(c, v, path, 1, 99, "integer 1..99", &r->line);
  if (KEY("outcome")) return get_enum(c, v, path, NAMES(outcomes), &r->outcome);
  return unknown_field(c, pre, key);
}

static int met_member(vctx *c, const char *key, int v, const char *pre, void *ud) {
  pw_met_fact *m = ud;
  char path[96];
  if (is_null(c->L, v)) return 0;
  path_join(path, sizeof path, pre, key);
  if (KEY("site")) return get_enum(c, v, path, NAMES(met_sites), &m->site);
  if (KEY("symptoms")) {
    m->symptoms_known = 1;
    return get_symptoms(c, v, path, NAMES(msyms), &m->symptoms);
  }
  return unknown_field(c, pre, key);
}

/* A list whose items are objects read by fn into items of size sz. */
static int get_obj_list(vctx *c, int idx, const char *path, member_fn fn,
                        void *items, size_t sz, int *n_out) {
  lua_State *L = c->L;
  if (!lua_istable(L, idx) || !is_list(L, idx)) return fail(c, idx, path, "an array");
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
  if (n > PW_FACTS_MAX_LIST) return fail(c, idx, path, "an array of at most 64 items");
  for (lua_Integer i = 1; i <= n; i++) {
    char p[96];
    void *item = (char *)items + (size_t)(i - 1) * sz;
    path_index(p, sizeof p, path, i - 1);
    lua_rawgeti(L, idx, i);
    int top = lua_gettop(L);
    if (!lua_istable(L, top) || (lua_rawlen(L, top) > 0)) {
      fail(c, top, p, "an object");
      lua_pop(L, 1);
      return -1;
    }
    int r = each_member(c, top, p, fn, item);
    lua_pop(L, 1);
    if (r) return -1;
  }
  *n_out = (int)n;
  return 0;
}

static int get_str_list(vctx *c, int idx, const char *path, const char **out, int *n_out) {
  lua_State *L = c->L;
  if (!lua_istable(L, idx) || !is_list(L, idx)) return fail(c, idx, path, "an array of strings");
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
  if (n > PW_FACTS_MAX_LIST) return fail(c, idx, path, "an array of at most 64 items");
  for (lua_Integer i = 1; i <= n; i++) {
    char p[96];
    path_index(p, sizeof p, path, i - 1);
    lua_rawgeti(L, idx, i);
    int r = get_str(c, lua_gettop(L), p, &out[i - 1]);
    lua_pop(L, 1);
    if (r) return -1;
  }
  *n_out = (int)n;
  return 0;
}

static int orders_from(vctx *c, int idx) {
  pw_facts *f = c->f;
  const char *ids[PW_FACTS_MAX_LIST];
  if (get_str_list(c, idx, "proposed_orders", ids, &f->norders)) return -1;
  f->orders_known = 1;
  for (int i = 0; i < f->norders; i++) {
    pw_order_fact *o = &f->orders[i];
    pw_kind kind;
    char why[PW_KNOWLEDGE_MSG];
    o->id = ids[i];
    if (pw_knowledge_resolve(ids[i], &o->agents, &o->action, &kind, why, sizeof why)) {
      snprintf(c->err, c->errlen, "proposed_orders[%d]: %s", i, why);
      return -1;
    }
    o->kind = (int)kind;
  }
  return 0;
}

static int root_member(vctx *c, const char *key, int v, const char *pre, void *ud) {
  pw_facts *f = c->f;
  lua_State *L = c->L;
  (void)ud;
  if (KEY("planned_surgery_in_days")) {
    if (is_null(L, v)) { f->surgery = PW_SURGERY_NONE; return 0; }
    f->surgery = PW_SURGERY_PLANNED;
    return get_int(c, v, key, 0, INT_MAX, "integer >= 0 or null", &f->surgery_days);
  }
  if (is_null(L, v)) return 0;
  if (KEY("patient_id")) return get_str(c, v, key, &f->patient_id);
  if (KEY("ecog")) return get_int(c, v, key, 0, 4, "integer 0..4", &f->ecog);
  if (KEY("metastatic")) return get_bool(c, v, key, &f->metastatic);
  if (KEY("primary")) return each_member(c, v, "primary", primary_member, NULL);
  if (KEY("neuropathy")) return each_member(c, v, "neuropathy", neuropathy_member, NULL);
  if (KEY("molecular")) return each_member(c, v, "molecular", molecular_member, NULL);
  if (KEY("prior_regimens")) {
    f->regimens_known = 1;
    return get_obj_list(c, v, key, regimen_member, f->regimens, sizeof f->regimens[0], &f->nregimens);
  }
  if (KEY("metastases")) {
    f->mets_known = 1;
    return get_obj_list(c, v, key, met_member, f->mets, sizeof f->mets[0], &f->nmets);
  }
  if (KEY("prior_radiation_sites")) {
    f->rt_known = 1;
    return get_str_list(c, v, key, f->rt_sites, &f->nrt);
  }
  if (KEY("proposed_orders")) return orders_from(c, v);
  return unknown_field(c, pre, key);
}

int pw_facts_from_lua(lua_State *L, int idx, pw_facts *f, pw_arena *a, char *err, size_t errlen) {
  vctx c = {L, f, a, err, errlen};
  idx = lua_absindex(L, idx);
  pw_facts_clear(f);
  if (!lua_checkstack(L, 8)) { snprintf(err, errlen, "facts: too deeply nested"); return -1; }
  if (!lua_istable(L, idx) || (lua_rawlen(L, idx) > 0))
    return fail(&c, idx, "facts", "a JSON object");
  return each_member(&c, idx, "", root_member, NULL);
}

int pw_facts_orders_from_lua(lua_State *L, int idx, pw_facts *f, pw_arena *a, char *err, size_t errlen) {
  vctx c = {L, f, a, err, errlen};
  return orders_from(&c, lua_absindex(L, idx));
}

int pw_facts_prior_groin_rt(const pw_facts *f) {
  for (int i = 0; i < f->nrt; i++)
    if (strcasecmp(f->rt_sites[i], "groin") == 0 || strcasecmp(f->rt_sites[i], "inguinal") == 0)
      return 1;
  return 0;
}

/* ---- names and canonical form ---- */

const char *pw_facts_site_name(int site) {
  return site >= 1 && site <= 8 ? met_sites[site - 1] : "unknown";
}
const char *pw_facts_mol_name(int v) { return v ? mol_vals[v - 1] : "unknown"; }
const char *pw_facts_msi_name(int v) { return v ? msi_vals[v - 1] : "unknown"; }

/* ,"k": (keys and names here need no escaping) */
static void canon_key(pw_buf *b, const char *k) {
  pw_buf_add(b, ",\"", 2);
  pw_buf_adds(b, k);
  pw_buf_add(b, "\":", 2);
}
static void canon_tri(pw_buf *b, const char *k, int v) {
  canon_key(b, k);
  pw_buf_adds(b, v == PW_UNKNOWN ? "null" : v ? "true" : "false");
}
static void canon_int(pw_buf *b, const char *k, int v) {
  canon_key(b, k);
  if (v == PW_UNKNOWN) pw_buf_adds(b, "null");
  else pw_buf_add_int(b, v);
}
static void canon_bits(pw_buf *b, const char *k, int known, unsigned bits, names nm) {
  canon_key(b, k);
  if (!known) { pw_buf_adds(b, "null"); return; }
  pw_buf_adds(b, "[");
  for (int i = 0, first = 1; i < nm.n; i++)
    if (bits & (1u << i)) {
      pw_buf_adds(b, first ? "\"" : ",\"");
      pw_buf_adds(b, nm.v[i]);
      pw_buf_adds(b, "\"");
      first = 0;
    }
  pw_buf_adds(b, "]");
}

void pw_facts_canonical(const pw_facts *f, pw_buf *b) {
  pw_buf_adds(b, "{\"patient_id\":");
  pw_buf_json_str(b, f->patient_id);
  canon_int(b, "ecog", f->ecog);
  canon_tri(b, "metastatic", f->metastatic);
  pw_buf_adds(b, ",\"primary\":{\"site\":");
  pw_buf_json_str(b, f->primary.site ? prim_sites[f->primary.site - 1] : NULL);
  canon_tri(b, "resected", f->primary.resected);
  canon_tri(b, "prior_pelvic_radiation", f->primary.prior_pelvic_radiation);
  canon_bits(b, "symptoms", f->primary.symptoms_known, f->primary.symptoms, NAMES(psyms));
  pw_buf_adds(b, "},\"prior_regimens\":");
  if (!f->regimens_known) pw_buf_adds(b, "null");
  else {
    pw_buf_adds(b, "[");
    for (int i = 0; i < f->nregimens; i++) {
      const pw_regimen_fact *r = &f->regimens[i];
      pw_buf_adds(b, i ? ",{\"name\":" : "{\"name\":");
      pw_buf_json_str(b, r->name);
      canon_int(b, "line", r->line ? r->line : PW_UNKNOWN);
      pw_buf_adds(b, ",\"outcome\":");
      pw_buf_json_str(b, r->outcome ? outcomes[r->outcome - 1] : NULL);
      pw_buf_adds(b, "}");
    }
    pw_buf_adds(b, "]");
  }
  pw_buf_adds(b, ",\"neuropathy\":{\"grade\":");
  if (f->neuropathy.grade == PW_UNKNOWN) pw_buf_adds(b, "null");
  else pw_buf_add_int(b, f->neuropathy.grade);
  canon_tri(b, "persistent", f->neuropathy.persistent);
  pw_buf_adds(b, "},\"molecular\":{\"kras\":\"");
  pw_buf_adds(b, pw_facts_mol_name(f->kras));
  pw_buf_adds(b, "\",\"nras\":\"");
  pw_buf_adds(b, pw_facts_mol_name(f->nras));
  pw_buf_adds(b, "\",\"braf_v600e\":\"");
  pw_buf_adds(b, pw_facts_mol_name(f->braf_v600e));
  pw_buf_adds(b, "\",\"msi\":\"");
  pw_buf_adds(b, pw_facts_msi_name(f->msi));
  pw_buf_adds(b, "\"}");
  pw_buf_adds(b, ",\"metastases\":");
  if (!f->mets_known) pw_buf_adds(b, "null");
  else {
    pw_buf_adds(b, "[");
    for (int i = 0; i < f->nmets; i++) {
      pw_buf_adds(b, i ? ",{\"site\":" : "{\"site\":");
      pw_buf_json_str(b, f->mets[i].site ? met_sites[f->mets[i].site - 1] : NULL);
      canon_bits(b, "symptoms", f->mets[i].symptoms_known, f->mets[i].symptoms, NAMES(msyms));
      pw_buf_adds(b, "}");
    }
    pw_buf_adds(b, "]");
  }
  pw_buf_adds(b, ",\"prior_radiation_sites\":");
  if (!f->rt_known) pw_buf_adds(b, "null");
  else {
    pw_buf_adds(b, "[");
    for (int i = 0; i < f->nrt; i++) {
      if (i) pw_buf_adds(b, ",");
      pw_buf_json_str(b, f->rt_sites[i]);
    }
    pw_buf_adds(b, "]");
  }
  pw_buf_adds(b, ",\"planned_surgery_in_days\":");
  if (f->surgery == PW_SURGERY_PLANNED) pw_buf_add_int(b, f->surgery_days);
  else pw_buf_adds(b, f->surgery == PW_SURGERY_NONE ? "\"none\"" : "null");
  pw_buf_adds(b, ",\"proposed_orders\":");
  if (!f->orders_known) pw_buf_adds(b, "null");
  else {
    pw_buf_adds(b, "[");
    for (int i = 0; i < f->norders; i++) {
      if (i) pw_buf_adds(b, ",");
      pw_buf_json_str(b, f->orders[i].id);
    }
    pw_buf_adds(b, "]");
  }
  pw_buf_adds(b, "}");
}

static void bits_text(unsigned bits, names nm, char *buf, size_t n) {
  size_t k = 0;
  buf[0] = '\0';
  for (int i = 0; i < nm.n; i++)
    if (bits & (1u << i)) k += (size_t)snprintf(buf + k, k < n ? n - k : 0, "%s%s", k ? ", " : "", nm.v[i]);
  if (!k) snprintf(buf, n, "none");
}

/* snprintf(buf, n, "%s", s) without the formatting machinery */
static void put(char *buf, size_t n, const char *s) {
  size_t k = strlen(s);
  if (!n) return;
  if (k >= n) k = n - 1;
  memcpy(buf, s, k);
  buf[k] = '\0';
}

/* The plain form of what the sscanf patterns below read: prefix, 1 or 2
** digits, "].", a field of [a-z_]. Returns 1 with *i and field set. Other
** spellings (spaces, signs, more digits) take the sscanf path. */
static int indexed_fast(const char *path, const char *prefix, size_t plen, int *i, char field[16]) {
  if (strncmp(path, prefix, plen)) return 0;
  const char *p = path + plen;
  if (p[0] < '0' || p[0] > '9') return 0;
  int v = p[0] - '0', k = 1;
  if (p[1] >= '0' && p[1] <= '9') { v = v * 10 + (p[1] - '0'); k = 2; }
  if (p[k] != ']' || p[k + 1] != '.') return 0;
  p += k + 2;
  size_t m = 0;
  while (m < 15 && ((p[m] >= 'a' && p[m] <= 'z') || p[m] == '_')) { field[m] = p[m]; m++; }
  if (m == 0 || p[m]) return 0;
  field[m] = '\0';
  *i = v;
  return 1;
}

/* metastases[N].site|symptoms and prior_regimens[N].name|line|outcome */
static const char *describe_indexed(const pw_facts *f, const char *path, char *buf, size_t n) {
  int i, len = 0;
  char field[16];
  if (indexed_fast(path, "metastases[", 11, &i, field) ||
      (sscanf(path, "metastases[%d].%15[a-z_]%n", &i, field, &len) == 2 && !path[len])) {
    if (i < 0 || i >= PW_FACTS_MAX_LIST) return NULL;
    if (strcmp(field, "site") && strcmp(field, "symptoms")) return NULL;
    if (!f->mets_known || i >= f->nmets) put(buf, n, "absent");
    else if (!strcmp(field, "site")) put(buf, n, pw_facts_site_name(f->mets[i].site));
    else if (!f->mets[i].symptoms_known) put(buf, n, "unknown");
    else bits_text(f->mets[i].symptoms, NAMES(msyms), buf, n);
    return buf;
  }
  if (indexed_fast(path, "prior_regimens[", 15, &i, field) ||
      (sscanf(path, "prior_regimens[%d].%15[a-z_]%n", &i, field, &len) == 2 && !path[len])) {
    if (i < 0 || i >= PW_FACTS_MAX_LIST) return NULL;
    const pw_regimen_fact *r = &f->regimens[i];
    int absent = !f->regimens_known || i >= f->nregimens;
    if (!strcmp(field, "name")) snprintf(buf, n, "%s", absent || !r->name ? "unknown" : r->name);
    else if (!strcmp(field, "line")) { if (absent || !r->line) snprintf(buf, n, "unknown"); else snprintf(buf, n, "%d", r->line); }
    else if (!strcmp(field, "outcome")) snprintf(buf, n, "%s", absent || !r->outcome ? "unknown" : outcomes[r->outcome - 1]);
    else return NULL;
    return buf;
  }
  return NULL;
}

const char *pw_facts_describe(const pw_facts *f, const char *path, char *buf, size_t n) {
  const char *s = NULL;
  int v = -2;
  if (strchr(path, '[')) return describe_indexed(f, path, buf, n);
  if (!strcmp(path, "ecog")) v = f->ecog;
  else if (!strcmp(path, "patient_id")) s = f->patient_id ? f->patient_id : "unknown";
  else if (!strcmp(path, "primary.site")) s = f->primary.site ? prim_sites[f->primary.site - 1] : "unknown";
  else if (!strcmp(path, "primary.resected"))
    s = f->primary.resected == PW_UNKNOWN ? "unknown" : f->primary.resected ? "true" : "false";
  else if (!strcmp(path, "primary.prior_pelvic_radiation"))
    s = f->primary.prior_pelvic_radiation == PW_UNKNOWN ? "unknown" : f->primary.prior_pelvic_radiation ? "true" : "false";
  else if (!strcmp(path, "proposed_orders")) {
    if (!f->orders_known) s = "none";
    else { snprintf(buf, n, "%d proposed", f->norders); return buf; }
  }
  else if (!strcmp(path, "neuropathy.grade")) v = f->neuropathy.grade;
  else if (!strcmp(path, "planned_surgery_in_days")) {
    s = f->surgery == PW_SURGERY_NONE ? "none planned" : f->surgery == PW_SURGERY_UNKNOWN ? "unknown" : NULL;
    if (!s) v = f->surgery_days;
  } else if (!strcmp(path, "metastatic")) s = f->metastatic == PW_UNKNOWN ? "unknown" : f->metastatic ? "true" : "false";
  else if (!strcmp(path, "neuropathy.persistent"))
    s = f->neuropathy.persistent == PW_UNKNOWN ? "unknown" : f->neuropathy.persistent ? "true" : "false";
  else if (!strcmp(path, "molecular.kras")) s = pw_facts_mol_name(f->kras);
  else if (!strcmp(path, "molecular.nras")) s = pw_facts_mol_name(f->nras);
  else if (!strcmp(path, "molecular.braf_v600e")) s = pw_facts_mol_name(f->braf_v600e);
  else if (!strcmp(path, "molecular.msi")) s = pw_facts_msi_name(f->msi);
  else if (!strcmp(path, "prior_regimens")) {
    if (!f->regimens_known) s = "unknown";
    else { snprintf(buf, n, "%d listed", f->nregimens); return buf; }
  } else if (!strcmp(path, "metastases")) {
    if (!f->mets_known) s = "unknown";
    else { snprintf(buf, n, "%d listed", f->nmets); return buf; }
  } else if (!strcmp(path, "primary.symptoms")) {
    if (!f->primary.symptoms_known) s = "unknown";
    else { bits_text(f->primary.symptoms, NAMES(psyms), buf, n); return buf; }
  } else if (!strcmp(path, "prior_radiation_sites")) {
    if (!f->rt_known) s = "unknown";
    else { snprintf(buf, n, "%s", pw_facts_prior_groin_rt(f) ? "includes the groin" : "no groin"); return buf; }
  } else return NULL;
  if (s) put(buf, n, s);
  else if (v == PW_UNKNOWN) put(buf, n, "unknown");
  else snprintf(buf, n, "%d", v);
  return buf;
}

/* ---- read-only views for scripts ---- */

#define VIEW_MT "pathwise.facts"

enum { V_ROOT, V_PRIMARY, V_NEURO, V_MOLECULAR, V_PSYM, V_REGIMENS, V_REGIMEN,
       V_METS, V_MET, V_MSYM, V_RT, V_ORDERS };

typedef struct view {
  const pw_facts *f;
  const uint32_t *gen;
  uint32_t made;
  int kind, idx;
} view;

/* The view metamethods hold the metatable as upvalue 1: comparing with it
** is cheaper than luaL_checkudata's lookup by name, on every access. */
static view *check_view(lua_State *L) {
  view *v;
  if (lua_type(L, 1) == LUA_TUSERDATA && lua_getmetatable(L, 1) &&
      lua_rawequal(L, -1, lua_upvalueindex(1))) {
    lua_pop(L, 1);
    v = lua_touserdata(L, 1);
  } else
    v = luaL_checkudata(L, 1, VIEW_MT);   /* raises the usual error */
  if (*v->gen != v->made) luaL_error(L, "facts used after their evaluation ended");
  return v;
}

/* Child views are made once per parent and kept in its user values: the
** root's objects and lists, a list's items, a record's symptoms. */
enum { UV_PRIMARY = 1, UV_NEURO, UV_MOLECULAR, UV_REGIMENS, UV_METS, UV_RT, UV_ORDERS, UV_ROOT_N = UV_ORDERS };

static int view_nuv(const pw_facts *f, int kind) {
  switch (kind) {
  case V_ROOT: return UV_ROOT_N;
  case V_PRIMARY: case V_MET: return 1;   /* symptoms */
  case V_REGIMENS: return f->nregimens;
  case V_METS: return f->nmets;
  default: return 0;
  }
}

static void push_view(lua_State *L, const view *parent, int kind, int idx) {
  view *v = lua_newuserdatauv(L, sizeof *v, view_nuv(parent->f, kind));
  *v = *parent;
  v->kind = kind;
  v->idx = idx;
  luaL_setmetatable(L, VIEW_MT);
}

/* Push the child view in user value slot of the view at stack index 1. */
static void push_child(lua_State *L, const view *parent, int slot, int kind, int idx) {
  if (lua_getiuservalue(L, 1, slot) == LUA_TUSERDATA) return;
  lua_pop(L, 1);
  push_view(L, parent, kind, idx);
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, 1, slot);
}

static void push_bits(lua_State *L, unsigned bits, names nm, lua_Integer i) {
  /* the i-th set bit's name, or nil */
  for (int b = 0; b < nm.n; b++)
    if ((bits & (1u << b)) && --i == 0) { lua_pushstring(L, nm.v[b]); return; }
  lua_pushnil(L);
}

static int bits_len(unsigned bits) {
  int n = 0;
  for (; bits; bits &= bits - 1) n++;
  return n;
}

static void push_tri(lua_State *L, int v) {
  if (v == PW_UNKNOWN) lua_pushnil(L); else lua_pushboolean(L, v);
}
static void push_int(lua_State *L, int v) {
  if (v == PW_UNKNOWN) lua_pushnil(L); else lua_pushinteger(L, v);
}
static void push_name(lua_State *L, int v, const char *const *nm) {
  if (v <= 0) lua_pushnil(L); else lua_pushstring(L, nm[v - 1]);
}

static int list_len(const view *v) {
  const pw_facts *f = v->f;
  switch (v->kind) {
  case V_PSYM: return bits_len(f->primary.symptoms);
  case V_REGIMENS: return f->nregimens;
  case V_METS: return f->nmets;
  case V_MSYM: return bits_len(f->mets[v->idx].symptoms);
  case V_RT: return f->nrt;
  case V_ORDERS: return f->norders;
  default: return -1;
  }
}

static void index_list(lua_State *L, const view *v, lua_Integer i) {
  const pw_facts *f = v->f;
  if (i < 1 || i > list_len(v)) { lua_pushnil(L); return; }
  switch (v->kind) {
  case V_PSYM: push_bits(L, f->primary.symptoms, NAMES(psyms), i); break;
  case V_MSYM: push_bits(L, f->mets[v->idx].symptoms, NAMES(msyms), i); break;
  case V_REGIMENS: push_child(L, v, (int)i, V_REGIMEN, (int)i - 1); break;
  case V_METS: push_child(L, v, (int)i, V_MET, (int)i - 1); break;
  case V_RT: lua_pushstring(L, f->rt_sites[i - 1]); break;
  case V_ORDERS: lua_pushstring(L, f->orders[i - 1].id); break;
  }
}

/* k is a key of the view (as a C string: up to its first NUL, as strcmp
** would read it); IS compares the length first, then the bytes. */
#define IS(lit) (n == sizeof(lit) - 1 && memcmp(k, lit, sizeof(lit) - 1) == 0)

static void index_field(lua_State *L, const view *v, const char *k) {
  const pw_facts *f = v->f;
  size_t n = strlen(k);
  switch (v->kind) {
  case V_ROOT:
    if (IS("ecog")) push_int(L, f->ecog);
    else if (IS("metastatic")) push_tri(L, f->metastatic);
    else if (IS("patient_id")) f->patient_id ? (void)lua_pushstring(L, f->patient_id) : lua_pushnil(L);
    else if (IS("primary")) push_child(L, v, UV_PRIMARY, V_PRIMARY, 0);
    else if (IS("neuropathy")) push_child(L, v, UV_NEURO, V_NEURO, 0);
    else if (IS("molecular")) push_child(L, v, UV_MOLECULAR, V_MOLECULAR, 0);
    else if (IS("prior_regimens")) f->regimens_known ? push_child(L, v, UV_REGIMENS, V_REGIMENS, 0) : lua_pushnil(L);
    else if (IS("metastases")) f->mets_known ? push_child(L, v, UV_METS, V_METS, 0) : lua_pushnil(L);
    else if (IS("prior_radiation_sites")) f->rt_known ? push_child(L, v, UV_RT, V_RT, 0) : lua_pushnil(L);
    else if (IS("proposed_orders")) f->orders_known ? push_child(L, v, UV_ORDERS, V_ORDERS, 0) : lua_pushnil(L);
    else if (IS("planned_surgery_in_days")) {
      if (f->surgery == PW_SURGERY_PLANNED) lua_pushinteger(L, f->surgery_days);
      else if (f->surgery == PW_SURGERY_NONE) lua_pushboolean(L, 0);
      else lua_pushnil(L);
    } else lua_pushnil(L);
    break;
  case V_PRIMARY:
    if (IS("site")) push_name(L, f->primary.site, prim_sites);
    else if (IS("resected")) push_tri(L, f->primary.resected);
    else if (IS("prior_pelvic_radiation")) push_tri(L, f->primary.prior_pelvic_radiation);
    else if (IS("symptoms")) f->primary.symptoms_known ? push_child(L, v, 1, V_PSYM, 0) : lua_pushnil(L);
    else lua_pushnil(L);
    break;
  case V_NEURO:
    if (IS("grade")) push_int(L, f->neuropathy.grade);
    else if (IS("persistent")) push_tri(L, f->neuropathy.persistent);
    else lua_pushnil(L);
    break;
  case V_MOLECULAR:
    if (IS("kras")) push_name(L, f->kras, mol_vals);
    else if (IS("nras")) push_name(L, f->nras, mol_vals);
    else if (IS("braf_v600e")) push_name(L, f->braf_v600e, braf_vals);
    else if (IS("msi")) push_name(L, f->msi, msi_vals);
    else lua_pushnil(L);
    break;
  case V_REGIMEN: {
    const pw_regimen_fact *r = &f->regimens[v->idx];
    if (IS("name")) r->name ? (void)lua_pushstring(L, r->name) : lua_pushnil(L);
    else if (IS("line")) r->line ? lua_pushinteger(L, r->line) : lua_pushnil(L);
    else if (IS("outcome")) push_name(L, r->outcome, outcomes);
    else lua_pushnil(L);
    break;
  }
  case V_MET: {
    const pw_met_fact *m = &f->mets[v->idx];
    if (IS("site")) push_name(L, m->site, met_sites);
    else if (IS("symptoms")) m->symptoms_known ? push_child(L, v, 1, V_MSYM, v->idx) : lua_pushnil(L);
    else lua_pushnil(L);
    break;
  }
  default: lua_pushnil(L);
  }
}
#undef IS

static int view_index(lua_State *L) {
  view *v = check_view(L);
  if (list_len(v) >= 0) {
    if (lua_isinteger(L, 2)) index_list(L, v, lua_tointeger(L, 2));
    else lua_pushnil(L);
  } else if (lua_type(L, 2) == LUA_TSTRING) index_field(L, v, lua_tostring(L, 2));
  else lua_pushnil(L);
  return 1;
}

static int view_newindex(lua_State *L) {
  check_view(L);
  const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "?";
  return luaL_error(L, "facts are read-only (tried to set '%s')", k);
}

static int view_len(lua_State *L) {
  view *v = check_view(L);
  int n = list_len(v);
  if (n < 0) return luaL_error(L, "facts object has no length; it is not a list");
  lua_pushinteger(L, n);
  return 1;
}

static const char *const root_keys[] = {"patient_id", "ecog", "metastatic", "primary", "prior_regimens",
  "neuropathy", "molecular", "metastases", "prior_radiation_sites", "planned_surgery_in_days", "proposed_orders", NULL};
static const char *const primary_keys[] = {"site", "resected", "prior_pelvic_radiation", "symptoms", NULL};
static const char *const neuro_keys[] = {"grade", "persistent", NULL};
static const char *const mol_keys[] = {"kras", "nras", "braf_v600e", "msi", NULL};
static const char *const regimen_keys[] = {"name", "line", "outcome", NULL};
static const char *const met_keys[] = {"site", "symptoms", NULL};

static const char *const *keys_of(int kind) {
  switch (kind) {
  case V_ROOT: return root_keys;
  case V_PRIMARY: return primary_keys;
  case V_NEURO: return neuro_keys;
  case V_MOLECULAR: return mol_keys;
  case V_REGIMEN: return regimen_keys;
  case V_MET: return met_keys;
  default: return NULL;
  }
}

/* __pairs: lists iterate 1..n; objects iterate their known fields that are set. */
static int view_next(lua_State *L) {
  view *v = check_view(L);
  int n = list_len(v);
  if (n >= 0) {
    lua_Integer i = lua_isnil(L, 2) ? 1 : luaL_checkinteger(L, 2) + 1;
    if (i > n) return 0;
    lua_pushinteger(L, i);
    index_list(L, v, i);
    return 2;
  }
  const char *const *keys = keys_of(v->kind);
  int i = 0;
  if (!lua_isnil(L, 2)) {
    const char *k = luaL_checkstring(L, 2);
    while (keys[i] && strcmp(keys[i], k)) i++;
    if (keys[i]) i++;
  }
  for (; keys[i]; i++) {
    index_field(L, v, keys[i]);
    if (!lua_isnil(L, -1)) { lua_pushstring(L, keys[i]); lua_insert(L, -2); return 2; }
    lua_pop(L, 1);
  }
  return 0;
}

static int view_pairs(lua_State *L) {
  check_view(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushcclosure(L, view_next, 1);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

static int view_tostring(lua_State *L) {
  lua_pushliteral(L, "facts (read-only)");
  return 1;
}

void pw_facts_open(lua_State *L) {
  static const luaL_Reg mt[] = {
    {"__index", view_index}, {"__newindex", view_newindex}, {"__len", view_len},
    {"__pairs", view_pairs}, {"__tostring", view_tostring}, {NULL, NULL}};
  luaL_newmetatable(L, VIEW_MT);
  lua_pushvalue(L, -1);
  luaL_setfuncs(L, mt, 1);   /* each metamethod knows the metatable */
  lua_pushliteral(L, "facts are read-only");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);
}

/* One root view per evaluation: applies, evaluate and plugins share it
** (and the child views it keeps). The registry holds the latest. */
static const char root_key = 0;

void pw_facts_push_view(lua_State *L, const pw_facts *f, const uint32_t *gen) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &root_key) == LUA_TUSERDATA) {
    const view *v = lua_touserdata(L, -1);
    if (v->f == f && v->gen == gen && v->made == *gen) return;
  }
  lua_pop(L, 1);
  view root = {f, gen, *gen, V_ROOT, 0};
  push_view(L, &root, V_ROOT, 0);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &root_key);
}
