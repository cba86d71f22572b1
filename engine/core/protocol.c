/*
** protocol.c: loading a protocol (run once in the sandbox, its returned
** table checked: id, version, title, references, applies, evaluate) and
** loading plugins (a table with an id and a check function). A protocol
** that fails to load leaves the previous one in place.
*/
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "error.h"
#include "knowledge.h"
#include "runtime.h"
#include "file.h"

void pw_protocol_info_free(pw_protocol_info *p) {
  free(p->id); free(p->version); free(p->title); free(p->plugins_json);
  for (int i = 0; i <= PW_MAX_REFS; i++) free(p->refs[i]);
  memset(p, 0, sizeof *p);
}

/* The source of a protocol or plugin file. */
static char *read_file(const char *path, size_t *len, pw_error *err) {
  pw_buf b = {0};
  if (pw_file_read(path, PW_MAX_SOURCE, &b, err) != PW_OK) { pw_buf_free(&b); return NULL; }
  *len = b.len;
  return b.data;
}

/* Raw string field of the table at idx, copied with malloc. Returns 0,
** -1 when it is not a fit string, -2 when the copy found no memory. */
static int table_str(lua_State *L, int idx, const char *k, char **out) {
  int rc = -1;
  lua_pushstring(L, k);
  int t = lua_rawget(L, idx);
  if (t == LUA_TSTRING) {
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    if (n > 0 && n <= 256 && pw_utf8_valid(s, n) && strlen(s) == n) rc = (*out = strdup(s)) ? 0 : -2;
  }
  lua_pop(L, 1);
  return rc;
}

static int table_fn(lua_State *L, int idx, const char *k) {
  lua_pushstring(L, k);
  if (lua_rawget(L, idx) != LUA_TFUNCTION) { lua_pop(L, 1); return LUA_NOREF; }
  return luaL_ref(L, LUA_REGISTRYINDEX);
}

static pw_status check_protocol_table(pw_engine *e, const char *name, pw_protocol_info *p, pw_error *err) {
  lua_State *L = e->sb.L;
  int t = lua_gettop(L);
  if (!lua_istable(L, t)) return pw_error_set(err, PW_EPROTOCOL, "%s: the file must return a protocol table", name);
  int rid = table_str(L, t, "id", &p->id), rv = table_str(L, t, "version", &p->version),
      rt = table_str(L, t, "title", &p->title);
  if (rid == -2 || rv == -2 || rt == -2)
    return pw_error_set(err, PW_EMEMORY, "%s: out of memory reading the protocol table", name);
  if (rid || !pw_builder_ident(p->id))
    return pw_error_set(err, PW_EPROTOCOL, "%s: protocol field 'id' must be a string of [a-z0-9_.-]", name);
  if (rv)
    return pw_error_set(err, PW_EPROTOCOL, "%s: protocol field 'version' must be a non-empty string", name);
  if (rt)
    return pw_error_set(err, PW_EPROTOCOL, "%s: protocol field 'title' must be a non-empty string", name);
  lua_pushliteral(L, "references");
  if (lua_rawget(L, t) != LUA_TTABLE) {
    lua_pop(L, 1);
    return pw_error_set(err, PW_EPROTOCOL, "%s: protocol field 'references' must be a table {[n] = text}", name);
  }
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    int isint;
    lua_Integer n = lua_tointegerx(L, -2, &isint);
    if (lua_type(L, -2) != LUA_TNUMBER || !isint || n < 1 || n > PW_MAX_REFS || lua_type(L, -1) != LUA_TSTRING) {
      lua_pop(L, 3);
      return pw_error_set(err, PW_EPROTOCOL, "%s: references must map numbers 1..32 to text", name);
    }
    free(p->refs[n]);
    p->refs[n] = strdup(lua_tostring(L, -1));
    if (!p->refs[n]) {   /* a reference lost would fail every citation of it later */
      lua_pop(L, 3);
      return pw_error_set(err, PW_EMEMORY, "%s: out of memory reading the references", name);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  lua_pushliteral(L, "applies");
  int ta = lua_rawget(L, t);
  lua_pushliteral(L, "evaluate");
  int te = lua_rawget(L, t);
  lua_pop(L, 2);
  if (ta != LUA_TFUNCTION) return pw_error_set(err, PW_EPROTOCOL, "%s: protocol field 'applies' must be a function", name);
  if (te != LUA_TFUNCTION) return pw_error_set(err, PW_EPROTOCOL, "%s: protocol field 'evaluate' must be a function", name);
  return PW_OK;
}

pw_status pw_engine_load_buffer(pw_engine *e, const char *name, const char *src, size_t len, pw_error *err) {
  lua_State *L = e->sb.L;
  char msg[480];
  pw_protocol_info p;
  memset(&p, 0, sizeof p);
  int rc = pw_sandbox_load(&e->sb, name, src, len, msg, sizeof msg);
  if (rc != PW_OK) return pw_error_set(err, (pw_status)rc, "%s", msg);
  e->in_eval = 0;
  rc = pw_sandbox_pcall(&e->sb, 0, 1, e->lim.instructions, msg, sizeof msg);
  if (rc != PW_OK) return pw_error_set(err, (pw_status)rc, "%s", msg);
  rc = check_protocol_table(e, name, &p, err);
  if (rc != PW_OK) { lua_pop(L, 1); pw_protocol_info_free(&p); return (pw_status)rc; }
  pw_sha256_hex(src, len, p.sha256);
  /* commit: replace the old protocol */
  luaL_unref(L, LUA_REGISTRYINDEX, e->applies_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, e->evaluate_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, e->proto_ref);
  int t = lua_gettop(L);
  e->applies_ref = table_fn(L, t, "applies");
  e->evaluate_ref = table_fn(L, t, "evaluate");
  e->proto_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  pw_protocol_info_free(&e->info);
  e->info = p;
  e->loaded = 1;
  return PW_OK;
}

pw_status pw_engine_load(pw_engine *e, const char *path, pw_error *err) {
  size_t len;
  char *src = read_file(path, &len, err);
  if (!src) return err ? err->code : PW_EIO;   /* PW_EIO, or PW_EMEMORY */
  pw_status rc = pw_engine_load_buffer(e, path, src, len, err);
  free(src);
  if (rc == PW_OK) { free(e->path); e->path = strdup(path); }
  return rc;
}

pw_status pw_engine_add_plugin(pw_engine *e, const char *path, pw_error *err) {
  lua_State *L = e->sb.L;
  char msg[480];
  size_t len;
  if (e->nplugins == PW_MAX_PLUGINS)
    return pw_error_set(err, PW_EPROTOCOL, "%s: at most %d plugins", path, PW_MAX_PLUGINS);
  char *src = read_file(path, &len, err);
  if (!src) return err ? err->code : PW_EIO;   /* PW_EIO, or PW_EMEMORY */
  char sha[65];
  pw_sha256_hex(src, len, sha);
  int rc = pw_sandbox_load(&e->sb, path, src, len, msg, sizeof msg);
  free(src);
  if (rc == PW_OK) rc = pw_sandbox_pcall(&e->sb, 0, 1, e->lim.instructions, msg, sizeof msg);
  if (rc != PW_OK) return pw_error_set(err, (pw_status)rc, "%s", msg);
  pw_plugin *pl = &e->plugins[e->nplugins];
  memset(pl, 0, sizeof *pl);
  if (!lua_istable(L, -1) || table_str(L, lua_gettop(L), "id", &pl->id) || !pw_builder_ident(pl->id)) {
    lua_pop(L, 1);
    free(pl->id);
    return pw_error_set(err, PW_EPROTOCOL, "%s: a plugin returns a table with an 'id' of [a-z0-9_.-]", path);
  }
  pl->check_ref = table_fn(L, lua_gettop(L), "check");
  char *version = NULL;
  if (table_str(L, lua_gettop(L), "version", &version)) version = NULL;
  lua_pop(L, 1);
  if (pl->check_ref != LUA_NOREF && pw_plugin_provenance(&e->info, pl->id, version, sha, path)) {
    free(version);
    free(pl->id);
    return pw_error_set(err, PW_EMEMORY, "%s: out of memory", path);
  }
  free(version);
  if (pl->check_ref == LUA_NOREF) {
    free(pl->id);
    return pw_error_set(err, PW_EPROTOCOL, "%s: plugin field 'check' must be a function(facts, items, out)", path);
  }
  pl->name = strdup(path);
  e->nplugins++;
  return PW_OK;
}

