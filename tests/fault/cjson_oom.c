/*
** cjson_oom.c: lua-cjson out of memory is a Lua error, never an exit
** (issue 12; third_party/patches/lua-cjson-2.1.0-oom-error.patch).
**
**   cjson_oom MARKER
**
** Runs cjson.encode (the kept buffer, then a call's own buffer) and
** cjson.decode over a 2,000-row table in a pcall and prints "ok N" or
** "error: MESSAGE". Lua's own allocator bypasses malloc (glibc's
** __libc_realloc), and failmalloc.so counts only after MARKER is opened,
** so every counted allocation is one of lua-cjson's buffers: cjson_oom.py
** fails each in turn.
*/
#include <fcntl.h>
#include <lauxlib.h>
#include <lua-cjson.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <unistd.h>

extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

static void *lalloc(void *ud, void *p, size_t osize, size_t nsize) {
  (void)ud;
  (void)osize;
  if (nsize == 0) {
    __libc_free(p);
    return NULL;
  }
  return __libc_realloc(p, nsize);
}

static const char SCRIPT[] =
    "local cjson = ...\n"
    "local t = {}\n"
    "for i = 1, 2000 do t[i] = {id = i, name = string.rep('x', i % 50), ok = true} end\n"
    "local s = cjson.encode(t)\n"
    "local u = cjson.decode(s)\n"
    "assert(#u == 2000 and u[2000].id == 2000)\n"
    "cjson.encode_keep_buffer(false)\n"
    "return #cjson.encode(t) + #s\n";

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: cjson_oom MARKER\n");
    return 64;
  }
  setvbuf(stdout, NULL, _IONBF, 0);
  lua_State *L = lua_newstate(lalloc, NULL);
  if (!L) return 70;
  luaL_openlibs(L);
  luaL_requiref(L, "cjson", luaopen_cjson, 0);
  if (luaL_loadstring(L, SCRIPT) != LUA_OK) return 70;
  lua_pushvalue(L, -2);
  int fd = open(argv[1], O_RDONLY);   /* arms failmalloc.so (PW_FAIL_AFTER) */
  if (fd >= 0) close(fd);
  if (lua_pcall(L, 1, 1, 0) == LUA_OK)
    printf("ok %lld\n", (long long)lua_tointeger(L, -1));
  else
    printf("error: %s\n", lua_tostring(L, -1));
  lua_close(L);
  return 0;
}
