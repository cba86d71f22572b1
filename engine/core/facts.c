/*
** facts.c: the one table of the facts (pw_facts_schema) and everything it
** drives: validation, the canonical JSON, describe, and read-only views
** for scripts; see facts.h. The JSON Schema writer is in facts_schema.c.
*/
#include <ctype.h>
#include <lauxlib.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "engine.h"
#include "facts.h"
#include "gate.h"
#include "knowledge.h"

#define MAX_STR 256

/* ---- the one description of the facts ---- */

static const char *const prim_sites[] = {"rectum", "colon_left", "colon_right", "colon", "non_colorectal"};
static const char *const mol_vals[] = {"wild_type", "mutant", "unknown"};
static const char *const msi_vals[] = {"msi_high", "mss", "unknown"};
static const char *const outcomes[] = {"progression", "ongoing", "intolerance"};
static const char *const met_sites[] = {"bone", "inguinal_nodes", "retroperitoneal", "liver",
                                        "lung", "peritoneum", "brain", "other"};
static const char *const psyms[] = {"bleeding", "obstruction", "intractable_pain"};
static const char *const msyms[] = {"pain", "fracture_risk", "skin_breakdown",
                                    "lymphedema", "obstruction", "neurologic"};
static const char *const rt_bases[] = {"pelvis", "groin", "inguinal", "spine", "retroperitoneum", "bone",
                                       "brain", "liver", "lung", "chest", "abdomen", "other"};
static const char *const rt_sides[] = {"left", "right", "bilateral"};

#define COUNT(a) ((int)(sizeof a / sizeof a[0]))
#define FO(m) offsetof(pw_facts, m)
#define F(k, p, kd) .key = k, .klen = sizeof(k) - 1, .path = p, .kind = kd
#define INT(k, p, o, l, h, e, d) {F(k, p, PW_FK_INT), .off = o, .lo = l, .hi = h, .expected = e, .doc = d}
#define BOOL(k, p, o, d) {F(k, p, PW_FK_BOOL), .off = o, .expected = "true or false", .doc = d}
#define STRING(k, p, o, d) {F(k, p, PW_FK_STRING), .off = o, .expected = "a string", .doc = d}
#define ENUM(k, p, o, nm, unk, d) \
  {F(k, p, PW_FK_ENUM), .off = o, .names = nm, .nnames = COUNT(nm), .unknown_name = unk, .doc = d}
#define SET(k, p, o, known, nm, d) {F(k, p, PW_FK_SET), .off = o, .known_off = known, .names = nm, \
  .nnames = COUNT(nm), .expected = "an array of symptoms", .doc = d}
#define OBJECT(k, kd, d) {F(k, k, PW_FK_OBJECT), .kids = kd, .nkids = COUNT(kd), .doc = d}
#define RECORDS(k, type, arr, known, n, kd, absent_text, d) {F(k, k, PW_FK_RECORDS), .off = FO(arr), \
  .known_off = FO(known), .count_off = FO(n), .item_size = sizeof(type), .kids = kd, .nkids = COUNT(kd), \
  .absent = absent_text, .expected = "an array", .doc = d}


static const pw_field primary_fields[] = {
  ENUM("site", "primary.site", FO(primary.site), prim_sites, 0,
       "where the primary tumour is; colon: side not known; non_colorectal: the guideline does not apply"),
  BOOL("resected", "primary.resected", FO(primary.resected), "the primary tumour was resected"),
  BOOL("prior_pelvic_radiation", "primary.prior_pelvic_radiation", FO(primary.prior_pelvic_radiation),
       "the pelvis was irradiated before"),
  SET("symptoms", "primary.symptoms", FO(primary.symptoms), FO(primary.symptoms_known), psyms,
      "symptoms the primary tumour causes; [] for none"),
};

static const pw_field regimen_fields[] = {
  STRING("name", "prior_regimens[].name", offsetof(pw_regimen_fact, name), "the regimen, e.g. FOLFOX"),
  INT("line", "prior_regimens[].line", offsetof(pw_regimen_fact, line), 1, 99, "integer 1..99",
      "the line of treatment it was"),
  ENUM("outcome", "prior_regimens[].outcome", offsetof(pw_regimen_fact, outcome), outcomes, 0,
       "how it ended, or ongoing"),
};

static const pw_field neuropathy_fields[] = {
  INT("grade", "neuropathy.grade", FO(neuropathy.grade), 0, 4, "integer 0..4",
      "peripheral neuropathy grade (CTCAE) 0-4"),
  BOOL("persistent", "neuropathy.persistent", FO(neuropathy.persistent), "the neuropathy persists"),
};

static const pw_field molecular_fields[] = {
  ENUM("kras", "molecular.kras", FO(kras), mol_vals, 3, "KRAS status"),
  ENUM("nras", "molecular.nras", FO(nras), mol_vals, 3, "NRAS status"),
  ENUM("braf_v600e", "molecular.braf_v600e", FO(braf_v600e), mol_vals, 3, "BRAF V600E status"),
  ENUM("msi", "molecular.msi", FO(msi), msi_vals, 3, "microsatellite instability status"),
};

static const pw_field met_fields[] = {
  ENUM("site", "metastases[].site", offsetof(pw_met_fact, site), met_sites, 0, "where the metastasis is"),
  SET("symptoms", "metastases[].symptoms", offsetof(pw_met_fact, symptoms), offsetof(pw_met_fact, symptoms_known),
      msyms, "symptoms the metastasis causes; [] for none"),
  {F("spine", "metastases[].spine", PW_FK_BOOL), .off = offsetof(pw_met_fact, spine), .expected = "true or false",
   .only_key = "site", .only_value = PW_SITE_BONE, .doc = "the bone metastasis involves the spine (bone sites only)"},
};

/* prior_radiation_sites as read, one record per site (views and describe) */
static const pw_field rt_fields[] = {
  STRING("text", "prior_radiation[].text", offsetof(pw_rt_fact, text), "the site as written"),
  ENUM("site", "prior_radiation[].site", offsetof(pw_rt_fact, site), rt_bases, 0, "the base site; absent when not recognised"),
  ENUM("laterality", "prior_radiation[].laterality", offsetof(pw_rt_fact, side), rt_sides, 0, "left, right or bilateral, when said"),
  BOOL("recognised", "prior_radiation[].recognised", offsetof(pw_rt_fact, recognised),
       "the site is in the vocabulary; if not, it may include the groin"),
};

static const pw_field root_fields[] = {
  STRING("patient_id", "patient_id", FO(patient_id), "an identifier, kept verbatim"),
  INT("ecog", "ecog", FO(ecog), 0, 4, "integer 0..4", "ECOG performance status 0-4"),
  BOOL("metastatic", "metastatic", FO(metastatic), "the cancer is metastatic"),
  OBJECT("primary", primary_fields, "the primary tumour"),
  RECORDS("prior_regimens", pw_regimen_fact, regimens, regimens_known, nregimens, regimen_fields, "unknown",
          "systemic treatment so far; [] for none"),
  OBJECT("neuropathy", neuropathy_fields, "peripheral neuropathy"),
  OBJECT("molecular", molecular_fields, "tumour biomarkers"),
  RECORDS("metastases", pw_met_fact, mets, mets_known, nmets, met_fields, "absent",
          "the metastatic sites; [] for none"),
  {F("prior_radiation_sites", "prior_radiation_sites", PW_FK_RT_SITES), .off = FO(rt_sites),
   .known_off = FO(rt_known), .count_off = FO(nrt), .expected = "an array of strings", .names = rt_bases,
   .nnames = COUNT(rt_bases),
   .doc = "body sites irradiated before: pelvis, groin, inguinal, spine, retroperitoneum, bone, brain, liver, lung, "
          "chest, abdomen or other, optionally after left, right or bilateral (\"left groin\"); any other text is "
          "accepted with a warning and taken as possibly including the groin"},
  {F("prior_radiation", "prior_radiation", PW_FK_RECORDS), .off = FO(rt), .known_off = FO(rt_known),
   .count_off = FO(nrt), .item_size = sizeof(pw_rt_fact), .kids = rt_fields, .nkids = COUNT(rt_fields),
   .absent = "absent", .derived = 1, .doc = "prior_radiation_sites as read: base site and laterality"},
  {F("planned_surgery_in_days", "planned_surgery_in_days", PW_FK_SURGERY), .off = FO(surgery),
   .count_off = FO(surgery_days), .lo = 0, .hi = INT_MAX, .expected = "integer >= 0 or null",
   .doc = "days until planned surgery; null: none planned"},
  {F("proposed_orders", "proposed_orders", PW_FK_ORDERS), .off = FO(orders), .known_off = FO(orders_known),
   .count_off = FO(norders), .expected = "an array of strings",
   .doc = "orders a clinician proposes, each safety-checked: agent, regimen or action ids, or several joined by +"},
};

const pw_field pw_facts_schema = {F("", "", PW_FK_OBJECT), .kids = root_fields, .nkids = COUNT(root_fields),
                                  .doc = "one patient's facts"};

typedef struct names { const char *const *v; int n; } names;
#define NAMES(a) ((names){a, COUNT(a)})
#define FNAMES(fd) ((names){(fd)->names, (fd)->nnames})

static const pw_field *kid_n(const pw_field *obj, const char *k, size_t n) {
  for (int i = 0; i < obj->nkids; i++)
    if (obj->kids[i].klen == n && memcmp(obj->kids[i].key, k, n) == 0) return &obj->kids[i];
  return NULL;
}

const pw_field *pw_facts_field(const char *path) {
  const pw_field *fd = &pw_facts_schema;
  while (*path) {
    size_t n = strcspn(path, ".[");
    if (!fd->kids || !(fd = kid_n(fd, path, n))) return NULL;
    path += n;
    if (fd->kind == PW_FK_RECORDS && path[0] == '[' && path[1] == ']' && path[2] == '.') path += 3;
    else if (fd->kind == PW_FK_OBJECT && path[0] == '.') path++;
    else if (*path) return NULL;
  }
  return fd;
}

/* Integers and booleans outside records start unknown; all else is 0. */
static void clear_object(const pw_field *obj, char *base) {
  for (int i = 0; i < obj->nkids; i++) {
    const pw_field *k = &obj->kids[i];
    if (k->kind == PW_FK_INT || k->kind == PW_FK_BOOL) *(int *)(base + k->off) = PW_UNKNOWN;
    else if (k->kind == PW_FK_OBJECT) clear_object(k, base);
  }
}

void pw_facts_clear(pw_facts *f) {
  memset(f, 0, sizeof *f);
  clear_object(&pw_facts_schema, (char *)f);
}

typedef struct vctx {
  lua_State *L;
  pw_facts *f;
  pw_arena *a;
  char *err;
  size_t errlen;
  int oom;   /* the host refused memory: not the input's fault */
} vctx;

/* The arena could not grow: "path: out of memory", reported as -2. */
static int facts_oom(vctx *c, const char *path) {
  snprintf(c->err, c->errlen, "%s: out of memory", *path ? path : "facts");
  c->oom = 1;
  return -1;
}

/* ---- describing what came, for error messages ---- */

/* ---- {} and []: lua-cjson decodes both as the same empty table ---- */

enum { EMPTY_UNMARKED, EMPTY_OBJECT, EMPTY_ARRAY };

/* What the empty table at idx was in the JSON text (pw_facts_mark_empty,
** facts_mark.c);
** unmarked when it did not come from JSON text (a Lua caller's table). */
static int empty_kind(lua_State *L, int idx) {
  int kind = EMPTY_UNMARKED;
  if (!lua_getmetatable(L, idx)) return kind;
  luaL_getmetatable(L, PW_FACTS_EMPTY_OBJECT_MT);
  luaL_getmetatable(L, PW_FACTS_EMPTY_ARRAY_MT);
  if (lua_rawequal(L, -3, -2)) kind = EMPTY_OBJECT;
  else if (lua_rawequal(L, -3, -1)) kind = EMPTY_ARRAY;
  lua_pop(L, 3);
  return kind;
}

static int is_list(lua_State *L, int idx) {
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx), count = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) { lua_pop(L, 1); count++; }
  return count == n && (n > 0 || empty_kind(L, idx) != EMPTY_OBJECT);
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
  case LUA_TTABLE:
    snprintf(b, n, "%s", lua_rawlen(L, idx) > 0 || empty_kind(L, idx) == EMPTY_ARRAY ? "an array" : "an object");
    break;
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
  return *out ? 0 : facts_oom(c, path);
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
  if (!f->unknown[f->nunknown]) return facts_oom(c, p);   /* never drop the warning silently */
  f->nunknown++;
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
        return facts_oom(c, path);
      }
      memcpy(more, keys, n * sizeof *keys);
      keys = more;
      cap *= 2;
    }
    keys[n].s = lua_tolstring(L, -1, &keys[n].n);
    n++;
  }
  if (n > 1) qsort(keys, n, sizeof *keys, mkey_cmp);
  if (n == 0 && empty_kind(L, idx) == EMPTY_ARRAY) return fail(c, idx, *path ? path : "facts", "an object");
  for (size_t i = 0; i < n; i++) {
    lua_pushlstring(L, keys[i].s, keys[i].n);
    lua_rawget(L, idx);
    int r = fn(c, keys[i].s, lua_gettop(L), path, ud);
    lua_pop(L, 1);
    if (r) return -1;
  }
  return 0;
}

/* ---- validation, by the table ---- */

typedef struct obj_ctx { const pw_field *obj; char *base; int in_record; } obj_ctx;

static int is_unknown(lua_State *L, int idx) {
  size_t n;
  const char *s;
  return lua_type(L, idx) == LUA_TSTRING && (s = lua_tolstring(L, idx, &n)) && n == 7 && !memcmp(s, "unknown", 7);
}

/* Is the value of field fd (in base) known? */
static int field_known(const pw_field *fd, const char *base) {
  int v = *(const int *)(const void *)(base + fd->off);
  switch (fd->kind) {
  case PW_FK_INT: return v >= fd->lo;
  case PW_FK_BOOL: return v != PW_UNKNOWN;
  case PW_FK_ENUM: return v != 0;
  case PW_FK_STRING: return *(const char *const *)(const void *)(base + fd->off) != NULL;
  default: return fd->known_off ? *(const int *)(const void *)(base + fd->known_off) : 1;
  }
}

/* Fields allowed only with a sibling's value (a record's spine only on a
** bone site), checked once the whole object is read. */
static int check_only(vctx *c, const pw_field *obj, const char *base, const char *path) {
  for (int i = 0; i < obj->nkids; i++) {
    const pw_field *k = &obj->kids[i], *sib;
    if (!k->only_key || !field_known(k, base) || !(sib = kid_n(obj, k->only_key, strlen(k->only_key)))) continue;
    int v = *(const int *)(const void *)(base + sib->off);
    if (v == k->only_value) continue;
    snprintf(c->err, c->errlen, "%s%s%s: expected only when %s is %s, got %s %s", path, *path ? "." : "", k->key,
             sib->key, sib->names[k->only_value - 1], sib->key, v ? sib->names[v - 1] : "unknown");
    return -1;
  }
  return 0;
}

/* A record's booleans start unknown (memset made them false). */
static void clear_record(const pw_field *rec, char *item) {
  for (int i = 0; i < rec->nkids; i++)
    if (rec->kids[i].kind == PW_FK_BOOL) *(int *)(void *)(item + rec->kids[i].off) = PW_UNKNOWN;
}

static int read_field(vctx *c, const pw_field *fd, int v, const char *path, char *base, int in_record);

/* A member of an object: its field in the table, or an unknown-field
** warning. null means unknown (planned_surgery_in_days: none planned). */
static int object_member(vctx *c, const char *key, int v, const char *pre, void *ud) {
  const obj_ctx *o = ud;
  const pw_field *fd = kid_n(o->obj, key, strlen(key));
  if (is_null(c->L, v) && !(fd && fd->kind == PW_FK_SURGERY)) return 0;
  if (!fd || fd->derived) return unknown_field(c, pre, key);
  if (is_unknown(c->L, v)) return 0;   /* "unknown", on every field, as absent */
  if (!o->in_record) return read_field(c, fd, v, fd->path, o->base, 0);
  char path[96];
  path_join(path, sizeof path, pre, key);
  return read_field(c, fd, v, path, o->base, 1);
}

/* A list of objects: each item read field by field into its record. */
static int get_records(vctx *c, int idx, const char *path, const pw_field *fd, char *base) {
  lua_State *L = c->L;
  if (!lua_istable(L, idx) || !is_list(L, idx)) return fail(c, idx, path, fd->expected);
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
  if (n > PW_FACTS_MAX_LIST) return fail(c, idx, path, "an array of at most 64 items");
  for (lua_Integer i = 1; i <= n; i++) {
    char p[96];
    obj_ctx o = {fd, base + fd->off + (size_t)(i - 1) * fd->item_size, 1};
    path_index(p, sizeof p, path, i - 1);
    lua_rawgeti(L, idx, i);
    int top = lua_gettop(L);
    if (!lua_istable(L, top) || (lua_rawlen(L, top) > 0)) {
      fail(c, top, p, "an object");
      lua_pop(L, 1);
      return -1;
    }
    clear_record(fd, o.base);
    int r = each_member(c, top, p, object_member, &o);
    if (!r) r = check_only(c, fd, o.base, p);
    lua_pop(L, 1);
    if (r) return -1;
  }
  *(int *)(base + fd->count_off) = (int)n;
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

/* ---- prior radiation sites: a controlled vocabulary ---- */

/* "[left |right |bilateral ]base", any case; anything else is not recognised. */
static void rt_read(const char *s, pw_rt_fact *r) {
  r->text = s;
  r->site = r->side = r->recognised = 0;
  for (int i = 0; i < COUNT(rt_sides); i++) {
    size_t n = strlen(rt_sides[i]);
    if (!strncasecmp(s, rt_sides[i], n) && s[n] == ' ') { r->side = i + 1; s += n + 1; break; }
  }
  for (int i = 0; i < COUNT(rt_bases); i++)
    if (!strcasecmp(s, rt_bases[i])) { r->site = i + 1; r->recognised = 1; return; }
  r->side = 0;
}

static void warn(vctx *c, const char *id, const char *text) {
  pw_facts *f = c->f;
  if (f->nwarnings >= PW_FACTS_MAX_UNKNOWN) return;
  const char *t = pw_arena_strdup(c->a, text, strlen(text));
  if (!t) return;
  f->warnings[f->nwarnings].id = id;
  f->warnings[f->nwarnings++].text = t;
}

static int rt_read_all(vctx *c, const char *path) {
  pw_facts *f = c->f;
  for (int i = 0; i < f->nrt; i++) {
    pw_rt_fact *r = &f->rt[i];
    rt_read(f->rt_sites[i], r);
    if (r->recognised) continue;
    char t[400];
    size_t len = strlen(r->text);
    int shown = (int)(len > 64 ? pw_utf8_cut(r->text, 64) : len);
    snprintf(t, sizeof t, "%s[%d]: '%.*s%s' is not a recognised radiation site (pelvis, groin, inguinal, spine, "
             "retroperitoneum, bone, brain, liver, lung, chest, abdomen or other, optionally after left, right "
             "or bilateral): it is taken as possibly including the groin, so no standard inguinal course is "
             "offered; review the radiation history", path, i, shown, r->text, (size_t)shown < len ? "..." : "");
    warn(c, "prior_radiation_site_unrecognised", t);
  }
  return 0;
}

static int read_field(vctx *c, const pw_field *fd, int v, const char *path, char *base, int in_record) {
  char *slot = base + fd->off;
  switch (fd->kind) {
  case PW_FK_INT: return get_int(c, v, path, fd->lo, fd->hi, fd->expected, (int *)slot);
  case PW_FK_BOOL: return get_bool(c, v, path, (int *)slot);
  case PW_FK_STRING: return get_str(c, v, path, (const char **)slot);
  case PW_FK_ENUM: {
    int *e = (int *)slot;
    if (get_enum(c, v, path, FNAMES(fd), e)) return -1;
    if (fd->unknown_name && *e == fd->unknown_name) *e = 0;
    return 0;
  }
  case PW_FK_SET:
    *(int *)(base + fd->known_off) = 1;
    return get_symptoms(c, v, path, FNAMES(fd), (unsigned *)slot);
  case PW_FK_OBJECT: {
    obj_ctx o = {fd, base, in_record};
    if (each_member(c, v, path, object_member, &o)) return -1;
    return check_only(c, fd, base, path);
  }
  case PW_FK_RECORDS:
    *(int *)(base + fd->known_off) = 1;
    return get_records(c, v, path, fd, base);
  case PW_FK_RT_SITES:
    *(int *)(base + fd->known_off) = 1;
    if (get_str_list(c, v, path, (const char **)(void *)slot, (int *)(base + fd->count_off))) return -1;
    return rt_read_all(c, path);
  case PW_FK_ORDERS: return orders_from(c, v);
  case PW_FK_SURGERY:
    if (is_null(c->L, v)) { *(int *)slot = PW_SURGERY_NONE; return 0; }
    *(int *)slot = PW_SURGERY_PLANNED;
    return get_int(c, v, path, fd->lo, fd->hi, fd->expected, (int *)(base + fd->count_off));
  }
  return 0;
}

int pw_facts_from_lua(lua_State *L, int idx, pw_facts *f, pw_arena *a, char *err, size_t errlen) {
  vctx c = {L, f, a, err, errlen, 0};
  obj_ctx root = {&pw_facts_schema, (char *)f, 0};
  idx = lua_absindex(L, idx);
  pw_facts_clear(f);
  if (!lua_checkstack(L, 8)) { snprintf(err, errlen, "facts: too deeply nested"); return -1; }
  if (!lua_istable(L, idx) || (lua_rawlen(L, idx) > 0))
    return fail(&c, idx, "facts", "a JSON object");
  int rc = each_member(&c, idx, "", object_member, &root);
  return rc && c.oom ? -2 : rc;
}

int pw_facts_orders_from_lua(lua_State *L, int idx, pw_facts *f, pw_arena *a, char *err, size_t errlen) {
  vctx c = {L, f, a, err, errlen, 0};
  int rc = orders_from(&c, lua_absindex(L, idx));
  return rc && c.oom ? -2 : rc;
}

int pw_facts_prior_groin_rt(const pw_facts *f) {
  int possibly = 0;
  for (int i = 0; i < f->nrt; i++) {
    if (f->rt[i].site == PW_RT_GROIN || f->rt[i].site == PW_RT_INGUINAL) return 1;
    possibly |= !f->rt[i].recognised;
  }
  return possibly ? 2 : 0;
}

/* ---- names and canonical form ---- */

const char *pw_facts_site_name(int site) {
  return site >= 1 && site <= COUNT(met_sites) ? met_sites[site - 1] : "unknown";
}
const char *pw_facts_mol_name(int v) { return v ? mol_vals[v - 1] : "unknown"; }
const char *pw_facts_msi_name(int v) { return v ? msi_vals[v - 1] : "unknown"; }

#define AT(type, base, fd) (*(type const *)(const void *)((base) + (fd)->off))
#define AT_OFF(type, base, o) (*(type const *)(const void *)((base) + (o)))

static void canon_object(const pw_field *obj, const char *base, pw_buf *b);

static void canon_bits(pw_buf *b, unsigned bits, names nm) {
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

static void canon_value(const pw_field *fd, const char *base, pw_buf *b) {
  int known = fd->known_off ? AT_OFF(int, base, fd->known_off) : 1;
  int n = fd->count_off ? AT_OFF(int, base, fd->count_off) : 0;
  switch (fd->kind) {
  case PW_FK_INT: {
    int v = AT(int, base, fd);
    if (v < fd->lo) pw_buf_adds(b, "null"); else pw_buf_add_int(b, v);
    break;
  }
  case PW_FK_BOOL: {
    int v = AT(int, base, fd);
    pw_buf_adds(b, v == PW_UNKNOWN ? "null" : v ? "true" : "false");
    break;
  }
  case PW_FK_STRING: pw_buf_json_str(b, AT(const char *, base, fd)); break;
  case PW_FK_ENUM: {
    int v = AT(int, base, fd);
    if (!v && fd->unknown_name) v = fd->unknown_name;
    pw_buf_json_str(b, v ? fd->names[v - 1] : NULL);
    break;
  }
  case PW_FK_SET:
    if (!known) pw_buf_adds(b, "null"); else canon_bits(b, AT(unsigned, base, fd), FNAMES(fd));
    break;
  case PW_FK_OBJECT: canon_object(fd, base, b); break;
  case PW_FK_RECORDS:
  case PW_FK_RT_SITES:
  case PW_FK_ORDERS:
    if (!known) { pw_buf_adds(b, "null"); break; }
    pw_buf_adds(b, "[");
    for (int i = 0; i < n; i++) {
      if (i) pw_buf_adds(b, ",");
      if (fd->kind == PW_FK_RECORDS) canon_object(fd, base + fd->off + (size_t)i * fd->item_size, b);
      else if (fd->kind == PW_FK_RT_SITES) pw_buf_json_str(b, (&AT(const char *, base, fd))[i]);
      else pw_buf_json_str(b, (&AT(pw_order_fact, base, fd))[i].id);
    }
    pw_buf_adds(b, "]");
    break;
  case PW_FK_SURGERY: {
    int s = AT(int, base, fd);
    if (s == PW_SURGERY_PLANNED) pw_buf_add_int(b, n);
    else pw_buf_adds(b, s == PW_SURGERY_NONE ? "\"none\"" : "null");
    break;
  }
  }
}

/* {"k":v,...} in table order (keys and names here need no escaping) */
static void canon_object(const pw_field *obj, const char *base, pw_buf *b) {
  for (int i = 0, first = 1; i < obj->nkids; i++) {
    const pw_field *k = &obj->kids[i];
    if (k->derived) continue;
    pw_buf_add(b, first ? "{\"" : ",\"", 2);
    first = 0;
    pw_buf_add(b, k->key, k->klen);
    pw_buf_add(b, "\":", 2);
    canon_value(k, base, b);
  }
  pw_buf_adds(b, "}");
}

void pw_facts_canonical(const pw_facts *f, pw_buf *b) {
  canon_object(&pw_facts_schema, (const char *)f, b);
}

/* ---- describe: a fact's value as display text ---- */

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

/* The plain form of what the sscanf pattern below reads: 1 or 2 digits,
** "].", a field of [a-z_]. Returns 1 with *i and field set. Other
** spellings (spaces, signs, more digits) take the sscanf path. */
static int indexed_fast(const char *p, int *i, char field[16]) {
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

static const char *describe_value(const pw_field *fd, const char *base, char *buf, size_t n) {
  int known = fd->known_off ? AT_OFF(int, base, fd->known_off) : 1;
  int count = fd->count_off ? AT_OFF(int, base, fd->count_off) : 0;
  const char *s = NULL;
  switch (fd->kind) {
  case PW_FK_INT: {
    int v = AT(int, base, fd);
    if (v < fd->lo) s = "unknown"; else { snprintf(buf, n, "%d", v); return buf; }
    break;
  }
  case PW_FK_BOOL: {
    int v = AT(int, base, fd);
    s = v == PW_UNKNOWN ? "unknown" : v ? "true" : "false";
    break;
  }
  case PW_FK_STRING: s = AT(const char *, base, fd) ? AT(const char *, base, fd) : "unknown"; break;
  case PW_FK_ENUM: s = AT(int, base, fd) ? fd->names[AT(int, base, fd) - 1] : "unknown"; break;
  case PW_FK_SET:
    if (!known) s = "unknown";
    else { bits_text(AT(unsigned, base, fd), FNAMES(fd), buf, n); return buf; }
    break;
  case PW_FK_OBJECT: return NULL;
  case PW_FK_RECORDS:
  case PW_FK_ORDERS:
    if (!known) s = fd->kind == PW_FK_ORDERS ? "none" : "unknown";
    else { snprintf(buf, n, "%d %s", count, fd->kind == PW_FK_ORDERS ? "proposed" : "listed"); return buf; }
    break;
  case PW_FK_RT_SITES:
    if (!known) s = "unknown";
    else switch (pw_facts_prior_groin_rt((const pw_facts *)(const void *)base)) {
      case 1: s = "includes the groin"; break;
      case 2: s = "may include the groin (a site not recognised)"; break;
      default: s = "no groin";
      }
    break;
  case PW_FK_SURGERY: {
    int st = AT(int, base, fd);
    s = st == PW_SURGERY_NONE ? "none planned" : st == PW_SURGERY_UNKNOWN ? "unknown" : NULL;
    if (!s) { snprintf(buf, n, "%d", count); return buf; }
    break;
  }
  }
  put(buf, n, s);
  return buf;
}

/* LIST[N].field, for a list of records */
static const char *describe_indexed(const pw_facts *f, const char *path, char *buf, size_t n) {
  int i, len = 0;
  char field[16];
  size_t klen = strcspn(path, "[");
  const pw_field *fd = kid_n(&pw_facts_schema, path, klen), *kid;
  if (!fd || fd->kind != PW_FK_RECORDS) return NULL;
  const char *p = path + klen + 1;
  if (!indexed_fast(p, &i, field) && !(sscanf(p, "%d].%15[a-z_]%n", &i, field, &len) == 2 && !p[len]))
    return NULL;
  if (i < 0 || i >= PW_FACTS_MAX_LIST) return NULL;
  if (!(kid = kid_n(fd, field, strlen(field)))) return NULL;
  const char *base = (const char *)f;
  if (!AT_OFF(int, base, fd->known_off) || i >= AT_OFF(int, base, fd->count_off)) {
    put(buf, n, fd->absent);
    return buf;
  }
  return describe_value(kid, base + fd->off + (size_t)i * fd->item_size, buf, n);
}

const char *pw_facts_describe(const pw_facts *f, const char *path, char *buf, size_t n) {
  if (strchr(path, '[')) return describe_indexed(f, path, buf, n);
  const pw_field *fd = pw_facts_field(path);
  if (!fd || fd == &pw_facts_schema) return NULL;
  return describe_value(fd, (const char *)f, buf, n);
}

/* ---- read-only views for scripts, by the table ---- */

#define VIEW_MT "pathwise.facts"

/* A view is an object (the root, a nested object, or one record: its
** fields are fd's kids) or a list (fd a records, set, sites or orders
** field). base is what fd's offsets are relative to. */
typedef struct view {
  const pw_facts *f;
  const uint32_t *gen;
  uint32_t made;
  const pw_field *fd;
  const char *base;
  int list;
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

static int is_container(const pw_field *fd) {
  return fd->kind == PW_FK_OBJECT || fd->kind == PW_FK_RECORDS || fd->kind == PW_FK_SET ||
         fd->kind == PW_FK_RT_SITES || fd->kind == PW_FK_ORDERS;
}

/* Child views are made once per parent and kept in its user values: an
** object's containers (slots 1.. in table order), a list's records. */
static int container_slot(const pw_field *obj, const pw_field *kid) {
  int slot = 1;
  for (const pw_field *k = obj->kids; k < kid; k++) slot += is_container(k);
  return slot;
}

static int list_len(const view *v) {
  if (!v->list) return -1;
  if (v->fd->kind == PW_FK_SET) {
    int n = 0;
    for (unsigned bits = AT(unsigned, v->base, v->fd); bits; bits &= bits - 1) n++;
    return n;
  }
  return AT_OFF(int, v->base, v->fd->count_off);
}

static void push_view(lua_State *L, const view *parent, const pw_field *fd, const char *base, int list) {
  int nuv = 0;
  view tmp = {parent->f, parent->gen, parent->made, fd, base, list};
  if (list) nuv = fd->kind == PW_FK_RECORDS ? list_len(&tmp) : 0;
  else
    for (int i = 0; i < fd->nkids; i++) nuv += is_container(&fd->kids[i]);
  view *v = lua_newuserdatauv(L, sizeof *v, nuv);
  *v = tmp;
  luaL_setmetatable(L, VIEW_MT);
}

/* Push the child view in user value slot of the view at stack index 1. */
static void push_child(lua_State *L, const view *parent, int slot, const pw_field *fd, const char *base, int list) {
  if (lua_getiuservalue(L, 1, slot) == LUA_TUSERDATA) return;
  lua_pop(L, 1);
  push_view(L, parent, fd, base, list);
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, 1, slot);
}

static void push_bits(lua_State *L, unsigned bits, names nm, lua_Integer i) {
  /* the i-th set bit's name, or nil */
  for (int b = 0; b < nm.n; b++)
    if ((bits & (1u << b)) && --i == 0) { lua_pushstring(L, nm.v[b]); return; }
  lua_pushnil(L);
}

static void index_list(lua_State *L, const view *v, lua_Integer i) {
  const pw_field *fd = v->fd;
  if (i < 1 || i > list_len(v)) { lua_pushnil(L); return; }
  switch (fd->kind) {
  case PW_FK_SET: push_bits(L, AT(unsigned, v->base, fd), FNAMES(fd), i); break;
  case PW_FK_RECORDS:
    push_child(L, v, (int)i, fd, v->base + fd->off + (size_t)(i - 1) * fd->item_size, 0);
    break;
  case PW_FK_RT_SITES: lua_pushstring(L, (&AT(const char *, v->base, fd))[i - 1]); break;
  case PW_FK_ORDERS: lua_pushstring(L, (&AT(pw_order_fact, v->base, fd))[i - 1].id); break;
  default: lua_pushnil(L);
  }
}

/* The value of field kid of the object view v. */
static void push_field(lua_State *L, const view *v, const pw_field *kid) {
  const char *base = v->base;
  switch (kid->kind) {
  case PW_FK_INT:
    if (AT(int, base, kid) < kid->lo) lua_pushnil(L); else lua_pushinteger(L, AT(int, base, kid));
    break;
  case PW_FK_BOOL:
    if (AT(int, base, kid) == PW_UNKNOWN) lua_pushnil(L); else lua_pushboolean(L, AT(int, base, kid));
    break;
  case PW_FK_STRING:
    if (AT(const char *, base, kid)) lua_pushstring(L, AT(const char *, base, kid)); else lua_pushnil(L);
    break;
  case PW_FK_ENUM:
    if (AT(int, base, kid) <= 0) lua_pushnil(L); else lua_pushstring(L, kid->names[AT(int, base, kid) - 1]);
    break;
  case PW_FK_OBJECT: push_child(L, v, container_slot(v->fd, kid), kid, base, 0); break;
  case PW_FK_RECORDS:
  case PW_FK_SET:
  case PW_FK_RT_SITES:
  case PW_FK_ORDERS:
    if (AT_OFF(int, base, kid->known_off)) push_child(L, v, container_slot(v->fd, kid), kid, base, 1);
    else lua_pushnil(L);
    break;
  case PW_FK_SURGERY:
    if (AT(int, base, kid) == PW_SURGERY_PLANNED) lua_pushinteger(L, AT_OFF(int, base, kid->count_off));
    else if (AT(int, base, kid) == PW_SURGERY_NONE) lua_pushboolean(L, 0);
    else lua_pushnil(L);
    break;
  }
}

/* k is a key of the view (as a C string: up to its first NUL, as strcmp
** would read it). */
static void index_field(lua_State *L, const view *v, const char *k) {
  const pw_field *kid = kid_n(v->fd, k, strlen(k));
  if (kid) push_field(L, v, kid);
  else if (v->fd == &pw_facts_schema)   /* a typo (facts.ecgo) would read as unknown forever */
    luaL_error(L, "facts has no field '%s' (see docs/schema/)", k);
  else
    luaL_error(L, "facts.%s has no field '%s' (see docs/schema/)",
               v->fd->key ? v->fd->key : "?", k);
}

static int view_index(lua_State *L) {
  view *v = check_view(L);
  if (v->list) {
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
  const pw_field *kids = v->fd->kids;
  int i = 0, nk = v->fd->nkids;
  if (!lua_isnil(L, 2)) {
    const char *k = luaL_checkstring(L, 2);
    while (i < nk && strcmp(kids[i].key, k)) i++;
    if (i < nk) i++;
  }
  for (; i < nk; i++) {
    if (kids[i].derived) continue;
    push_field(L, v, &kids[i]);
    if (!lua_isnil(L, -1)) { lua_pushstring(L, kids[i].key); lua_insert(L, -2); return 2; }
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
  view root = {f, gen, *gen, &pw_facts_schema, (const char *)f, 0};
  push_view(L, &root, &pw_facts_schema, (const char *)f, 0);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &root_key);
}
