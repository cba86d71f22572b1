/*
** protocol.c: loading a protocol (run once in the sandbox, its returned
** table checked: id, version, title, references, applies, evaluate) and
** loading plugins (a table with an id and a check function). A protocol
** that fails to load leaves the previous one in place.
**
** A protocol may declare `extends = "<protocol id or file>"`: the host (not
** the sandbox) loads that base from the protocol search path -- the
** directory of the extending file, then $PATHWISE_PATH, then the default
** scripts directory (pw_limits.scripts_dir: the installed one for an
** installed binary; PW_SCRIPTS_DIR, the source tree's, when not given) --
** and merges the extension into the base's table:
** tables that are not lists (policy, sentences) merge key by key, at any
** depth; `references` merge by number; anything else the extension names
** (lists such as examples, strings, functions) replaces the base's. The
** result records the base's id, version and sha256 beside its own.
*/
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "error.h"
#include "knowledge.h"
#include "runtime.h"
#include "file.h"
#include <unistd.h>

#ifndef PW_SCRIPTS_DIR
#define PW_SCRIPTS_DIR "scripts"
#endif
#define PW_MAX_EXTENDS 4   /* a chain of bases at most this deep */

void pw_protocol_info_free(pw_protocol_info *p) {
  free(p->id); free(p->version); free(p->title); free(p->plugins_json);
  free(p->base_id); free(p->base_version);
  for (int i = 0; i <= PW_MAX_REFS; i++) free(p->refs[i]);
  for (int i = 0; i < p->nplugins; i++) { free(p->plugins[i].id); free(p->plugins[i].version); free(p->plugins[i].file); }
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

/* Merge the table at src into the table at dst (absolute indices). mode 0:
** the protocol table (`extends` skipped, `references` by number); 1: a
** nested table (lists and non-tables replace, other tables merge); 2: key
** by key, values replace. */
static void merge_table(lua_State *L, int dst, int src, int mode, int depth) {
  lua_pushnil(L);
  while (lua_next(L, src)) {
    int sub = 0, kw = 0;
    if (mode == 0 && lua_type(L, -2) == LUA_TSTRING) {
      const char *k = lua_tostring(L, -2);
      if (!strcmp(k, "extends")) { lua_pop(L, 1); continue; }
      kw = !strcmp(k, "references");
    }
    if (mode != 2 && depth < 8 && lua_type(L, -1) == LUA_TTABLE && (kw || lua_rawlen(L, -1) == 0)) {
      lua_pushvalue(L, -2);
      if (lua_rawget(L, dst) == LUA_TTABLE) sub = 1; else lua_pop(L, 1);
    }
    if (sub) {
      int top = lua_gettop(L);
      merge_table(L, top, top - 1, kw ? 2 : 1, depth + 1);
      lua_pop(L, 2);
    } else {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, dst);
    }
  }
}

/* Is dir/ref(.lua) a readable file other than `from` itself? (A site
** protocol may extend the default of the same name from further down the
** search path: it must not find itself.) */
static int try_base(const char *from, const char *dir, size_t dl, const char *ref, int is_file,
                    char *out, size_t n) {
  struct stat a, b;
  int w = snprintf(out, n, "%.*s/%s%s", (int)dl, dir, ref, is_file ? "" : ".lua");
  if (w <= 0 || (size_t)w >= n || access(out, R_OK) != 0) return 0;
  if (stat(out, &a) == 0 && stat(from, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) return 0;
  return 1;
}

/* Is ref a protocol id (no '/', not ending in ".lua")? */
static int is_protocol_id(const char *ref) {
  size_t rl = strlen(ref);
  return !strchr(ref, '/') && !(rl > 4 && !strcmp(ref + rl - 4, ".lua"));
}

/* The file a protocol's `extends` names, from the search path: the
** directory of `from`, then each directory of $PATHWISE_PATH, then
** the scripts directory. An id is looked for as <dir>/<id>.lua. The
** extending file itself is never its own base. */
static int resolve_base(const char *scripts, const char *from, const char *ref, char *out, size_t n) {
  int is_file = !is_protocol_id(ref);
  if (is_file && ref[0] == '/') { snprintf(out, n, "%s", ref); return access(out, R_OK) == 0; }
  const char *slash = strrchr(from, '/');
  if (try_base(from, slash ? from : ".", slash ? (size_t)(slash - from) : 1, ref, is_file, out, n)) return 1;
  for (const char *p = getenv("PATHWISE_PATH"); p && *p;) {
    const char *colon = strchr(p, ':');
    size_t dl = colon ? (size_t)(colon - p) : strlen(p);
    if (dl && try_base(from, p, dl, ref, is_file, out, n)) return 1;
    p = colon ? colon + 1 : NULL;
  }
  return try_base(from, scripts, strlen(scripts), ref, is_file, out, n);
}

static const char *scripts_dir(const pw_engine *e) {
  return e->lim.scripts_dir && *e->lim.scripts_dir ? e->lim.scripts_dir : PW_SCRIPTS_DIR;
}

int pw_engine_find_protocol(const pw_engine *e, const char *ref, char *out, size_t n) {
  return resolve_base(scripts_dir(e), "./", ref, out, n);
}

static pw_status run_chunk(pw_engine *e, const char *name, const char *src, size_t len, pw_error *err);

/* The table on top of the stack declares `extends`: load its base (which
** may extend another), merge the extension into it and leave the merged
** table in its place. base gets the base's identity; files gets each
** base's path, a line each. */
static pw_status apply_extends(pw_engine *e, const char *name, pw_protocol_info *base, int depth,
                               pw_buf *files, pw_error *err) {
  lua_State *L = e->sb.L;
  int t = lua_gettop(L);
  lua_pushliteral(L, "extends");
  int ty = lua_rawget(L, t);
  if (ty == LUA_TNIL) { lua_pop(L, 1); return PW_OK; }
  char ref[256], path[1024];
  if (ty != LUA_TSTRING || lua_rawlen(L, -1) == 0 || lua_rawlen(L, -1) >= sizeof ref) {
    lua_pop(L, 1);
    return pw_error_set(err, PW_EPROTOCOL, "%s: protocol field 'extends' must be a protocol id or file name", name);
  }
  snprintf(ref, sizeof ref, "%s", lua_tostring(L, -1));
  lua_pop(L, 1);
  if (depth >= PW_MAX_EXTENDS)
    return pw_error_set(err, PW_EPROTOCOL, "%s: extends '%s': more than %d bases in a chain", name, ref, PW_MAX_EXTENDS);
  if (!resolve_base(scripts_dir(e), name, ref, path, sizeof path))
    return pw_error_set(err, PW_EPROTOCOL, "%s: extends '%s': no such protocol beside it or in %s", name, ref,
                        scripts_dir(e));
  pw_buf_addf(files, "%s\n", path);
  size_t len;
  char *src = read_file(path, &len, err);
  if (!src) return err ? err->code : PW_EIO;
  pw_status rc = run_chunk(e, path, src, len, err);
  if (rc == PW_OK) {
    pw_protocol_info inner;
    memset(&inner, 0, sizeof inner);
    rc = apply_extends(e, path, &inner, depth + 1, files, err);
    pw_protocol_info_free(&inner);
  }
  if (rc == PW_OK) {
    rc = check_protocol_table(e, path, base, err);
    if (rc == PW_OK) pw_sha256_hex(src, len, base->sha256);
  }
  free(src);
  if (rc != PW_OK) { lua_settop(L, t); return rc; }
  if (!strchr(ref, '/') && strcmp(ref, base->id) && strcmp(path + strlen(path) - strlen(ref), ref)) {
    lua_settop(L, t);
    return pw_error_set(err, PW_EPROTOCOL, "%s: extends '%s' but %s declares id '%s'", name, ref, path, base->id);
  }
  merge_table(L, t + 1, t, 0, 0);
  lua_remove(L, t);
  return PW_OK;
}

/* Run a protocol chunk; its returned value is left on the stack. */
static pw_status run_chunk(pw_engine *e, const char *name, const char *src, size_t len, pw_error *err) {
  char msg[480];
  int rc = pw_sandbox_load(&e->sb, name, src, len, msg, sizeof msg);
  if (rc != PW_OK) return pw_error_set(err, (pw_status)rc, "%s", msg);
  e->in_eval = 0;
  rc = pw_sandbox_pcall(&e->sb, 0, 1, e->lim.instructions, msg, sizeof msg);
  if (rc != PW_OK) return pw_error_set(err, (pw_status)rc, "%s", msg);
  if (!lua_istable(e->sb.L, -1))
    return pw_error_set(err, PW_EPROTOCOL, "%s: the file must return a protocol table", name);
  return PW_OK;
}

/* The protocol table (at the top) may have `prepare = function(protocol)`:
** run once here, after any extension was merged in and before the first
** evaluation, to build what does not change between evaluations (citation
** sets, joined evidence texts, constant items). It runs under the budget
** with `out` closed; an error fails the load. It is not an evaluation, so
** `check --coverage` does not count its lines. */
static pw_status run_prepare(pw_engine *e, const char *name, pw_error *err) {
  lua_State *L = e->sb.L;
  char msg[480];
  lua_pushliteral(L, "prepare");
  int ty = lua_rawget(L, -2);
  if (ty == LUA_TNIL) { lua_pop(L, 1); return PW_OK; }
  if (ty != LUA_TFUNCTION) {
    lua_pop(L, 1);
    return pw_error_set(err, PW_EPROTOCOL, "%s: protocol field 'prepare' must be a function", name);
  }
  lua_pushvalue(L, -2);
  e->in_eval = 0;
  int rc = pw_sandbox_pcall(&e->sb, 1, 0, e->lim.instructions, msg, sizeof msg);
  if (rc != PW_OK) return pw_error_set(err, (pw_status)rc, "prepare: %s", msg);
  return PW_OK;
}

/* Load src as the protocol. owned: NULL, or src itself as a malloc'd,
** NUL-terminated buffer the engine keeps (a file just read: no second
** copy); taken in every case, freed on failure. */
static pw_status load_source(pw_engine *e, const char *name, const char *src, size_t len, char *owned,
                             pw_error *err) {
  lua_State *L = e->sb.L;
  pw_protocol_info p, base;
  memset(&p, 0, sizeof p);
  memset(&base, 0, sizeof base);
  int top = lua_gettop(L);
  pw_buf files = {0};
  char *copy = owned ? owned : malloc(len + 1), *cname = strdup(name);
  int rc = copy && cname ? run_chunk(e, name, src, len, err) : pw_error_set(err, PW_EMEMORY, "out of memory");
  if (rc == PW_OK) rc = apply_extends(e, name, &base, 0, &files, err);
  if (rc == PW_OK) rc = check_protocol_table(e, name, &p, err);
  if (rc == PW_OK && files.failed) rc = pw_error_set(err, PW_EMEMORY, "out of memory");
  if (rc == PW_OK) rc = run_prepare(e, name, err);
  if (rc != PW_OK) {
    lua_settop(L, top);
    pw_protocol_info_free(&p);
    pw_protocol_info_free(&base);
    pw_buf_free(&files);
    free(copy);
    free(cname);
    return (pw_status)rc;
  }
  if (!owned) {
    memcpy(copy, src, len);
    copy[len] = '\0';
  }
  free(e->src); free(e->src_name); free(e->base_files);
  e->src = copy; e->src_name = cname; e->src_len = len;
  e->base_files = files.data;   /* NULL when it extends nothing */
  pw_sha256_hex(src, len, p.sha256);
  if (base.id) {
    p.base_id = base.id; p.base_version = base.version;
    memcpy(p.base_sha256, base.sha256, sizeof p.base_sha256);
    base.id = base.version = NULL;
  }
  pw_protocol_info_free(&base);
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
  free(e->path);   /* a buffer has no file; pw_engine_load sets it after */
  e->path = NULL;
  return PW_OK;
}

pw_status pw_engine_load_buffer(pw_engine *e, const char *name, const char *src, size_t len, pw_error *err) {
  return load_source(e, name, src, len, NULL, err);
}

pw_status pw_engine_load(pw_engine *e, const char *path, pw_error *err) {
  size_t len;
  char found[1024];
  /* not a file here but an id (`--a mrc_second_line`): looked for as
  ** `extends` looks for a base */
  if (access(path, F_OK) != 0 && is_protocol_id(path)) {
    if (!pw_engine_find_protocol(e, path, found, sizeof found))
      return pw_error_set(err, PW_EIO, "'%s': no such file, nor %s.lua in the current directory, "
                          "$PATHWISE_PATH or %s", path, path, scripts_dir(e));
    path = found;
  }
  char *src = read_file(path, &len, err);
  if (!src) return err ? err->code : PW_EIO;   /* PW_EIO, or PW_EMEMORY */
  pw_status rc = load_source(e, path, src, len, src, err);
  if (rc == PW_OK) { free(e->path); e->path = strdup(path); }
  return rc;
}

/* A plugin's own references ({[n] = text}, e.g. [6] "Institutional policy
** 2026-03"), added to the protocol's so that its blocks may cite them. A
** number the protocol already gives another text is refused. Returns NULL
** or what is wrong. */
static const char *plugin_references(pw_engine *e, lua_State *L, int t) {
  lua_pushliteral(L, "references");
  int ty = lua_rawget(L, t);
  if (ty == LUA_TNIL) { lua_pop(L, 1); return NULL; }
  if (ty != LUA_TTABLE) { lua_pop(L, 1); return "plugin field 'references' must be a table {[n] = text}"; }
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    int isint;
    lua_Integer n = lua_tointegerx(L, -2, &isint);
    if (lua_type(L, -2) != LUA_TNUMBER || !isint || n < 1 || n > PW_MAX_REFS || lua_type(L, -1) != LUA_TSTRING) {
      lua_pop(L, 3);
      return "references must map numbers 1..32 to text";
    }
    const char *text = lua_tostring(L, -1);
    if (e->info.refs[n] && strcmp(e->info.refs[n], text)) {
      lua_pop(L, 3);
      return "a reference number the protocol already uses for another text: choose a free number";
    }
    if (!e->info.refs[n] && !(e->info.refs[n] = strdup(text))) { lua_pop(L, 3); return "out of memory"; }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return NULL;
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
    return pw_error_set(err, PW_EPROTOCOL, "%s: a plugin returns a table with an 'id' of [a-z0-9_.-]+, 256 bytes at most", path);
  }
  pl->check_ref = table_fn(L, lua_gettop(L), "check");
  const char *bad = plugin_references(e, L, lua_gettop(L));
  char *version = NULL;
  if (!bad && table_str(L, lua_gettop(L), "version", &version)) version = NULL;
  lua_pop(L, 1);
  if (bad) {
    free(pl->id);
    luaL_unref(L, LUA_REGISTRYINDEX, pl->check_ref);
    return pw_error_set(err, PW_EPROTOCOL, "%s: %s", path, bad);
  }
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

