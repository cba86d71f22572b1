/*
** engine.c: the engine: protocol loading, the `out` builder, evaluation,
** example checks and plugins. See pathwise.h and engine.h.
**
** An evaluation: validate facts in C -> protocol applies/evaluate propose
** items through `out` (checked as they come) -> proposed orders join ->
** the C safety kernel blocks what breaks a rule -> plugins may block more
** -> the result is written by C.
*/
#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "engine.h"
#include "facts.h"
#include "knowledge.h"
#include "safety.h"
#include "sandbox.h"

#define DEFAULT_MEMORY (64u << 20)
#define DEFAULT_INSTRUCTIONS 5000000u
#define DEFAULT_MAX_INPUT (1u << 20)
#define MAX_TEXT 4096
#define MAX_PLUGINS 8

typedef struct plugin {
  char *id, *name;
  int check_ref;
} plugin;

struct pw_engine {
  pw_sandbox sb;
  pw_limits lim;
  pw_protocol_info info;
  char *path;
  int loaded, proto_ref, applies_ref, evaluate_ref, out_ref, pout_ref, decode_ref;
  int in_eval, in_plugin;
  const plugin *cur_plugin;
  uint32_t gen;
  pw_facts facts;
  pw_result res;
  pw_buf scratch;
  plugin plugins[MAX_PLUGINS];
  int nplugins;
};

static pw_status fail(pw_error *err, pw_status code, const char *fmt, const char *a, const char *b) {
  if (err) {
    err->code = code;
    snprintf(err->msg, sizeof err->msg, fmt, a, b);
    /* a message cut at the end of msg must not end inside a UTF-8 character */
    err->msg[pw_utf8_cut(err->msg, strlen(err->msg))] = '\0';
  }
  return code;
}

static pw_engine *engine_of(lua_State *L) {
  return lua_touserdata(L, lua_upvalueindex(1));
}

/* ---- reading builder arguments (raw access only) ---- */

/* Field names, held as upvalues 2.. of every builder function: pushing
** one is a copy where lua_pushstring would hash and compare each time. */
enum {
  F_ID, F_TEXT, F_RATIONALE, F_EVIDENCE, F_GROUP, F_STRENGTH, F_CITATIONS, F_PREFERRED,
  F_TARGET, F_FACTS, F_FACT, F_WHY, F_ORDER, F_TEST, F_RULE, F_REASON, F_LEVEL, NFIELDS};
static const char *const field_names[NFIELDS] = {
  "id", "text", "rationale", "evidence", "group", "strength", "citations", "preferred",
  "target", "facts", "fact", "why", "order", "test", "rule", "reason", "level"};

static void push_field(lua_State *L, int f) {
  lua_pushvalue(L, lua_upvalueindex(2 + f));
}

static const char *arg_str(lua_State *L, pw_engine *e, const char *fn, int f, int required) {
  const char *k = field_names[f];
  push_field(L, f);
  int t = lua_rawget(L, 1);
  if (t == LUA_TNIL) {
    lua_pop(L, 1);
    if (required) luaL_error(L, "out.%s: field '%s' is required", fn, k);
    return NULL;
  }
  if (t != LUA_TSTRING) luaL_error(L, "out.%s: field '%s' must be a string, got %s", fn, k, lua_typename(L, t));
  size_t n;
  const char *s = lua_tolstring(L, -1, &n);
  if (n > MAX_TEXT) luaL_error(L, "out.%s: field '%s' is longer than %d bytes", fn, k, MAX_TEXT);
  if (strlen(s) != n || !pw_utf8_valid(s, n)) luaL_error(L, "out.%s: field '%s' is not valid UTF-8 text", fn, k);
  char *c = pw_arena_strdup(&e->res.arena, s, n);
  lua_pop(L, 1);
  if (!c) luaL_error(L, "out.%s: out of memory", fn);
  return c;
}

static int is_ident(const char *s) {
  if (!*s) return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '.' || *s == '-'))
      return 0;
  return 1;
}

static void arg_cites(lua_State *L, pw_engine *e, const char *fn, int required, pw_cites *c) {
  memset(c, 0, sizeof *c);
  push_field(L, F_CITATIONS);
  int t = lua_rawget(L, 1);
  if (t == LUA_TNIL && !required) { lua_pop(L, 1); return; }
  if (t != LUA_TTABLE) luaL_error(L, "out.%s: field 'citations' must be a list of reference numbers", fn);
  lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
  if (n == 0 && required) luaL_error(L, "out.%s: field 'citations' must not be empty", fn);
  if (n > PW_MAX_CITES) luaL_error(L, "out.%s: at most %d citations", fn, PW_MAX_CITES);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    int isnum;
    lua_Integer v = lua_tointegerx(L, -1, &isnum);
    if (!isnum || lua_type(L, -1) != LUA_TNUMBER || v < 1 || v > PW_MAX_REFS || !e->info.refs[v])
      luaL_error(L, "out.%s: citation %d is not a number listed in the protocol's references", fn, (int)i);
    c->v[c->n++] = (uint8_t)v;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

static int script_line(lua_State *L) {
  lua_Debug ar;
  if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "l", &ar)) return ar.currentline > 0 ? ar.currentline : 0;
  return 0;
}

static void trace(pw_engine *e, int line, const char *id, const char *fmt, const char *a, const char *b) {
  if (!e->res.tracing) return;
  pw_note *n = pw_result_add_note(&e->res, PW_NOTE_TRACE);
  char *t = pw_arena_alloc(&e->res.arena, 600);
  if (!n || !t) return;
  snprintf(t, 600, fmt, a, b ? b : "");
  n->text = t;
  n->id = id;
  n->line = line;
}

static void check_live(lua_State *L, pw_engine *e, const char *fn) {
  if (!e->in_eval || e->in_plugin) luaL_error(L, "out.%s may only be called by the protocol during an evaluation", fn);
  luaL_checktype(L, 1, LUA_TTABLE);
}

/* out.recommend{...} and out.consider{...} */
static int build_item(lua_State *L, const char *fn, const char *default_strength) {
  pw_engine *e = engine_of(L);
  pw_item it;
  char why[PW_KNOWLEDGE_MSG];
  pw_kind kind;
  check_live(L, e, fn);
  memset(&it, 0, sizeof it);
  it.id = arg_str(L, e, fn, F_ID, 1);
  if (pw_knowledge_resolve(it.id, &it.agents, &it.action, &kind, why, sizeof why))
    luaL_error(L, "out.%s: %s", fn, why);
  it.kind = pw_knowledge_kind_name(kind);
  it.text = arg_str(L, e, fn, F_TEXT, 1);
  it.rationale = arg_str(L, e, fn, F_RATIONALE, 0);
  it.evidence = arg_str(L, e, fn, F_EVIDENCE, 0);
  it.group = arg_str(L, e, fn, F_GROUP, 0);
  if (it.group && !is_ident(it.group)) luaL_error(L, "out.%s: group '%s' must be [a-z0-9_.-]+", fn, it.group);
  it.strength = arg_str(L, e, fn, F_STRENGTH, 0);
  if (!it.strength) it.strength = default_strength;
  arg_cites(L, e, fn, 1, &it.cites);
  push_field(L, F_PREFERRED);
  it.preferred = lua_rawget(L, 1) == LUA_TBOOLEAN && lua_toboolean(L, -1);
  lua_pop(L, 1);
  push_field(L, F_TARGET);
  if (lua_rawget(L, 1) != LUA_TNIL) {
    int isint;
    lua_Integer t = lua_tointegerx(L, -1, &isint);
    if (!isint || lua_type(L, -1) != LUA_TNUMBER || t < 1 || t > PW_FACTS_MAX_LIST)
      luaL_error(L, "out.%s: target must be the 1-based index of a metastasis", fn);
    it.target = (int)t;
  }
  lua_pop(L, 1);
  push_field(L, F_FACTS);
  if (lua_rawget(L, 1) == LUA_TTABLE) {
    int n = (int)lua_rawlen(L, -1);
    if (n > 16) luaL_error(L, "out.%s: at most 16 fact paths", fn);
    it.facts = pw_arena_alloc(&e->res.arena, sizeof(char *) * (size_t)(n ? n : 1));
    for (int i = 1; i <= n; i++) {
      char buf[8];
      if (lua_rawgeti(L, -1, i) != LUA_TSTRING) luaL_error(L, "out.%s: facts must be a list of fact paths", fn);
      const char *p = lua_tostring(L, -1);
      if (!pw_facts_describe(&e->facts, p, buf, sizeof buf))
        luaL_error(L, "out.%s: '%s' is not a fact path pathwise knows", fn, p);
      it.facts[it.nfacts++] = pw_arena_strdup(&e->res.arena, p, strlen(p));
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  it.line = script_line(L);
  it.source = PW_SRC_PROTOCOL;
  pw_item *slot = pw_result_add_item(&e->res);
  if (!slot) luaL_error(L, "out.%s: out of memory", fn);
  *slot = it;
  if (e->res.tracing) {
    char facts[400];
    size_t k = 0;
    facts[0] = '\0';
    for (int i = 0; i < it.nfacts && k < sizeof facts; i++) {
      char v[96];
      pw_facts_describe(&e->facts, it.facts[i], v, sizeof v);
      k += (size_t)snprintf(facts + k, sizeof facts - k, "%s%s=%s", i ? ", " : "; rests on ", it.facts[i], v);
    }
    trace(e, it.line, NULL, "protocol proposes %s%s", it.id, facts);
  }
  return 0;
}

static int b_recommend(lua_State *L) { return build_item(L, "recommend", "recommended"); }
static int b_consider(lua_State *L) { return build_item(L, "consider", "consider"); }

static int b_missing(lua_State *L) {
  pw_engine *e = engine_of(L);
  check_live(L, e, "missing");
  const char *fact = arg_str(L, e, "missing", F_FACT, 1);
  const char *why = arg_str(L, e, "missing", F_WHY, 1);
  const char *order = arg_str(L, e, "missing", F_ORDER, 0);
  const char *test = arg_str(L, e, "missing", F_TEST, 0);
  pw_cites c;
  char buf[8], err[PW_KNOWLEDGE_MSG];
  arg_cites(L, e, "missing", 0, &c);
  if (!pw_facts_describe(&e->facts, fact, buf, sizeof buf))
    luaL_error(L, "out.missing: '%s' is not a fact path pathwise knows", fact);
  if (order) {
    uint32_t ag;
    int act;
    pw_kind k;
    if (pw_knowledge_resolve(order, &ag, &act, &k, err, sizeof err) || act < 0)
      luaL_error(L, "out.missing: order '%s' is not an action id", order);
  }
  pw_missing *m = pw_result_add_missing(&e->res, fact);
  if (!m) luaL_error(L, "out.missing: out of memory");
  m->why = why;   /* the protocol's words win over the kernel's */
  if (order) m->order = order;
  if (test) m->test = test;
  if (c.n) m->cites = c;
  m->source = PW_SRC_PROTOCOL;
  trace(e, script_line(L), NULL, "protocol reports %s missing%s", fact, "");
  return 0;
}

static int build_note(lua_State *L, int which, const char *fn, int id_required) {
  pw_engine *e = engine_of(L);
  pw_cites c;
  if (!e->in_eval) luaL_error(L, "out.%s may only be called during an evaluation", fn);
  luaL_checktype(L, 1, LUA_TTABLE);
  const char *id = arg_str(L, e, fn, F_ID, id_required);
  const char *text = arg_str(L, e, fn, F_TEXT, 1);
  const char *level = which == PW_NOTE_WARN ? arg_str(L, e, fn, F_LEVEL, 0) : NULL;
  pw_level lv = PW_LEVEL_PATIENT;
  if (level && !strcmp(level, "urgent")) lv = PW_LEVEL_URGENT;
  else if (level && !strcmp(level, "standing")) lv = PW_LEVEL_STANDING;
  else if (level && strcmp(level, "patient"))
    luaL_error(L, "out.%s: level must be \"urgent\", \"patient\" or \"standing\"", fn);
  arg_cites(L, e, fn, which != PW_NOTE_WARN || !e->in_plugin, &c);
  if (id && which == PW_NOTE_FOLLOWUP) {
    uint32_t ag;
    int act;
    pw_kind k;
    char err[PW_KNOWLEDGE_MSG];
    if (pw_knowledge_resolve(id, &ag, &act, &k, err, sizeof err)) luaL_error(L, "out.%s: %s", fn, err);
  } else if (id && !is_ident(id))
    luaL_error(L, "out.%s: id '%s' must be [a-z0-9_.-]+", fn, id);
  pw_note *n = pw_result_add_note(&e->res, which);
  if (!n) luaL_error(L, "out.%s: out of memory", fn);
  n->id = id;
  n->text = text;
  n->cites = c;
  n->line = script_line(L);
  n->level = lv;
  n->source = e->in_plugin ? PW_SRC_PLUGIN : PW_SRC_PROTOCOL;
  return 0;
}

static int b_warn(lua_State *L) { return build_note(L, PW_NOTE_WARN, "warn", 0); }
static int b_followup(lua_State *L) { return build_note(L, PW_NOTE_FOLLOWUP, "followup", 1); }
static int b_outcome(lua_State *L) { return build_note(L, PW_NOTE_OUTCOME, "outcome", 0); }

static int b_note(lua_State *L) {
  pw_engine *e = engine_of(L);
  if (!e->in_eval) luaL_error(L, "out.note may only be called during an evaluation");
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  if (e->res.tracing && n <= MAX_TEXT && pw_utf8_valid(s, n)) {
    pw_note *t = pw_result_add_note(&e->res, PW_NOTE_TRACE);
    if (t) {
      t->text = pw_arena_strdup(&e->res.arena, s, n);
      t->line = script_line(L);
    }
  }
  return 0;
}

static int b_pathway(lua_State *L) {
  pw_engine *e = engine_of(L);
  if (!e->in_eval || e->in_plugin) luaL_error(L, "out.pathway may only be called by the protocol during an evaluation");
  size_t n;
  const char *name = luaL_checklstring(L, 1, &n);
  if (n > 64 || !is_ident(name)) luaL_error(L, "out.pathway: name must be [a-z0-9_.-]+ (64 bytes at most)");
  e->res.pathway = pw_arena_strdup(&e->res.arena, name, n);
  e->res.pathway_rationale = NULL;
  memset(&e->res.pathway_cites, 0, sizeof e->res.pathway_cites);
  if (lua_istable(L, 2)) {
    lua_settop(L, 2);
    lua_remove(L, 1);   /* the options table becomes argument 1 */
    e->res.pathway_rationale = arg_str(L, e, "pathway", F_RATIONALE, 0);
    arg_cites(L, e, "pathway", 0, &e->res.pathway_cites);
  }
  trace(e, script_line(L), NULL, "pathway set to %s%s", e->res.pathway, "");
  return 0;
}

/* ---- plugin builder: block or warn, nothing else ---- */

static int p_block(lua_State *L) {
  pw_engine *e = engine_of(L);
  pw_cites c;
  char rule[160];
  if (!e->in_plugin) luaL_error(L, "out.block may only be called by a plugin during an evaluation");
  luaL_checktype(L, 1, LUA_TTABLE);
  const char *id = arg_str(L, e, "block", F_ID, 1);
  const char *r = arg_str(L, e, "block", F_RULE, 1);
  const char *reason = arg_str(L, e, "block", F_REASON, 1);
  if (!is_ident(r)) luaL_error(L, "out.block: rule '%s' must be [a-z0-9_.-]+", r);
  arg_cites(L, e, "block", 0, &c);
  snprintf(rule, sizeof rule, "%s/%s", e->cur_plugin->id, r);
  for (int i = 0; i < e->res.items.n; i++) {
    pw_item *it = &e->res.items.v[i];
    if (it->blocked || strcmp(it->id, id)) continue;
    it->blocked = 1;
    it->rule = pw_arena_strdup(&e->res.arena, rule, strlen(rule));
    it->reason = reason;
    it->rule_cites = c;
    trace(e, script_line(L), it->rule, "plugin rule %s blocked %s", it->rule, id);
  }
  return 0;
}

static int p_refuse(lua_State *L) {   /* __index (2 arguments) or __newindex (3) */
  const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "?";
  if (lua_gettop(L) >= 3) return luaL_error(L, "plugins may only tighten: out is read-only (tried to set out.%s)", k);
  return luaL_error(L, "plugins may only tighten: out.%s is not available (use out.block or out.warn)", k);
}

static int p_items_refuse(lua_State *L) {
  return luaL_error(L, "plugins may only tighten: the item list is read-only (use out.block to block an item)");
}

static int b_refuse(lua_State *L) {
  const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "?";
  return luaL_error(L, "out.%s does not exist (see scripts/README.md for the builder)", k);
}

/* A read-only proxy around the table of functions at the top. */
static int push_builder(lua_State *L, pw_engine *e, const luaL_Reg *fns, lua_CFunction missing) {
  lua_newtable(L);                          /* proxy */
  lua_newtable(L);                          /* metatable */
  lua_newtable(L);                          /* functions */
  lua_pushlightuserdata(L, e);
  for (int i = 0; i < NFIELDS; i++) lua_pushstring(L, field_names[i]);
  luaL_setfuncs(L, fns, 1 + NFIELDS);
  lua_newtable(L);                          /* functions' own metatable: unknown names */
  lua_pushcfunction(L, missing);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, -2);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, missing);
  lua_setfield(L, -2, "__newindex");
  lua_pushliteral(L, "locked");
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
  return luaL_ref(L, LUA_REGISTRYINDEX);
}

/* ---- engine life ---- */

static int engine_setup(lua_State *L) {
  pw_engine *e = lua_touserdata(L, 1);
  static const luaL_Reg out_fns[] = {
    {"recommend", b_recommend}, {"consider", b_consider}, {"missing", b_missing},
    {"warn", b_warn}, {"followup", b_followup}, {"outcome", b_outcome},
    {"note", b_note}, {"pathway", b_pathway}, {NULL, NULL}};
  static const luaL_Reg pout_fns[] = {
    {"block", p_block}, {"warn", b_warn}, {"note", b_note}, {NULL, NULL}};
  pw_facts_open(L);
  e->out_ref = push_builder(L, e, out_fns, b_refuse);
  e->pout_ref = push_builder(L, e, pout_fns, p_refuse);
  /* A private cjson instance, strict on numbers, for the host only. */
  lua_getglobal(L, "cjson");
  lua_getfield(L, -1, "new");
  lua_call(L, 0, 1);
  lua_getfield(L, -1, "decode_invalid_numbers");
  lua_pushboolean(L, 0);
  lua_call(L, 1, 0);
  lua_getfield(L, -1, "decode_max_depth");
  lua_pushinteger(L, 64);
  lua_call(L, 1, 0);
  lua_getfield(L, -1, "decode");
  e->decode_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

pw_engine *pw_engine_new(const pw_limits *lim, pw_error *err) {
  char msg[256];
  pw_engine *e = calloc(1, sizeof *e);
  if (!e) { fail(err, PW_EMEMORY, "out of memory%s%s", "", ""); return NULL; }
  if (lim) e->lim = *lim;
  if (!e->lim.memory) e->lim.memory = DEFAULT_MEMORY;
  if (!e->lim.instructions) e->lim.instructions = DEFAULT_INSTRUCTIONS;
  if (!e->lim.max_input) e->lim.max_input = DEFAULT_MAX_INPUT;
  if (pw_sandbox_init(&e->sb, e->lim.memory, msg, sizeof msg)) {
    fail(err, PW_EMEMORY, "%s%s", msg, "");
    free(e);
    return NULL;
  }
  lua_State *L = e->sb.L;
  lua_pushcfunction(L, engine_setup);
  lua_pushlightuserdata(L, e);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    fail(err, PW_EINTERNAL, "cannot set up the engine: %s%s",
         lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "error", "");
    pw_sandbox_close(&e->sb);
    free(e);
    return NULL;
  }
  e->proto_ref = e->applies_ref = e->evaluate_ref = LUA_NOREF;
  pw_result_reset(&e->res);
  return e;
}

static void info_free(pw_protocol_info *p) {
  free(p->id); free(p->version); free(p->title);
  for (int i = 0; i <= PW_MAX_REFS; i++) free(p->refs[i]);
  memset(p, 0, sizeof *p);
}

void pw_engine_free(pw_engine *e) {
  if (!e) return;
  pw_sandbox_close(&e->sb);
  info_free(&e->info);
  for (int i = 0; i < e->nplugins; i++) { free(e->plugins[i].id); free(e->plugins[i].name); }
  pw_result_free(&e->res);
  pw_buf_free(&e->scratch);
  free(e->path);
  free(e);
}

lua_State *pw_engine_lua(pw_engine *e) { return e->sb.L; }
const pw_result *pw_engine_result(const pw_engine *e) { return &e->res; }
const char *pw_status_name(pw_status s) {
  switch (s) {
  case PW_OK: return "ok";
  case PW_EINPUT: return "input";
  case PW_EPROTOCOL: return "protocol";
  case PW_EBUDGET: return "budget";
  case PW_EMEMORY: return "memory";
  case PW_EIO: return "io";
  default: return "internal";
  }
}

const char *pw_engine_protocol_id(const pw_engine *e) { return e->info.id; }
const char *pw_engine_protocol_version(const pw_engine *e) { return e->info.version; }
const char *pw_engine_protocol_title(const pw_engine *e) { return e->info.title; }
const char *pw_engine_protocol_sha256(const pw_engine *e) { return e->loaded ? e->info.sha256 : NULL; }
void pw_engine_protocol_json(const pw_engine *e, pw_buf *out) { pw_protocol_info_json(&e->info, out); }

static char *read_file(const char *path, size_t *len, pw_error *err) {
  FILE *f = fopen(path, "rb");
  if (!f) { fail(err, PW_EIO, "cannot open %s: %s", path, strerror(errno)); return NULL; }
  pw_buf b = {0};
  char chunk[8192];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
    pw_buf_add(&b, chunk, n);
    if (b.len > (16u << 20)) { fclose(f); pw_buf_free(&b); fail(err, PW_EIO, "%s: larger than 16 MiB%s", path, ""); return NULL; }
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) { pw_buf_free(&b); fail(err, PW_EIO, "cannot read %s%s", path, ""); return NULL; }
  if (!b.data) pw_buf_add(&b, "", 0);
  *len = b.len;
  return b.data;
}

/* Raw string field of the table at idx, copied with malloc. */
static int table_str(lua_State *L, int idx, const char *k, char **out) {
  lua_pushstring(L, k);
  int t = lua_rawget(L, idx);
  if (t == LUA_TSTRING) {
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    if (n > 0 && n <= 256 && pw_utf8_valid(s, n) && strlen(s) == n) *out = strdup(s);
  }
  lua_pop(L, 1);
  return *out ? 0 : -1;
}

static int table_fn(lua_State *L, int idx, const char *k) {
  lua_pushstring(L, k);
  if (lua_rawget(L, idx) != LUA_TFUNCTION) { lua_pop(L, 1); return LUA_NOREF; }
  return luaL_ref(L, LUA_REGISTRYINDEX);
}

static pw_status check_protocol_table(pw_engine *e, const char *name, pw_protocol_info *p, pw_error *err) {
  lua_State *L = e->sb.L;
  int t = lua_gettop(L);
  if (!lua_istable(L, t)) return fail(err, PW_EPROTOCOL, "%s: the file must return a protocol table%s", name, "");
  if (table_str(L, t, "id", &p->id) || !is_ident(p->id))
    return fail(err, PW_EPROTOCOL, "%s: protocol field 'id' must be a string of [a-z0-9_.-]%s", name, "");
  if (table_str(L, t, "version", &p->version))
    return fail(err, PW_EPROTOCOL, "%s: protocol field 'version' must be a non-empty string%s", name, "");
  if (table_str(L, t, "title", &p->title))
    return fail(err, PW_EPROTOCOL, "%s: protocol field 'title' must be a non-empty string%s", name, "");
  lua_pushliteral(L, "references");
  if (lua_rawget(L, t) != LUA_TTABLE) {
    lua_pop(L, 1);
    return fail(err, PW_EPROTOCOL, "%s: protocol field 'references' must be a table {[n] = text}%s", name, "");
  }
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    int isint;
    lua_Integer n = lua_tointegerx(L, -2, &isint);
    if (lua_type(L, -2) != LUA_TNUMBER || !isint || n < 1 || n > PW_MAX_REFS || lua_type(L, -1) != LUA_TSTRING) {
      lua_pop(L, 3);
      return fail(err, PW_EPROTOCOL, "%s: references must map numbers 1..32 to text%s", name, "");
    }
    free(p->refs[n]);
    p->refs[n] = strdup(lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  lua_pushliteral(L, "applies");
  int ta = lua_rawget(L, t);
  lua_pushliteral(L, "evaluate");
  int te = lua_rawget(L, t);
  lua_pop(L, 2);
  if (ta != LUA_TFUNCTION) return fail(err, PW_EPROTOCOL, "%s: protocol field 'applies' must be a function%s", name, "");
  if (te != LUA_TFUNCTION) return fail(err, PW_EPROTOCOL, "%s: protocol field 'evaluate' must be a function%s", name, "");
  return PW_OK;
}

pw_status pw_engine_load_buffer(pw_engine *e, const char *name, const char *src, size_t len, pw_error *err) {
  lua_State *L = e->sb.L;
  char msg[480];
  pw_protocol_info p;
  memset(&p, 0, sizeof p);
  int rc = pw_sandbox_load(&e->sb, name, src, len, msg, sizeof msg);
  if (rc != PW_OK) return fail(err, (pw_status)rc, "%s%s", msg, "");
  e->in_eval = 0;
  rc = pw_sandbox_pcall(&e->sb, 0, 1, e->lim.instructions, msg, sizeof msg);
  if (rc != PW_OK) return fail(err, (pw_status)rc, "%s%s", msg, "");
  rc = check_protocol_table(e, name, &p, err);
  if (rc != PW_OK) { lua_pop(L, 1); info_free(&p); return (pw_status)rc; }
  pw_sha256_hex(src, len, p.sha256);
  /* commit: replace the old protocol */
  luaL_unref(L, LUA_REGISTRYINDEX, e->applies_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, e->evaluate_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, e->proto_ref);
  int t = lua_gettop(L);
  e->applies_ref = table_fn(L, t, "applies");
  e->evaluate_ref = table_fn(L, t, "evaluate");
  e->proto_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  info_free(&e->info);
  e->info = p;
  e->loaded = 1;
  return PW_OK;
}

pw_status pw_engine_load(pw_engine *e, const char *path, pw_error *err) {
  size_t len;
  char *src = read_file(path, &len, err);
  if (!src) return PW_EIO;
  pw_status rc = pw_engine_load_buffer(e, path, src, len, err);
  free(src);
  if (rc == PW_OK) { free(e->path); e->path = strdup(path); }
  return rc;
}

pw_status pw_engine_add_plugin(pw_engine *e, const char *path, pw_error *err) {
  lua_State *L = e->sb.L;
  char msg[480];
  size_t len;
  if (e->nplugins == MAX_PLUGINS) return fail(err, PW_EPROTOCOL, "%s: at most 8 plugins%s", path, "");
  char *src = read_file(path, &len, err);
  if (!src) return PW_EIO;
  int rc = pw_sandbox_load(&e->sb, path, src, len, msg, sizeof msg);
  free(src);
  if (rc == PW_OK) rc = pw_sandbox_pcall(&e->sb, 0, 1, e->lim.instructions, msg, sizeof msg);
  if (rc != PW_OK) return fail(err, (pw_status)rc, "%s%s", msg, "");
  plugin *pl = &e->plugins[e->nplugins];
  memset(pl, 0, sizeof *pl);
  if (!lua_istable(L, -1) || table_str(L, lua_gettop(L), "id", &pl->id) || !is_ident(pl->id)) {
    lua_pop(L, 1);
    free(pl->id);
    return fail(err, PW_EPROTOCOL, "%s: a plugin returns a table with an 'id' of [a-z0-9_.-]%s", path, "");
  }
  pl->check_ref = table_fn(L, lua_gettop(L), "check");
  lua_pop(L, 1);
  if (pl->check_ref == LUA_NOREF) {
    free(pl->id);
    return fail(err, PW_EPROTOCOL, "%s: plugin field 'check' must be a function(facts, items, out)%s", path, "");
  }
  pl->name = strdup(path);
  e->nplugins++;
  return PW_OK;
}

/* ---- evaluation ---- */

pw_status pw_engine_decode(pw_engine *e, const char *json, size_t len, pw_gate_info *info, pw_error *err) {
  char msg[300];
  pw_gate_limits gl = {e->lim.max_input, 0, 0};   /* the gate's default depth and width */
  if (pw_gate_check(json, len, &gl, info, msg, sizeof msg))
    return fail(err, PW_EINPUT, "%s%s", msg, "");
  lua_State *L = e->sb.L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, e->decode_ref);
  lua_pushlstring(L, json, len);
  e->sb.mem_tainted = 0;
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    snprintf(msg, sizeof msg, "invalid JSON: %s", lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?");
    lua_pop(L, 1);
    return fail(err, e->sb.mem_tainted ? PW_EMEMORY : PW_EINPUT, "%s%s", msg, "");
  }
  return PW_OK;
}

/* Build a read-only list of the current items for plugins. */
static void push_items(lua_State *L, const pw_result *r) {
  lua_createtable(L, r->items.n, 0);
  for (int i = 0; i < r->items.n; i++) {
    const pw_item *it = &r->items.v[i];
    lua_createtable(L, 0, 6);
    lua_pushstring(L, it->id);
    lua_setfield(L, -2, "id");
    lua_pushboolean(L, it->blocked);
    lua_setfield(L, -2, "blocked");
    lua_pushstring(L, it->source == PW_SRC_ORDER ? "proposed_order" : "protocol");
    lua_setfield(L, -2, "source");
    if (it->strength) { lua_pushstring(L, it->strength); lua_setfield(L, -2, "strength"); }
    if (it->group) { lua_pushstring(L, it->group); lua_setfield(L, -2, "group"); }
    lua_createtable(L, 4, 0);
    for (int a = 0, k = 0; a < PW_AG_COUNT; a++)
      if (it->agents & PW_AGENT_BIT(a)) { lua_pushstring(L, pw_knowledge_agent(a)->id); lua_rawseti(L, -2, ++k); }
    lua_setfield(L, -2, "agents");
    lua_rawseti(L, -2, i + 1);
  }
}

static int seal(lua_State *L) {   /* make a table tree read-only, recursively */
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    if (lua_istable(L, -1)) {
      lua_pushcfunction(L, seal);
      lua_pushvalue(L, -2);
      lua_call(L, 1, 1);
      lua_pushvalue(L, -3);
      lua_insert(L, -2);
      lua_rawset(L, 1);   /* replacing an existing key's value is safe in lua_next */
    }
    lua_pop(L, 1);
  }
  lua_settop(L, 1);
  pw_sandbox_readonly(L);
  lua_getmetatable(L, -1);   /* say why, in plugin terms */
  lua_pushcfunction(L, p_items_refuse);
  lua_setfield(L, -2, "__newindex");
  lua_pop(L, 1);
  return 1;
}

static pw_status run_plugins(pw_engine *e, uint64_t *left, pw_error *err) {
  lua_State *L = e->sb.L;
  char msg[480];
  for (int i = 0; i < e->nplugins; i++) {
    e->cur_plugin = &e->plugins[i];
    lua_rawgeti(L, LUA_REGISTRYINDEX, e->plugins[i].check_ref);
    pw_facts_push_view(L, &e->facts, &e->gen);
    lua_pushcfunction(L, seal);
    push_items(L, &e->res);
    lua_call(L, 1, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, e->pout_ref);
    e->in_plugin = 1;
    int rc = pw_sandbox_pcall(&e->sb, 3, 0, *left, msg, sizeof msg);
    e->in_plugin = 0;
    *left -= e->sb.spent < *left ? e->sb.spent : *left;
    if (rc != PW_OK)
      return fail(err, (pw_status)rc, "plugin %s: %s", e->plugins[i].id, msg);
  }
  return PW_OK;
}

static pw_status run_protocol(pw_engine *e, uint64_t *left, pw_error *err) {
  lua_State *L = e->sb.L;
  char msg[480];
  lua_rawgeti(L, LUA_REGISTRYINDEX, e->applies_ref);
  pw_facts_push_view(L, &e->facts, &e->gen);
  lua_rawgeti(L, LUA_REGISTRYINDEX, e->out_ref);
  int rc = pw_sandbox_pcall(&e->sb, 2, 2, *left, msg, sizeof msg);
  *left -= e->sb.spent < *left ? e->sb.spent : *left;
  if (rc != PW_OK) return fail(err, (pw_status)rc, "applies: %s%s", msg, "");
  int t1 = lua_type(L, -2), t2 = lua_type(L, -1);
  if ((t1 != LUA_TBOOLEAN && t1 != LUA_TNIL) || (t2 != LUA_TSTRING && t2 != LUA_TNIL)) {
    lua_pop(L, 2);
    return fail(err, PW_EPROTOCOL, "%s: applies must return true, false or nil, and optionally a reason string%s",
                e->info.id, "");
  }
  e->res.applicable = t1 == LUA_TNIL ? -1 : lua_toboolean(L, -2);
  if (t2 == LUA_TSTRING) {
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    if (n <= MAX_TEXT && pw_utf8_valid(s, n)) e->res.applicability = pw_arena_strdup(&e->res.arena, s, n);
  }
  lua_pop(L, 2);
  trace(e, 0, NULL, "applies returned %s%s", e->res.applicable < 0 ? "nil (cannot tell)" : e->res.applicable ? "true" : "false", "");
  if (e->res.applicable != 1) return PW_OK;
  lua_rawgeti(L, LUA_REGISTRYINDEX, e->evaluate_ref);
  pw_facts_push_view(L, &e->facts, &e->gen);
  lua_rawgeti(L, LUA_REGISTRYINDEX, e->out_ref);
  rc = pw_sandbox_pcall(&e->sb, 2, 0, *left, msg, sizeof msg);
  *left -= e->sb.spent < *left ? e->sb.spent : *left;
  if (rc != PW_OK) return fail(err, (pw_status)rc, "evaluate: %s%s", msg, "");
  return PW_OK;
}

static void add_orders(pw_engine *e) {
  for (int i = 0; i < e->facts.norders; i++) {
    const pw_order_fact *o = &e->facts.orders[i];
    pw_item *it = pw_result_add_item(&e->res);
    if (!it) return;
    it->id = o->id;
    it->agents = o->agents;
    it->action = o->action;
    it->kind = pw_knowledge_kind_name((pw_kind)o->kind);
    it->source = PW_SRC_ORDER;
    it->strength = "proposed";
  }
}

static void add_unknown_fields(pw_engine *e) {
  for (int i = 0; i < e->facts.nunknown; i++) {
    pw_note *n = pw_result_add_note(&e->res, PW_NOTE_WARN);
    char *t = pw_arena_alloc(&e->res.arena, 300);
    if (!n || !t) return;
    snprintf(t, 300, "unknown field '%s' was ignored: check its spelling", e->facts.unknown[i]);
    n->id = "unknown_field";
    n->text = t;
    n->source = PW_SRC_ENGINE;
  }
}

static pw_status evaluate(pw_engine *e, int facts_idx, int orders_idx, unsigned flags, pw_error *err) {
  lua_State *L = e->sb.L;
  char msg[480];
  uint64_t left = e->lim.instructions;
  pw_result_reset(&e->res);
  e->res.tracing = (flags & PW_EVAL_TRACE) != 0;
  if (!e->loaded && !(flags & PW_EVAL_ORDERS_ONLY))
    return fail(err, PW_EPROTOCOL, "no protocol loaded%s%s", "", "");
  facts_idx = lua_absindex(L, facts_idx);
  if (orders_idx) orders_idx = lua_absindex(L, orders_idx);
  if (pw_facts_from_lua(L, facts_idx, &e->facts, &e->res.arena, msg, sizeof msg))
    return fail(err, PW_EINPUT, "%s%s", msg, "");
  if (orders_idx && pw_facts_orders_from_lua(L, orders_idx, &e->facts, &e->res.arena, msg, sizeof msg))
    return fail(err, PW_EINPUT, "%s%s", msg, "");
  e->res.patient_id = e->facts.patient_id;
  add_unknown_fields(e);
  pw_status rc = PW_OK;
  e->in_eval = 1;
  if (!(flags & PW_EVAL_ORDERS_ONLY)) rc = run_protocol(e, &left, err);
  else e->res.applicable = -1;
  if (rc == PW_OK) {
    add_orders(e);
    pw_safety_apply(&e->facts, &e->res);
    rc = run_plugins(e, &left, err);
  }
  e->in_eval = 0;
  e->gen++;   /* views handed to scripts die here */
  if (rc != PW_OK) return rc;
  pw_buf_reset(&e->scratch);
  pw_facts_canonical(&e->facts, &e->scratch);
  pw_sha256_hex(e->scratch.data, e->scratch.len, e->res.facts_sha256);
  return PW_OK;
}

pw_status pw_engine_eval_table(pw_engine *e, int facts_idx, int orders_idx, unsigned flags,
                               pw_buf *out, pw_error *err) {
  pw_status rc = evaluate(e, facts_idx, orders_idx, flags, err);
  if (rc == PW_OK && out) pw_result_json(&e->res, &e->info, out);
  return rc;
}

pw_status pw_engine_eval(pw_engine *e, const char *json, size_t len, unsigned flags, pw_buf *out, pw_error *err) {
  lua_State *L = e->sb.L;
  int top = lua_gettop(L);
  pw_status rc = pw_engine_decode(e, json, len, NULL, err);
  if (rc == PW_OK) rc = pw_engine_eval_table(e, -1, 0, flags, out, err);
  lua_settop(L, top);
  return rc;
}

void pw_engine_render_text(const pw_engine *e, pw_buf *out) { pw_result_text(&e->res, &e->info, out); }

/* ---- example cases declared by the protocol ---- */

static int has_item(const pw_result *r, const char *id, int blocked) {
  for (int i = 0; i < r->items.n; i++) {
    const pw_item *it = &r->items.v[i];
    if (!strcmp(it->id, id) && it->blocked == blocked && (blocked || it->source == PW_SRC_PROTOCOL)) return 1;
  }
  return 0;
}

static int has_missing(const pw_result *r, const char *fact) {
  for (int i = 0; i < r->missing.n; i++)
    if (!strcmp(r->missing.v[i].fact, fact)) return 1;
  return 0;
}

/* Check expect.<key> (a list of ids) against the result; returns failures. */
static int expect_list(pw_engine *e, int expect, const char *key, pw_buf *out, const char *name) {
  lua_State *L = e->sb.L;
  int fails = 0;
  lua_pushstring(L, key);
  if (lua_rawget(L, expect) == LUA_TTABLE) {
    int n = (int)lua_rawlen(L, -1);
    for (int i = 1; i <= n; i++) {
      if (lua_rawgeti(L, -1, i) == LUA_TSTRING) {
        const char *id = lua_tostring(L, -1);
        int ok = !strcmp(key, "recommend") ? has_item(&e->res, id, 0)
               : !strcmp(key, "not_recommend") ? !has_item(&e->res, id, 0)
               : !strcmp(key, "blocked") ? has_item(&e->res, id, 1)
               : has_missing(&e->res, id);
        if (!ok) {
          pw_buf_addf(out, "FAIL %s: expect.%s '%s' does not hold\n", name, key, id);
          fails++;
        }
      }
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  return fails;
}

static int check_one(pw_engine *e, int ex, pw_buf *out, int index) {
  lua_State *L = e->sb.L;
  pw_error err;
  char name[128];
  int fails = 0;
  lua_pushliteral(L, "name");
  if (lua_rawget(L, ex) == LUA_TSTRING) snprintf(name, sizeof name, "%s", lua_tostring(L, -1));
  else snprintf(name, sizeof name, "example %d", index);
  lua_pop(L, 1);
  lua_pushliteral(L, "facts");
  lua_rawget(L, ex);
  pw_status rc = evaluate(e, -1, 0, 0, &err);
  lua_pop(L, 1);
  if (rc != PW_OK) {
    pw_buf_addf(out, "FAIL %s: %s\n", name, err.msg);
    return 1;
  }
  lua_pushliteral(L, "expect");
  if (lua_rawget(L, ex) == LUA_TTABLE) {
    int expect = lua_gettop(L);
    lua_pushliteral(L, "pathway");
    if (lua_rawget(L, expect) == LUA_TSTRING) {
      const char *want = lua_tostring(L, -1);
      if (!e->res.pathway || strcmp(want, e->res.pathway)) {
        pw_buf_addf(out, "FAIL %s: expected pathway %s, got %s\n", name, want, e->res.pathway ? e->res.pathway : "none");
        fails++;
      }
    }
    lua_pop(L, 1);
    lua_pushliteral(L, "applicable");
    int t = lua_rawget(L, expect);
    if (t == LUA_TBOOLEAN && lua_toboolean(L, -1) != (e->res.applicable == 1)) {
      pw_buf_addf(out, "FAIL %s: expected applicable %s\n", name, lua_toboolean(L, -1) ? "true" : "false");
      fails++;
    }
    lua_pop(L, 1);
    fails += expect_list(e, expect, "recommend", out, name);
    fails += expect_list(e, expect, "not_recommend", out, name);
    fails += expect_list(e, expect, "blocked", out, name);
    fails += expect_list(e, expect, "missing", out, name);
  }
  lua_pop(L, 1);
  if (!fails) pw_buf_addf(out, "ok   %s\n", name);
  return fails ? 1 : 0;
}

pw_status pw_engine_check_examples(pw_engine *e, pw_buf *out, pw_error *err) {
  lua_State *L = e->sb.L;
  if (!e->loaded) return fail(err, PW_EPROTOCOL, "no protocol loaded%s%s", "", "");
  int top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, e->proto_ref);
  lua_pushliteral(L, "examples");
  int t = lua_rawget(L, -2);
  int n = t == LUA_TTABLE ? (int)lua_rawlen(L, -1) : 0, failed = 0;
  for (int i = 1; i <= n; i++) {
    if (lua_rawgeti(L, -1, i) != LUA_TTABLE) {
      pw_buf_addf(out, "FAIL example %d: not a table\n", i);
      failed++;
    } else failed += check_one(e, lua_gettop(L), out, i);
    lua_pop(L, 1);
  }
  lua_settop(L, top);
  pw_buf_addf(out, "%d examples, %d passed, %d failed\n", n, n - failed, failed);
  if (n == 0) return fail(err, PW_EPROTOCOL, "%s declares no example cases%s", e->info.id, "");
  if (failed) {
    if (err) { err->code = PW_EPROTOCOL; snprintf(err->msg, sizeof err->msg, "%d of %d example cases failed", failed, n); }
    return PW_EPROTOCOL;
  }
  return PW_OK;
}

/* ---- the rule table, for people and programs ---- */

void pw_rules_json(pw_buf *out) {
  pw_buf_adds(out, "[");
  for (int i = 0; i < pw_safety_count(); i++) {
    const pw_rule_info *r = pw_safety_rule(i);
    pw_buf_adds(out, i ? ",{\"id\":" : "{\"id\":");
    pw_buf_json_str(out, r->id);
    pw_buf_adds(out, ",\"statement\":");
    pw_buf_json_str(out, r->statement);
    pw_buf_adds(out, ",\"applies_to\":");
    pw_buf_json_str(out, r->applies_to);
    pw_buf_adds(out, ",\"citations\":[");
    for (int c = 0; c < r->cites.n; c++) pw_buf_addf(out, c ? ",%d" : "%d", r->cites.v[c]);
    pw_buf_adds(out, "],\"guideline\":");
    pw_buf_json_str(out, r->guideline);
    pw_buf_adds(out, ",\"beyond_guideline\":");
    pw_buf_json_str(out, r->beyond);
    pw_buf_adds(out, "}");
  }
  pw_buf_adds(out, "]");
}

void pw_rules_text(pw_buf *out) {
  for (int i = 0; i < pw_safety_count(); i++) {
    const pw_rule_info *r = pw_safety_rule(i);
    pw_buf_addf(out, "%-36s [", r->id);
    for (int c = 0; c < r->cites.n; c++) pw_buf_addf(out, c ? ", %d" : "%d", r->cites.v[c]);
    if (r->beyond) pw_buf_adds(out, "beyond the guideline");
    pw_buf_addf(out, "]\n    %s\n    applies to: %s\n", r->statement, r->applies_to);
    if (r->guideline) pw_buf_addf(out, "    guideline: \"%s\"\n", r->guideline);
    if (r->beyond) pw_buf_addf(out, "    source (beyond the guideline): %s\n", r->beyond);
  }
}

/* ---- coverage ---- */

const char *pw_engine_protocol_path(const pw_engine *e) { return e->path; }

pw_status pw_engine_coverage_start(pw_engine *e, pw_error *err) {
  if (!e->loaded || !e->path) return fail(err, PW_EPROTOCOL, "coverage needs a protocol loaded from a file%s%s", "", "");
  size_t len;
  char *src = read_file(e->path, &len, err);
  if (!src) return PW_EIO;
  int lines = 1;
  for (size_t i = 0; i < len; i++) lines += src[i] == '\n';
  free(src);
  if (pw_sandbox_coverage(&e->sb, e->path, lines)) return fail(err, PW_EMEMORY, "out of memory%s%s", "", "");
  return PW_OK;
}

const uint32_t *pw_engine_coverage_counts(const pw_engine *e, int *n) {
  *n = e->sb.cov_n;
  return e->sb.cov_counts;
}

/* Mark active lines of the function at the top, then of its function
** upvalues and of functions in table fields (visited set at index seen). */
static void mark_active(lua_State *L, int seen, unsigned char *active, int n, int depth) {
  lua_pushvalue(L, -1);
  if (depth > 32 || lua_rawget(L, seen) != LUA_TNIL) { lua_pop(L, 1); return; }
  lua_pop(L, 1);
  lua_pushvalue(L, -1);
  lua_pushboolean(L, 1);
  lua_rawset(L, seen);
  if (lua_type(L, -1) == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      if (lua_type(L, -1) == LUA_TFUNCTION || lua_type(L, -1) == LUA_TTABLE) mark_active(L, seen, active, n, depth + 1);
      lua_pop(L, 1);
    }
    return;
  }
  if (lua_type(L, -1) != LUA_TFUNCTION || lua_iscfunction(L, -1)) return;
  lua_Debug ar;
  lua_pushvalue(L, -1);
  if (lua_getinfo(L, ">SL", &ar) && lua_istable(L, -1)) {   /* pushes activelines */
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      lua_Integer line = lua_tointeger(L, -2);
      if (line > 0 && line < n) active[line] = 1;
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  for (int i = 1; lua_getupvalue(L, -1, i); i++) {
    if (lua_type(L, -1) == LUA_TFUNCTION || lua_type(L, -1) == LUA_TTABLE) mark_active(L, seen, active, n, depth + 1);
    lua_pop(L, 1);
  }
}

void pw_engine_coverage_active(pw_engine *e, unsigned char *active, int n) {
  lua_State *L = e->sb.L;
  memset(active, 0, (size_t)n);
  if (!e->loaded || !lua_checkstack(L, 200)) return;
  int top = lua_gettop(L);
  lua_newtable(L);
  int seen = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, e->proto_ref);
  mark_active(L, seen, active, n, 0);
  lua_settop(L, top);
}
