/*
** builder.c: what protocol and plugin scripts can call and see: the `out`
** builder (recommend, consider, missing, warn, followup, outcome, note,
** pathway), the plugins' `out` (block, warn, note) and the sealed item
** list plugins read. Every argument is read with raw access, checked (ids
** against the knowledge tables, fact paths against the facts model,
** citations against the protocol's references) and copied into the
** result's arena; a bad argument raises a Lua error naming the field.
*/
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "error.h"
#include "knowledge.h"
#include "runtime.h"

/* The host refused memory: the evaluation fails as out of memory, not as
** a protocol error. */
static void oom(lua_State *L, const char *fn) {
  char what[64];
  snprintf(what, sizeof what, "out.%s", fn);
  pw_sandbox_raise_oom(L, what);
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
_Static_assert(NFIELDS <= sizeof ((pw_engine *)0)->field_text / sizeof(const char *),
               "pw_engine.field_text (runtime.h) holds every field name");
static const char *const field_names[NFIELDS] = {
  "id", "text", "rationale", "evidence", "group", "strength", "citations", "preferred",
  "target", "facts", "fact", "why", "order", "test", "rule", "reason", "level"};

static void push_field(lua_State *L, int f) {
  lua_pushvalue(L, lua_upvalueindex(2 + f));
}

/* The bounds on a protocol's output: text in all, entries per list. */
static void count_text(lua_State *L, pw_engine *e, const char *fn, const char *k, size_t n) {
  e->res.text_bytes += n;
  if (e->res.text_bytes > PW_MAX_OUTPUT_TEXT)
    luaL_error(L, "out.%s: field '%s': the output passed %d bytes of text in all (the bound of one evaluation)",
               fn, k, (int)PW_MAX_OUTPUT_TEXT);
}

static void count_entry(lua_State *L, const char *fn, int n, const char *what) {
  if (n >= PW_MAX_OUTPUT_ITEMS)
    luaL_error(L, "out.%s: more than %d %s in one evaluation (a protocol's output is bounded)", fn,
               PW_MAX_OUTPUT_ITEMS, what);
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
  if (n > PW_MAX_TEXT) luaL_error(L, "out.%s: field '%s' is longer than %d bytes", fn, k, PW_MAX_TEXT);
  if (strlen(s) != n || !pw_utf8_valid(s, n)) luaL_error(L, "out.%s: field '%s' is not valid UTF-8 text", fn, k);
  count_text(L, e, fn, k, n);
  char *c = pw_arena_strdup(&e->res.arena, s, n);
  lua_pop(L, 1);
  if (!c) oom(L, fn);
  return c;
}

int pw_builder_ident(const char *s) {
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
    if (!isnum || lua_type(L, -1) != LUA_TNUMBER) {
      int ty = lua_type(L, -1);
      char shown[64];
      if (ty == LUA_TSTRING) snprintf(shown, sizeof shown, "'%.40s'", lua_tostring(L, -1));
      else if (ty == LUA_TNUMBER) snprintf(shown, sizeof shown, "%g", (double)lua_tonumber(L, -1));
      else snprintf(shown, sizeof shown, "(a %s)", lua_typename(L, ty));
      luaL_error(L, "out.%s: citation %s (citations[%d]) is not a reference number", fn, shown, (int)i);
    }
    if (v < 1 || v > PW_MAX_REFS || !e->info.refs[v])
      luaL_error(L, "out.%s: citation %d is not a number listed in the protocol's references "
                 "(a plugin or extension adds its own in 'references')", fn, (int)v);
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

void pw_builder_trace(pw_engine *e, int line, const char *id, const char *fmt, const char *a, const char *b) {
  if (!e->res.tracing) return;
  pw_note *n = pw_result_add_note(&e->res, PW_NOTE_TRACE);
  char *t = pw_arena_alloc(&e->res.arena, 600);
  if (!n || !t) return;
  snprintf(t, 600, fmt, a, b ? b : "");
  n->text = t;
  n->id = id;
  n->line = line;
}

#define FB(f) (1u << (f))

/* Refuse a field the builder does not read (`rationle =`): a typo would
** otherwise drop the text silently. allowed is a set of FB(F_...). The
** names are short strings, so Lua interns them: a key equal to one is the
** very string held as an upvalue, and comparing the text pointers
** (e->field_text, kept alive by those upvalues) is comparing the strings. */
static void check_fields(lua_State *L, const pw_engine *e, const char *fn, unsigned allowed) {
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    lua_pop(L, 1);
    int ok = 0;
    if (lua_type(L, -1) == LUA_TSTRING) {   /* a string key: lua_tostring converts nothing */
      const char *k = lua_tostring(L, -1);
      for (unsigned m = allowed; m && !ok; m &= m - 1) ok = k == e->field_text[__builtin_ctz(m)];
    }
    if (!ok) {
      if (lua_type(L, -1) == LUA_TSTRING)
        luaL_error(L, "out.%s: unknown field '%s' (see scripts/README.md for the fields it takes)", fn, lua_tostring(L, -1));
      luaL_error(L, "out.%s: unexpected %s key (the fields are named, e.g. id = ...)", fn, luaL_typename(L, -1));
    }
  }
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
  check_fields(L, e, fn, FB(F_ID) | FB(F_TEXT) | FB(F_RATIONALE) | FB(F_EVIDENCE) | FB(F_GROUP) | FB(F_STRENGTH) |
                      FB(F_CITATIONS) | FB(F_PREFERRED) | FB(F_TARGET) | FB(F_FACTS));
  memset(&it, 0, sizeof it);
  it.id = arg_str(L, e, fn, F_ID, 1);
  if (pw_knowledge_resolve(it.id, &it.agents, &it.action, &kind, why, sizeof why))
    luaL_error(L, "out.%s: %s", fn, why);
  it.kind = pw_knowledge_kind_name(kind);
  it.text = arg_str(L, e, fn, F_TEXT, 1);
  it.rationale = arg_str(L, e, fn, F_RATIONALE, 0);
  it.evidence = arg_str(L, e, fn, F_EVIDENCE, 0);
  it.group = arg_str(L, e, fn, F_GROUP, 0);
  if (it.group && !pw_builder_ident(it.group)) luaL_error(L, "out.%s: group '%s' must be [a-z0-9_.-]+", fn, it.group);
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
  count_entry(L, fn, e->res.items.n, "recommendations");
  pw_item *slot = pw_result_add_item(&e->res);
  if (!slot) oom(L, fn);
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
    pw_builder_trace(e, it.line, NULL, "protocol proposes %s%s", it.id, facts);
  }
  return 0;
}

static int b_recommend(lua_State *L) { return build_item(L, "recommend", "recommended"); }
static int b_consider(lua_State *L) { return build_item(L, "consider", "consider"); }

static int b_missing(lua_State *L) {
  pw_engine *e = engine_of(L);
  check_live(L, e, "missing");
  check_fields(L, e, "missing", FB(F_FACT) | FB(F_WHY) | FB(F_ORDER) | FB(F_TEST) | FB(F_CITATIONS));
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
  count_entry(L, "missing", e->res.missing.n, "missing facts");
  pw_missing *m = pw_result_add_missing(&e->res, fact);
  if (!m) oom(L, "missing");
  m->why = why;   /* the protocol's words win over the kernel's */
  if (order) m->order = order;
  if (test) m->test = test;
  if (c.n) m->cites = c;
  m->source = PW_SRC_PROTOCOL;
  pw_builder_trace(e, script_line(L), NULL, "protocol reports %s missing%s", fact, "");
  return 0;
}

static int build_note(lua_State *L, int which, const char *fn, int id_required) {
  pw_engine *e = engine_of(L);
  pw_cites c;
  if (!e->in_eval) luaL_error(L, "out.%s may only be called during an evaluation", fn);
  luaL_checktype(L, 1, LUA_TTABLE);
  check_fields(L, e, fn, FB(F_ID) | FB(F_TEXT) | FB(F_CITATIONS) | (which == PW_NOTE_WARN ? FB(F_LEVEL) : 0));
  const char *id = arg_str(L, e, fn, F_ID, id_required);
  const char *text = arg_str(L, e, fn, F_TEXT, 1);
  /* a warning's level: urgent first, this patient's, or a standing reminder */
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
  } else if (id && !pw_builder_ident(id))
    luaL_error(L, "out.%s: id '%s' must be [a-z0-9_.-]+", fn, id);
  count_entry(L, fn, which == PW_NOTE_WARN ? e->res.warnings.n : which == PW_NOTE_FOLLOWUP ? e->res.followup.n
                     : e->res.outcomes.n, "entries");
  pw_note *n = pw_result_add_note(&e->res, which);
  if (!n) oom(L, fn);
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
  /* checked whether traced or not: the same protocol fails the same way */
  if (lua_type(L, 1) != LUA_TSTRING)
    luaL_error(L, "out.note: the text must be a string, got %s", luaL_typename(L, 1));
  const char *s = lua_tolstring(L, 1, &n);
  if (n > PW_MAX_TEXT) luaL_error(L, "out.note: the text is longer than %d bytes", PW_MAX_TEXT);
  if (strlen(s) != n || !pw_utf8_valid(s, n)) luaL_error(L, "out.note: the text is not valid UTF-8 text");
  count_entry(L, "note", e->res.nnotes++, "notes");
  count_text(L, e, "note", "text", n);
  if (e->res.tracing) {
    pw_note *t = pw_result_add_note(&e->res, PW_NOTE_TRACE);
    if (!t || !(t->text = pw_arena_strdup(&e->res.arena, s, n))) oom(L, "note");
    t->line = script_line(L);
  }
  return 0;
}

static int b_pathway(lua_State *L) {
  pw_engine *e = engine_of(L);
  if (!e->in_eval || e->in_plugin) luaL_error(L, "out.pathway may only be called by the protocol during an evaluation");
  size_t n;
  const char *name = luaL_checklstring(L, 1, &n);
  if (n > 64 || !pw_builder_ident(name)) luaL_error(L, "out.pathway: name must be [a-z0-9_.-]+ (64 bytes at most)");
  int to = lua_type(L, 2);
  if (to != LUA_TNONE && to != LUA_TNIL && to != LUA_TTABLE)
    luaL_error(L, "out.pathway: the options (argument 2) must be a table, got %s", luaL_typename(L, 2));
  e->res.pathway = pw_arena_strdup(&e->res.arena, name, n);
  if (!e->res.pathway) oom(L, "pathway");
  e->res.pathway_rationale = NULL;
  memset(&e->res.pathway_cites, 0, sizeof e->res.pathway_cites);
  if (lua_istable(L, 2)) {
    lua_settop(L, 2);
    lua_remove(L, 1);   /* the options table becomes argument 1 */
    check_fields(L, e, "pathway", FB(F_RATIONALE) | FB(F_CITATIONS));
    e->res.pathway_rationale = arg_str(L, e, "pathway", F_RATIONALE, 0);
    arg_cites(L, e, "pathway", 0, &e->res.pathway_cites);
  }
  pw_builder_trace(e, script_line(L), NULL, "pathway set to %s%s", e->res.pathway, "");
  return 0;
}

/* ---- plugin builder: block or warn, nothing else ---- */

static int p_block(lua_State *L) {
  pw_engine *e = engine_of(L);
  pw_cites c;
  if (!e->in_plugin) luaL_error(L, "out.block may only be called by a plugin during an evaluation");
  luaL_checktype(L, 1, LUA_TTABLE);
  check_fields(L, e, "block", FB(F_ID) | FB(F_RULE) | FB(F_REASON) | FB(F_CITATIONS));
  const char *id = arg_str(L, e, "block", F_ID, 1);
  const char *r = arg_str(L, e, "block", F_RULE, 1);
  const char *reason = arg_str(L, e, "block", F_REASON, 1);
  if (!pw_builder_ident(r)) luaL_error(L, "out.block: rule '%s' must be [a-z0-9_.-]+", r);
  arg_cites(L, e, "block", 0, &c);
  size_t np = strlen(e->cur_plugin->id), nr = strlen(r);   /* "plugin/rule", whole: ids have no length cap */
  char *rule = pw_arena_alloc(&e->res.arena, np + nr + 2);
  if (!rule) oom(L, "block");
  memcpy(rule, e->cur_plugin->id, np);
  rule[np] = '/';
  memcpy(rule + np + 1, r, nr + 1);
  for (int i = 0; i < e->res.items.n; i++) {
    pw_item *it = &e->res.items.v[i];
    if (it->blocked || strcmp(it->id, id)) continue;
    it->blocked = 1;
    it->rule = rule;
    it->reason = reason;
    it->rule_cites = c;
    pw_builder_trace(e, script_line(L), it->rule, "plugin rule %s blocked %s", it->rule, id);
  }
  return 0;
}

/* out.withheld(id): the "plugin/rule" that blocked the protocol's item id
** on this evaluation's first pass, or nil; the protocol then offers its
** next alternative, as when the kernel's rule applies. */
static int b_withheld(lua_State *L) {
  pw_engine *e = engine_of(L);
  const char *id = luaL_checkstring(L, 1);
  for (int i = 0; i < e->nwithheld; i++)
    if (!strcmp(e->withheld[i][0], id)) { lua_pushstring(L, e->withheld[i][1]); return 1; }
  lua_pushnil(L);
  return 1;
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
  for (int i = 0; i < NFIELDS; i++) e->field_text[i] = lua_pushstring(L, field_names[i]);   /* interned: the same each time */
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


void pw_builder_open(lua_State *L, pw_engine *e) {
  static const luaL_Reg out_fns[] = {
    {"recommend", b_recommend}, {"consider", b_consider}, {"missing", b_missing},
    {"warn", b_warn}, {"followup", b_followup}, {"outcome", b_outcome},
    {"note", b_note}, {"pathway", b_pathway}, {"withheld", b_withheld}, {NULL, NULL}};
  static const luaL_Reg pout_fns[] = {
    {"block", p_block}, {"warn", b_warn}, {"note", b_note}, {NULL, NULL}};
  e->out_ref = push_builder(L, e, out_fns, b_refuse);
  e->pout_ref = push_builder(L, e, pout_fns, p_refuse);
}

/* ---- the item list plugins read ---- */

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

void pw_builder_push_items(lua_State *L, const pw_result *r) {
  lua_pushcfunction(L, seal);
  push_items(L, r);
  lua_call(L, 1, 1);
}
