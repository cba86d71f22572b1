/*
** test_limits.c: the limits that keep pathwise alive and responsive
** (issue 12): a pw_buf that cannot grow fails sticky instead of aborting,
** and the sandbox's wall-clock deadline stops a script that the
** instruction budget would let run on (the budget is set out of reach),
** and a script cannot poison later calls (_ENV = nil, a helper reassigned,
** the heap left behind by a deep recursion).
*/
#include <stdint.h>
#include <string.h>
#include "buf.h"
#include "pwtest.h"
#include <lauxlib.h>
#include "sandbox.h"

static void test_buf_failed(void) {
  pw_buf b = {0};
  pw_buf_adds(&b, "ok");
  CHECK(!b.failed && b.len == 2);
  pw_buf_add(&b, "x", SIZE_MAX / 2);   /* cannot be had: no abort, no overflow */
  CHECK(b.failed);
  CHECK(b.len == 2);
  pw_buf_adds(&b, "more");              /* sticky: dropped */
  pw_buf_addf(&b, "%d", 42);
  pw_buf_json_str(&b, "s");
  CHECK(b.len == 2 && b.failed);
  pw_buf_reset(&b);
  CHECK(!b.failed && b.len == 0);
  pw_buf_adds(&b, "again");
  CHECK_STR(b.data, "again");
  pw_buf_free(&b);
  CHECK(!b.failed && !b.data);
}

/* Load src as chunk "t.lua" and run it with an unreachable budget. */
static int run(pw_sandbox *sb, const char *src, char *err, size_t errlen) {
  int rc = pw_sandbox_load(sb, "t.lua", src, strlen(src), err, errlen);
  if (rc) return rc;
  return pw_sandbox_pcall(sb, 0, 0, UINT64_C(1) << 60, err, errlen);
}

static void test_deadline(void) {
  pw_sandbox sb;
  char err[512];
  CHECK(pw_sandbox_init(&sb, 64u << 20, err, sizeof err) == 0);
  sb.deadline_ms = 200;
  CHECK(run(&sb, "local i = 0\nwhile true do i = i + 1 end", err, sizeof err) == 3 /* PW_EBUDGET */);
  CHECK_CONTAINS(err, "t.lua:2: deadline of 200 ms exceeded");
  /* the script's own pcall cannot swallow it */
  CHECK(run(&sb, "while true do pcall(function() while true do end end) end", err, sizeof err) == 3);
  CHECK_CONTAINS(err, "deadline of 200 ms exceeded");
  /* and the next run starts with a fresh deadline */
  CHECK(run(&sb, "local s = 0\nfor i = 1, 1000 do s = s + i end", err, sizeof err) == 0);
  /* a library call's work is charged to the budget before it runs */
  CHECK(pw_sandbox_load(&sb, "t.lua", "return table.move({}, 1, 1e12, 1, {})", 37, err, sizeof err) == 0);
  CHECK(pw_sandbox_pcall(&sb, 0, 0, 5000000, err, sizeof err) == 3);
  CHECK_CONTAINS(err, "t.lua:1: table.move");
  pw_sandbox_close(&sb);
}

/* Call field fn of the table in registry ref with one boolean. */
static int call_field(pw_sandbox *sb, int ref, const char *fn, int arg, char *err, size_t errlen) {
  lua_rawgeti(sb->L, LUA_REGISTRYINDEX, ref);
  lua_getfield(sb->L, -1, fn);
  lua_remove(sb->L, -2);
  lua_pushboolean(sb->L, arg);
  return pw_sandbox_pcall(sb, 1, 1, 5000000, err, errlen);
}

static void test_known_good_state(void) {
  pw_sandbox sb;
  char err[512];
  const char *src =
    "local function g() return string.len('abc') end\n"
    "return { f = function(poison) if poison then _ENV = nil return 0 end return g() end,\n"
    "         h = function(poison) if poison then g = nil error('boom') end return g() end,\n"
    "         deep = function() local function r(n) return 1 + r(n + 1) end return r(1) end }";
  CHECK(pw_sandbox_init(&sb, 64u << 20, err, sizeof err) == 0);
  /* The recursion must end in a stack overflow, not the wall clock: under
  ** valgrind on a loaded machine it can take longer than the default 10 s. */
  sb.deadline_ms = 600000;
  CHECK(pw_sandbox_load(&sb, "p.lua", src, strlen(src), err, sizeof err) == 0);
  CHECK(pw_sandbox_pcall(&sb, 0, 1, 5000000, err, sizeof err) == 0);
  int ref = luaL_ref(sb.L, LUA_REGISTRYINDEX);
  CHECK(call_field(&sb, ref, "f", 0, err, sizeof err) == 0 && lua_tointeger(sb.L, -1) == 3);
  lua_pop(sb.L, 1);
  CHECK(call_field(&sb, ref, "f", 1, err, sizeof err) == 0);   /* _ENV = nil, returns normally */
  lua_pop(sb.L, 1);
  CHECK(call_field(&sb, ref, "f", 0, err, sizeof err) == 0 && lua_tointeger(sb.L, -1) == 3);
  lua_pop(sb.L, 1);
  CHECK(call_field(&sb, ref, "h", 1, err, sizeof err) == 2);   /* a helper reassigned, then an error */
  CHECK(call_field(&sb, ref, "h", 0, err, sizeof err) == 0 && lua_tointeger(sb.L, -1) == 3);
  lua_pop(sb.L, 1);
  /* after a deep recursion error the heap is back near where it was */
  size_t before = sb.used;
  CHECK(call_field(&sb, ref, "deep", 0, err, sizeof err) == 2);
  CHECK_CONTAINS(err, "stack overflow");
  CHECK(sb.used < before + (1u << 20));
  if (sb.used >= before + (1u << 20)) fprintf(stderr, "heap %zu bytes before, %zu after\n", before, sb.used);
  CHECK(call_field(&sb, ref, "f", 0, err, sizeof err) == 0 && lua_tointeger(sb.L, -1) == 3);
  lua_pop(sb.L, 1);
  pw_sandbox_close(&sb);
}

PW_TEST_MAIN(test_buf_failed(); test_deadline(); test_known_good_state())
