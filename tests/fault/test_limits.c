/*
** test_limits.c: the limits that keep pathwise alive and responsive
** (issue 12): a pw_buf that cannot grow fails sticky instead of aborting,
** and the sandbox's wall-clock deadline stops a script that the
** instruction budget would let run on (the budget is set out of reach).
*/
#include <stdint.h>
#include <string.h>
#include "buf.h"
#include "pwtest.h"
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

PW_TEST_MAIN(test_buf_failed(); test_deadline())
