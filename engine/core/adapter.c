/*
** adapter.c: input adapters (FHIR to facts) in their own sandbox; see adapter.h.
*/
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "adapter.h"
#include "arena.h"
#include "buf.h"
#include "file.h"
#include "facts.h"
#include "gate.h"
#include "sandbox.h"
#include "sha256.h"

#define MAX_CODES 8
#define MAX_DEPTH 8

struct pw_adapter {
  pw_sandbox sb;
  pw_adapter_limits lim;
  int decode_ref, adapt_ref, ncodes;
  int codes_ref[MAX_CODES];
  char *id, *version;
  pw_buf src;          /* adapter and code files, concatenated: hashed */
  pw_facts facts;
  pw_arena arena;
};

static pw_status fail(pw_error *err, pw_status code, const char *fmt, const char *a, const char *b) {
  if (err) {
    err->code = code;
    snprintf(err->msg, sizeof err->msg, fmt, a, b);
  }
  return code;
}

static int setup(lua_State *L) {   /* a strict cjson decoder for the host */
  pw_adapter *a = lua_touserdata(L, 1);
  a->decode_ref = pw_sandbox_json_decoder(L);
  return 0;
}

pw_adapter *pw_adapter_new(const pw_adapter_limits *lim, pw_error *err) {
  char msg[256];
  pw_adapter *a = calloc(1, sizeof *a);
  if (!a) { fail(err, PW_EMEMORY, "out of memory%s%s", "", ""); return NULL; }
  if (lim) a->lim = *lim;
  if (!a->lim.memory) a->lim.memory = PW_ADAPTER_MEMORY;
  if (!a->lim.instructions) a->lim.instructions = PW_ADAPTER_INSTRUCTIONS;
  if (!a->lim.max_bytes) a->lim.max_bytes = PW_ADAPTER_MAX_BYTES;
  if (a->lim.max_members <= 0) a->lim.max_members = PW_ADAPTER_MAX_MEMBERS;
  a->adapt_ref = LUA_NOREF;
  if (pw_sandbox_init(&a->sb, a->lim.memory, msg, sizeof msg)) {
    fail(err, PW_EMEMORY, "%s%s", msg, "");
    free(a);
    return NULL;
  }
  /* Incremental GC: the sandbox's generational mode re-traverses a large
  ** decoded document again and again while it grows (measured: 4x slower
  ** on a 10,000-entry bundle). */
  lua_gc(a->sb.L, LUA_GCINC, 0, 0, 0);
  lua_pushcfunction(a->sb.L, setup);
  lua_pushlightuserdata(a->sb.L, a);
  if (lua_pcall(a->sb.L, 1, 0, 0) != LUA_OK) {
    fail(err, PW_EINTERNAL, "cannot set up the adapter state%s%s", "", "");
    pw_sandbox_close(&a->sb);
    free(a);
    return NULL;
  }
  return a;
}

void pw_adapter_free(pw_adapter *a) {
  if (!a) return;
  pw_sandbox_close(&a->sb);
  free(a->id);
  free(a->version);
  pw_buf_free(&a->src);
  pw_arena_free(&a->arena);
  free(a);
}

/* Read a file and run it in the sandbox; its one result is pushed. */
static pw_status run_file(pw_adapter *a, const char *path, pw_error *err) {
  char msg[480];
  pw_buf b = {0};
  pw_status rc = pw_file_read(path, 16u << 20, &b, err);
  if (rc != PW_OK) return rc;
  pw_buf_add(&a->src, b.data, b.len);
  rc = (pw_status)pw_sandbox_load(&a->sb, path, b.data, b.len, msg, sizeof msg);
  pw_buf_free(&b);
  if (rc == PW_OK) rc = (pw_status)pw_sandbox_pcall(&a->sb, 0, 1, a->lim.instructions, msg, sizeof msg);
  if (rc != PW_OK) return fail(err, rc, "%s%s", msg, "");
  return PW_OK;
}

static char *raw_string(lua_State *L, int t, const char *k) {
  t = lua_absindex(L, t);
  lua_pushstring(L, k);
  lua_rawget(L, t);
  char *s = NULL;
  if (lua_type(L, -1) == LUA_TSTRING) {
    size_t n;
    const char *v = lua_tolstring(L, -1, &n);
    if (n > 0 && n < 200 && pw_utf8_valid(v, n)) s = strdup(v);
  }
  lua_pop(L, 1);
  return s;
}

pw_status pw_adapter_load(pw_adapter *a, const char *path, pw_error *err) {
  lua_State *L = a->sb.L;
  if (a->adapt_ref != LUA_NOREF) return fail(err, PW_EINTERNAL, "%s: an adapter is already loaded%s", path, "");
  pw_status rc = run_file(a, path, err);
  if (rc != PW_OK) return rc;
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    return fail(err, PW_EPROTOCOL, "%s: an adapter must return a table {id=, version=, adapt=}%s", path, "");
  }
  a->id = raw_string(L, -1, "id");
  a->version = raw_string(L, -1, "version");
  lua_pushliteral(L, "adapt");
  lua_rawget(L, -2);
  if (!a->id || !a->version || !lua_isfunction(L, -1)) {
    lua_pop(L, 2);
    return fail(err, PW_EPROTOCOL, "%s: an adapter needs a string id and version and a function adapt%s", path, "");
  }
  a->adapt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pop(L, 1);
  return PW_OK;
}

pw_status pw_adapter_add_codes(pw_adapter *a, const char *path, pw_error *err) {
  lua_State *L = a->sb.L;
  if (a->ncodes == MAX_CODES) return fail(err, PW_EPROTOCOL, "%s: at most 8 code tables%s", path, "");
  pw_status rc = run_file(a, path, err);
  if (rc != PW_OK) return rc;
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    return fail(err, PW_EPROTOCOL, "%s: a code table file must return a table%s", path, "");
  }
  a->codes_ref[a->ncodes++] = luaL_ref(L, LUA_REGISTRYINDEX);
  return PW_OK;
}

/* ---- dates ---- */

int pw_adapter_date_ok(const char *s) {
  static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int y, m, d, n = 0;
  if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-') return 0;
  for (int i = 0; i < 10; i++)
    if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9')) return 0;
  if (sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 || n != 10) return 0;
  if (m < 1 || m > 12 || d < 1 || d > mdays[m - 1]) return 0;
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return !(m == 2 && d == 29 && !leap);
}

void pw_adapter_today(char out[11]) {
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, 11, "%Y-%m-%d", &tm);
}

/* ---- writing what the adapter returned ---- */

/* Keys in the order the facts model lists them; others after, sorted. */
static const char *const key_order[] = {
  "patient_id", "ecog", "metastatic", "primary", "site", "spine", "resected",
  "prior_pelvic_radiation", "symptoms", "prior_regimens", "name", "line", "outcome",
  "neuropathy", "grade", "persistent", "molecular", "kras", "nras", "braf_v600e", "msi",
  "metastases", "prior_radiation_sites", "planned_surgery_in_days", NULL};

static int key_rank(const char *k) {
  int i = 0;
  for (; key_order[i]; i++)
    if (!strcmp(k, key_order[i])) return i;
  return i;
}

static int key_cmp(const void *x, const void *y) {
  const char *a = *(const char *const *)x, *b = *(const char *const *)y;
  int ra = key_rank(a), rb = key_rank(b);
  return ra != rb ? ra - rb : strcmp(a, b);
}

static int is_array(lua_State *L, int t, lua_Integer *len) {
  lua_Integer n = (lua_Integer)lua_rawlen(L, t), count = 0;
  lua_pushnil(L);
  while (lua_next(L, t)) { lua_pop(L, 1); count++; }
  *len = n;
  return count == n;   /* an empty table is written as [] (facts lists) */
}

static int write_value(lua_State *L, int idx, pw_buf *b, int depth);

static int write_object(lua_State *L, int t, pw_buf *b, int depth) {
  const char *keys[64];
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING || n == 64) { lua_pop(L, 1); return -1; }
    keys[n++] = lua_tostring(L, -1);   /* stays alive: the key is in t */
  }
  qsort(keys, (size_t)n, sizeof keys[0], key_cmp);
  pw_buf_adds(b, "{");
  for (int i = 0; i < n; i++) {
    if (i) pw_buf_adds(b, ",");
    pw_buf_json_str(b, keys[i]);
    pw_buf_adds(b, ":");
    lua_pushstring(L, keys[i]);
    lua_rawget(L, t);
    int rc = write_value(L, lua_gettop(L), b, depth + 1);
    lua_pop(L, 1);
    if (rc) return -1;
  }
  pw_buf_adds(b, "}");
  return 0;
}

static int write_value(lua_State *L, int idx, pw_buf *b, int depth) {
  lua_Integer len;
  if (depth > MAX_DEPTH || !lua_checkstack(L, 6)) return -1;
  switch (lua_type(L, idx)) {
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    if (strlen(s) != n || !pw_utf8_valid(s, n)) return -1;
    pw_buf_json_str(b, s);
    return 0;
  }
  case LUA_TBOOLEAN: pw_buf_adds(b, lua_toboolean(L, idx) ? "true" : "false"); return 0;
  case LUA_TNUMBER:
    if (!lua_isinteger(L, idx)) return -1;   /* facts hold integers only */
    pw_buf_add_int(b, (long long)lua_tointeger(L, idx));
    return 0;
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(L, idx)) return -1;
    pw_buf_adds(b, "null");
    return 0;
  case LUA_TTABLE:
    if (!is_array(L, idx, &len)) return write_object(L, idx, b, depth);
    pw_buf_adds(b, "[");
    for (lua_Integer i = 1; i <= len; i++) {
      if (i > 1) pw_buf_adds(b, ",");
      lua_rawgeti(L, idx, i);
      int rc = write_value(L, lua_gettop(L), b, depth + 1);
      lua_pop(L, 1);
      if (rc) return -1;
    }
    pw_buf_adds(b, "]");
    return 0;
  default: return -1;
  }
}

/* A string field of a record, or NULL when absent or not a string. */
static const char *field(lua_State *L, int t, const char *k) {
  t = lua_absindex(L, t);
  lua_pushstring(L, k);
  lua_rawget(L, t);
  const char *s = NULL;
  size_t n = 0;
  if (lua_type(L, -1) == LUA_TSTRING) s = lua_tolstring(L, -1, &n);
  lua_pop(L, 1);   /* the string stays alive: it is held by t */
  return s && strlen(s) == n && pw_utf8_valid(s, n) ? s : NULL;
}

static void json_member(pw_buf *b, const char *k, const char *v, int first) {
  pw_buf_addf(b, first ? "\"%s\":" : ",\"%s\":", k);
  pw_buf_json_str(b, v);
}

/* sources[i] = {fact=, value=, ref=, code=, date=, note=}; JSON and text. */
static int write_sources(lua_State *L, int t, pw_adapter_output *o) {
  if (lua_type(L, t) != LUA_TTABLE) return -1;
  lua_Integer n = (lua_Integer)lua_rawlen(L, t);
  pw_buf_adds(&o->meta, ",\"sources\":[");
  pw_buf_adds(&o->text, "  facts and their sources:\n");
  if (!n) pw_buf_adds(&o->text, "    (none)\n");
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, t, i);
    int s = lua_gettop(L);
    const char *fact = field(L, s, "fact"), *value = field(L, s, "value"), *ref = field(L, s, "ref");
    const char *code = field(L, s, "code"), *date = field(L, s, "date"), *note = field(L, s, "note");
    if (lua_type(L, s) != LUA_TTABLE || !fact || !value || !ref) { lua_pop(L, 1); return -1; }
    pw_buf_adds(&o->meta, i > 1 ? ",{" : "{");
    json_member(&o->meta, "fact", fact, 1);
    json_member(&o->meta, "value", value, 0);
    json_member(&o->meta, "ref", ref, 0);
    json_member(&o->meta, "code", code, 0);
    json_member(&o->meta, "date", date, 0);
    if (note) json_member(&o->meta, "note", note, 0);
    pw_buf_adds(&o->meta, "}");
    pw_buf_adds(&o->trace, i > 1 ? ",{\"text\":" : "{\"text\":");
    pw_buf line = {0};
    pw_buf_addf(&line, "FHIR: %s = %s from %s%s%s (%s)%s%s", fact, value, ref, code ? " " : "", code ? code : "",
                date ? date : "undated", note ? "; " : "", note ? note : "");
    pw_buf_json_str(&o->trace, line.data);
    pw_buf_free(&line);
    pw_buf_adds(&o->trace, "}");
    pw_buf_addf(&o->text, "    %s = %s  <- %s", fact, value, ref);
    if (code) pw_buf_addf(&o->text, " %s", code);
    pw_buf_addf(&o->text, " (%s)", date ? date : "undated");
    if (note) pw_buf_addf(&o->text, "; %s", note);
    pw_buf_adds(&o->text, "\n");
    lua_pop(L, 1);
  }
  pw_buf_adds(&o->meta, "]");
  return 0;
}

/* unmapped[i] = {ref=, code=, why=} */
static int write_unmapped(lua_State *L, int t, pw_adapter_output *o) {
  if (lua_type(L, t) != LUA_TTABLE) return -1;
  lua_Integer n = (lua_Integer)lua_rawlen(L, t);
  pw_buf_adds(&o->meta, ",\"unmapped\":[");
  pw_buf_addf(&o->text, "  not mapped (%lld):\n", (long long)n);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, t, i);
    int s = lua_gettop(L);
    const char *ref = field(L, s, "ref"), *code = field(L, s, "code"), *why = field(L, s, "why");
    if (lua_type(L, s) != LUA_TTABLE || !why) { lua_pop(L, 1); return -1; }
    pw_buf_adds(&o->meta, i > 1 ? ",{" : "{");
    json_member(&o->meta, "ref", ref, 1);
    json_member(&o->meta, "code", code, 0);
    json_member(&o->meta, "why", why, 0);
    pw_buf_adds(&o->meta, "}");
    pw_buf_addf(&o->text, "    - %s", ref ? ref : "(bundle)");
    if (code) pw_buf_addf(&o->text, " %s", code);
    pw_buf_addf(&o->text, ": %s\n", why);
    lua_pop(L, 1);
  }
  pw_buf_adds(&o->meta, "]");
  return 0;
}

/* ---- running ---- */

/* cjson-decode text that passed the gate; pushes the value. */
static pw_status decode(pw_adapter *a, const char *json, size_t len, pw_error *err) {
  char msg[400];
  lua_State *L = a->sb.L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, a->decode_ref);
  lua_pushlstring(L, json, len);
  a->sb.mem_tainted = 0;
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    snprintf(msg, sizeof msg, "invalid JSON: %s", lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?");
    lua_pop(L, 1);
    return fail(err, a->sb.mem_tainted ? PW_EMEMORY : PW_EINPUT, "%s%s", msg, "");
  }
  return PW_OK;
}

/* ctx = {as_of = "YYYY-MM-DD", codes = {table, ...}} */
static void push_ctx(pw_adapter *a, const char *as_of) {
  lua_State *L = a->sb.L;
  lua_createtable(L, 0, 2);
  lua_pushstring(L, as_of);
  lua_setfield(L, -2, "as_of");
  lua_createtable(L, a->ncodes, 0);
  for (int i = 0; i < a->ncodes; i++) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, a->codes_ref[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "codes");
}

/* The adapter's answer is at r: validate the facts and write everything. */
static pw_status collect(pw_adapter *a, int r, const char *as_of, pw_adapter_output *o, pw_error *err) {
  lua_State *L = a->sb.L;
  char msg[480], sha[65];
  lua_pushliteral(L, "facts");
  lua_rawget(L, r);
  int facts = lua_gettop(L);
  const char *patient = field(L, r, "patient");
  if (!lua_istable(L, facts) || !patient)
    return fail(err, PW_EPROTOCOL, "adapter %s: adapt must return {patient=, facts=, sources=, unmapped=}%s", a->id, "");
  pw_arena_reset(&a->arena);
  if (pw_facts_from_lua(L, facts, &a->facts, &a->arena, msg, sizeof msg))
    return fail(err, PW_EPROTOCOL, "adapter %.60s produced invalid facts: %.400s", a->id, msg);
  if (a->facts.nunknown)
    return fail(err, PW_EPROTOCOL, "adapter %s produced an unknown fact field '%s'", a->id, a->facts.unknown[0]);
  if (write_value(L, facts, &o->facts, 0))
    return fail(err, PW_EPROTOCOL, "adapter %s: facts hold a value JSON cannot carry%s", a->id, "");
  pw_sha256_hex(a->src.data, a->src.len, sha);
  pw_buf_adds(&o->meta, "{\"from\":\"fhir\"");
  json_member(&o->meta, "as_of", as_of, 0);
  pw_buf_adds(&o->meta, ",\"adapter\":{");
  json_member(&o->meta, "id", a->id, 1);
  json_member(&o->meta, "version", a->version, 0);
  json_member(&o->meta, "sha256", sha, 0);
  pw_buf_adds(&o->meta, "}");
  json_member(&o->meta, "patient", patient, 0);
  pw_buf_adds(&o->meta, ",\"facts\":");
  pw_buf_add(&o->meta, o->facts.data, o->facts.len);
  pw_buf_addf(&o->text, "FHIR INPUT: %s, as of %s (adapter %s %s, sha256 %.12s)\n", patient, as_of,
              a->id, a->version, sha);
  lua_pushliteral(L, "sources");
  lua_rawget(L, r);
  int bad = write_sources(L, lua_gettop(L), o);
  lua_pushliteral(L, "unmapped");
  lua_rawget(L, r);
  bad = bad || write_unmapped(L, lua_gettop(L), o);
  if (bad) return fail(err, PW_EPROTOCOL, "adapter %s: malformed sources or unmapped list%s", a->id, "");
  pw_buf_adds(&o->meta, "}");
  return PW_OK;
}

static void output_reset(pw_adapter_output *o) {
  pw_buf_reset(&o->trace);
  pw_buf_reset(&o->facts);
  pw_buf_reset(&o->meta);
  pw_buf_reset(&o->text);
}

lua_State *pw_adapter_lua(pw_adapter *a) { return a->sb.L; }

pw_status pw_adapter_decode(pw_adapter *a, const char *json, size_t len, pw_gate_info *info, pw_error *err) {
  char msg[400], lim[300];
  pw_gate_limits gl = {a->lim.max_bytes, 0, a->lim.max_members};
  if (pw_gate_check(json, len, &gl, info, msg, sizeof msg)) {
    snprintf(lim, sizeof lim, " (FHIR input limits: %zu bytes, %d members per object or array)",
             a->lim.max_bytes, a->lim.max_members);
    return fail(err, PW_EINPUT, "%.300s%.120s", msg, lim);
  }
  return decode(a, json, len, err);
}

pw_status pw_adapter_run_value(pw_adapter *a, int idx, const char *as_of, pw_adapter_output *o, pw_error *err) {
  char msg[480];
  lua_State *L = a->sb.L;
  int top = lua_gettop(L);
  idx = lua_absindex(L, idx);
  output_reset(o);
  if (a->adapt_ref == LUA_NOREF) return fail(err, PW_EPROTOCOL, "no adapter loaded%s%s", "", "");
  if (!pw_adapter_date_ok(as_of)) return fail(err, PW_EINPUT, "as-of date '%.40s' is not a date YYYY-MM-DD%s", as_of ? as_of : "", "");
  if (!lua_checkstack(L, 8)) return fail(err, PW_EINTERNAL, "Lua stack exhausted%s%s", "", "");
  lua_rawgeti(L, LUA_REGISTRYINDEX, a->adapt_ref);
  lua_pushvalue(L, idx);
  push_ctx(a, as_of);
  pw_status rc = (pw_status)pw_sandbox_pcall(&a->sb, 2, 2, a->lim.instructions, msg, sizeof msg);
  if (rc != PW_OK) {
    lua_settop(L, top);
    return fail(err, rc, "adapter %s: %s", a->id, msg);
  }
  if (lua_isnil(L, -2)) {
    rc = fail(err, PW_EINPUT, "%s%s", lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "the adapter refused the document", "");
  } else if (!lua_istable(L, -2)) {
    rc = fail(err, PW_EPROTOCOL, "adapter %s: adapt must return a table or nil, reason%s", a->id, "");
  } else {
    rc = collect(a, lua_absindex(L, -2), as_of, o, err);
  }
  lua_settop(L, top);
  if (rc != PW_OK) output_reset(o);
  return rc;
}

pw_status pw_adapter_run(pw_adapter *a, const char *json, size_t len, const char *as_of,
                         pw_adapter_output *o, pw_error *err) {
  lua_State *L = a->sb.L;
  int top = lua_gettop(L);
  output_reset(o);
  if (!pw_adapter_date_ok(as_of)) return fail(err, PW_EINPUT, "as-of date '%.40s' is not a date YYYY-MM-DD%s", as_of ? as_of : "", "");
  pw_status rc = pw_adapter_decode(a, json, len, NULL, err);
  if (rc == PW_OK) rc = pw_adapter_run_value(a, -1, as_of, o, err);
  lua_settop(L, top);
  lua_gc(L, LUA_GCCOLLECT);   /* a large document is not kept until the next one */
  return rc;
}

void pw_adapter_output_free(pw_adapter_output *o) {
  pw_buf_free(&o->trace);
  pw_buf_free(&o->facts);
  pw_buf_free(&o->meta);
  pw_buf_free(&o->text);
}

/* Insert text at offset at of b. */
static void buf_insert(pw_buf *b, size_t at, const char *s, size_t n) {
  pw_buf tail = {0};
  pw_buf_add(&tail, b->data + at, b->len - at);
  b->len = at;
  pw_buf_add(b, s, n);
  pw_buf_add(b, tail.data, tail.len);
  pw_buf_free(&tail);
}

/* The offset just after the top-level "trace":[ of a result, or 0. An
** unescaped "trace":[ can only be a key: inside a JSON string every quote
** is escaped. */
static size_t trace_start(const pw_buf *b) {
  static const char key[] = "\"trace\":[";
  size_t k = sizeof key - 1;
  for (size_t i = 0; b->len >= k && i <= b->len - k; i++)
    if (b->data[i] == '"' && !memcmp(b->data + i, key, k) && (i == 0 || b->data[i - 1] != '\\'))
      return i + k;
  return 0;
}

void pw_adapter_splice(pw_buf *res, const pw_adapter_output *o) {
  size_t at = trace_start(res);
  if (at && o->trace.len) {
    int empty = at < res->len && res->data[at] == ']';
    buf_insert(res, at, o->trace.data, o->trace.len);
    if (!empty) buf_insert(res, at + o->trace.len, ",", 1);
  }
  size_t end = res->len;
  while (end && res->data[end - 1] != '}') end--;
  if (!end) return;
  pw_buf tail = {0};
  pw_buf_add(&tail, res->data + end - 1, res->len - (end - 1));   /* "}" and what follows */
  res->len = end - 1;
  pw_buf_adds(res, ",\"input\":");
  pw_buf_add(res, o->meta.data, o->meta.len);
  pw_buf_add(res, tail.data, tail.len);
  pw_buf_free(&tail);
}

int pw_adapter_is_fhir(lua_State *L, int idx, char *err, size_t errlen) {
  if (lua_type(L, idx) != LUA_TTABLE) return 0;
  idx = lua_absindex(L, idx);
  int is = 0;
  lua_pushnil(L);   /* lua_next, not lua_pushstring: no allocation outside a protected call */
  while (!is && lua_next(L, idx)) {
    size_t kn, n;
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &kn) : NULL;
    if (k && kn == 12 && memcmp(k, "resourceType", 12) == 0 && lua_type(L, -1) == LUA_TSTRING) {
      const char *s = lua_tolstring(L, -1, &n);
      snprintf(err, errlen, "resourceType '%.60s': this is a FHIR document, not patient facts "
               "(use --from fhir, or the server's evaluate_fhir method)",
               pw_utf8_valid(s, n) && strlen(s) == n ? s : "?");
      is = 1;
      lua_pop(L, 2);
      break;
    }
    lua_pop(L, 1);
  }
  return is;
}
