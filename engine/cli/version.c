/*
** version.c: see version.h.
*/
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <lua-cjson.h>
#include <stdio.h>
#include <uv.h>
#include "buf.h"
#include "build_info.h"
#include "command.h"
#include "version.h"

/* lua-cjson's _VERSION, read from the library actually loaded. */
static void cjson_version(char *out, size_t n) {
  snprintf(out, n, "unknown");
  lua_State *L = luaL_newstate();
  if (!L) return;
  luaL_requiref(L, "cjson", luaopen_cjson, 0);
  lua_getfield(L, -1, "_VERSION");
  if (lua_type(L, -1) == LUA_TSTRING) snprintf(out, n, "%s", lua_tostring(L, -1));
  lua_close(L);
}

void pw_version_text(pw_buf *b) {
  char cj[64];
  cjson_version(cj, sizeof cj);
  pw_buf_addf(b, "pathwise %s\n", PW_VERSION);
  pw_buf_addf(b, "commit %s\n", PW_GIT_COMMIT);
  pw_buf_addf(b, "result schema %d\n", PW_RESULT_SCHEMA);
  pw_buf_addf(b, "%s, lua-cjson %s, libuv %s\n", LUA_RELEASE, cj, uv_version_string());
  pw_buf_adds(b, "Copyright (c) 2026 the pathwise authors. MIT licence (see LICENSE).\n"
                 "This is decision support: a clinician reviews every recommendation.\n");
}

int pw_version_main(void) {
  pw_buf b = {0};
  pw_version_text(&b);
  int ok = fwrite(b.data, 1, b.len, stdout) == b.len && fflush(stdout) == 0;
  pw_buf_free(&b);
  return ok ? PW_EX_OK : PW_EX_IOERR;
}
