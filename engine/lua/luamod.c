/*
** luamod.c: the engine as a Lua C module, for busted specs and scripting:
**   local pathwise = require "pathwise"
**   local e = pathwise.new{protocol = "scripts/mrc_second_line.lua"}
** (protocol: a file, or an id found as `extends` finds a base; absent: the
** default protocol, mrc_second_line)
**   local r, err, code = e:eval(facts_table_or_json, {trace = true})
** Results come back as tables decoded from the engine's own JSON output, so
** specs test exactly what programs receive. Each engine has its own
** sandboxed state; the caller's state only holds results.
**   local input, err, facts_json = pathwise.fhir(bundle_json, {adapter=, codes={..}, as_of=})
** runs the FHIR input adapter (engine/core/adapter.h) the same way.
*/
#include <lauxlib.h>
#include <lua.h>
#include <string.h>
#include "adapter.h"
#include "engine.h"

#define ENGINE_MT "pathwise.engine"

typedef struct ud { pw_engine *e; } ud;

static pw_engine *check_engine(lua_State *L) {
  ud *u = luaL_checkudata(L, 1, ENGINE_MT);
  if (!u->e) luaL_error(L, "engine is closed");
  return u->e;
}

/* Decode JSON text with cjson in the caller's state. */
static void push_decoded(lua_State *L, const char *s, size_t n) {
  lua_getfield(L, LUA_REGISTRYINDEX, "pathwise.decode");
  lua_pushlstring(L, s, n);
  lua_call(L, 1, 1);
}

/* Encode a Lua value with cjson in the caller's state (specs give tables). */
static const char *encode(lua_State *L, int idx, size_t *n) {
  lua_getfield(L, LUA_REGISTRYINDEX, "pathwise.encode");
  lua_pushvalue(L, idx);
  lua_call(L, 1, 1);
  return lua_tolstring(L, -1, n);
}

static int opt_int(lua_State *L, int t, const char *k) {
  lua_getfield(L, t, k);
  lua_Integer v = luaL_optinteger(L, -1, 0);
  lua_pop(L, 1);
  return (int)v;
}

static int m_new(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  pw_limits lim = {0};
  pw_error err;
  lim.memory = (size_t)opt_int(L, 1, "memory");
  lim.instructions = (uint64_t)opt_int(L, 1, "instructions");
  ud *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->e = NULL;
  luaL_setmetatable(L, ENGINE_MT);
  u->e = pw_engine_new(&lim, &err);
  if (!u->e) return luaL_error(L, "%s", err.msg);
  lua_getfield(L, 1, "source");
  pw_status rc;
  if (lua_isstring(L, -1)) {
    size_t n;
    const char *src = lua_tolstring(L, -1, &n);
    lua_getfield(L, 1, "name");
    rc = pw_engine_load_buffer(u->e, luaL_optstring(L, -1, "protocol.lua"), src, n, &err);
    lua_pop(L, 1);
  } else {
    /* a file, or a protocol id found as `extends` finds one; none: the default */
    lua_getfield(L, 1, "protocol");
    const char *ref = luaL_optstring(L, -1, "mrc_second_line");
    rc = pw_engine_load(u->e, ref, &err);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  if (rc != PW_OK) return luaL_error(L, "%s", err.msg);
  lua_getfield(L, 1, "plugins");
  if (lua_istable(L, -1))
    for (int i = 1; lua_rawgeti(L, -1, i) == LUA_TSTRING; i++) {
      if (pw_engine_add_plugin(u->e, lua_tostring(L, -1), &err) != PW_OK) return luaL_error(L, "%s", err.msg);
      lua_pop(L, 1);
    }
  lua_settop(L, 2);
  return 1;
}

static int m_eval(lua_State *L) {
  pw_engine *e = check_engine(L);
  size_t n;
  const char *json;
  unsigned flags = 0;
  if (lua_istable(L, 3)) {
    lua_getfield(L, 3, "trace");
    if (lua_toboolean(L, -1)) flags |= PW_EVAL_TRACE;
    lua_pop(L, 1);
  }
  json = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &n) : encode(L, 2, &n);
  pw_buf out = {0};
  pw_error err;
  pw_status rc = pw_engine_eval(e, json, n, flags, &out, &err);
  if (rc != PW_OK) {
    pw_buf_free(&out);
    lua_pushnil(L);
    lua_pushstring(L, err.msg);
    lua_pushstring(L, pw_status_name(rc));
    return 3;
  }
  push_decoded(L, out.data, out.len);
  lua_pushlstring(L, out.data, out.len);
  pw_buf_free(&out);
  lua_pushnil(L);
  lua_insert(L, -2);
  return 3;   /* result, nil, json text */
}

static int m_text(lua_State *L) {
  pw_engine *e = check_engine(L);
  pw_buf out = {0};
  pw_engine_render_text(e, &out);
  lua_pushlstring(L, out.data ? out.data : "", out.len);
  pw_buf_free(&out);
  return 1;
}

static int m_check(lua_State *L) {
  pw_engine *e = check_engine(L);
  pw_buf out = {0};
  pw_error err;
  pw_status rc = pw_engine_check_examples(e, &out, &err);
  lua_pushboolean(L, rc == PW_OK);
  lua_pushlstring(L, out.data ? out.data : "", out.len);
  pw_buf_free(&out);
  return 2;
}

static int m_info(lua_State *L) {
  pw_engine *e = check_engine(L);
  lua_createtable(L, 0, 4);
  lua_pushstring(L, pw_engine_protocol_id(e));
  lua_setfield(L, -2, "id");
  lua_pushstring(L, pw_engine_protocol_version(e));
  lua_setfield(L, -2, "version");
  lua_pushstring(L, pw_engine_protocol_title(e));
  lua_setfield(L, -2, "title");
  lua_pushstring(L, pw_engine_protocol_sha256(e));
  lua_setfield(L, -2, "sha256");
  return 1;
}

static int m_close(lua_State *L) {
  ud *u = luaL_checkudata(L, 1, ENGINE_MT);
  pw_engine_free(u->e);
  u->e = NULL;
  return 0;
}

/* pathwise.fhir(document, {adapter=, codes={...}, as_of=, max_bytes=, max_members=})
** -> input (as in a result's "input"), nil, facts JSON | nil, message, status */
static int m_fhir(lua_State *L) {
  size_t n;
  const char *json = lua_type(L, 1) == LUA_TSTRING ? lua_tolstring(L, 1, &n) : encode(L, 1, &n);
  int doc = lua_gettop(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  pw_adapter_limits lim = {0};
  lim.max_bytes = (size_t)opt_int(L, 2, "max_bytes");
  lim.max_members = opt_int(L, 2, "max_members");
  lua_getfield(L, 2, "as_of");
  const char *as_of = luaL_checkstring(L, -1);
  lua_getfield(L, 2, "adapter");
  const char *path = luaL_checkstring(L, -1);
  pw_error err;
  pw_adapter *a = pw_adapter_new(&lim, &err);
  if (!a) return luaL_error(L, "%s", err.msg);
  pw_status rc = pw_adapter_load(a, path, &err);
  lua_getfield(L, 2, "codes");
  for (int i = 1; rc == PW_OK && lua_istable(L, -1) && lua_rawgeti(L, -1, i) == LUA_TSTRING; i++) {
    rc = pw_adapter_add_codes(a, lua_tostring(L, -1), &err);
    lua_pop(L, 1);
  }
  pw_adapter_output out = {0};
  if (rc == PW_OK) rc = pw_adapter_run(a, json, n, as_of, &out, &err);
  pw_adapter_free(a);
  (void)doc;
  if (rc != PW_OK) {
    pw_adapter_output_free(&out);
    lua_pushnil(L);
    lua_pushstring(L, err.msg);
    lua_pushstring(L, pw_status_name(rc));
    return 3;
  }
  push_decoded(L, out.meta.data, out.meta.len);
  lua_pushnil(L);
  lua_pushlstring(L, out.facts.data, out.facts.len);
  pw_adapter_output_free(&out);
  return 3;
}

static int m_rules(lua_State *L) {
  pw_buf out = {0};
  pw_rules_json(&out);
  push_decoded(L, out.data, out.len);
  pw_buf_free(&out);
  return 1;
}

int luaopen_pathwise(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"eval", m_eval}, {"text", m_text}, {"check", m_check}, {"info", m_info},
    {"close", m_close}, {NULL, NULL}};
  static const luaL_Reg funcs[] = {{"new", m_new}, {"rules", m_rules}, {"fhir", m_fhir}, {NULL, NULL}};
  luaL_checkversion(L);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "cjson");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "decode");
  lua_setfield(L, LUA_REGISTRYINDEX, "pathwise.decode");
  lua_getfield(L, -1, "encode");
  lua_setfield(L, LUA_REGISTRYINDEX, "pathwise.encode");
  lua_getfield(L, -1, "null");
  int null_idx = lua_gettop(L);
  luaL_newmetatable(L, ENGINE_MT);
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, m_close);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  lua_pushvalue(L, null_idx);
  lua_setfield(L, -2, "null");
  lua_pushliteral(L, PW_VERSION);
  lua_setfield(L, -2, "version");
  return 1;
}
