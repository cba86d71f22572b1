/*
** coverage.c: line coverage of the loaded protocol for `pathwise check
** --coverage`: counting hooks (sandbox.c) and the lines that hold code in
** functions reachable from the protocol table.
*/
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "error.h"
#include "knowledge.h"
#include "runtime.h"

const char *pw_engine_protocol_path(const pw_engine *e) { return e->path; }

pw_status pw_engine_coverage_start(pw_engine *e, pw_error *err) {
  if (!e->loaded || !e->path) return pw_error_set(err, PW_EPROTOCOL, "coverage needs a protocol loaded from a file");
  int lines = 1;   /* of the source as loaded (protocol.c keeps it), not read again */
  for (size_t i = 0; i < e->src_len; i++) lines += e->src[i] == '\n';
  if (pw_sandbox_coverage(&e->sb, e->path, lines)) return pw_error_set(err, PW_EMEMORY, "out of memory");
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
  lua_pushliteral(L, "prepare");   /* runs at load, never in an evaluation: not counted */
  if (lua_rawget(L, -2) == LUA_TFUNCTION) { lua_pushboolean(L, 1); lua_rawset(L, seen); }
  else lua_pop(L, 1);
  mark_active(L, seen, active, n, 0);
  lua_settop(L, top);
}

