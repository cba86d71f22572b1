/*
** test_lpool.c: the sandbox's size-class pools (engine/core/lpool.c) keep
** every block's bytes through allocations, resizes across classes and to
** and from malloc sizes, and frees in any order; a block resized within
** its class stays where it is; a full region falls back to malloc; the
** slabs of freed blocks go back to the kernel (RSS returns); a Lua state
** on the pool runs and is torn down.
*/
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "lpool.h"
#include "pwtest.h"

#define N 20000

static uint32_t rnd(uint32_t *s) { *s = *s * 1103515245u + 12345u; return *s >> 8; }

static void fill(unsigned char *p, size_t n, unsigned k) { for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(k + i); }
static int same(const unsigned char *p, size_t n, unsigned k) {
  for (size_t i = 0; i < n; i++) if (p[i] != (unsigned char)(k + i)) return 0;
  return 1;
}

/* Random allocations, resizes and frees against a record of each block. */
static void test_random(void) {
  pw_lpool *p = pw_lpool_new(64u << 20);
  CHECK(p != NULL);
  if (!p) return;
  static unsigned char *blk[N];
  static size_t sz[N];
  uint32_t s = 7;
  int bad = 0;
  for (int round = 0; round < 200000; round++) {
    int i = (int)(rnd(&s) % N);
    size_t n = rnd(&s) % 16 == 0 ? 513 + rnd(&s) % 4000 : 1 + rnd(&s) % PW_LPOOL_MAX;
    if (blk[i] && !same(blk[i], sz[i], (unsigned)i)) bad++;
    if (blk[i] && rnd(&s) % 3 == 0) {
      pw_lpool_release(p, blk[i], sz[i]);
      blk[i] = NULL;
      continue;
    }
    unsigned char *q = pw_lpool_realloc(p, blk[i], sz[i], n);
    if (!q) { bad++; continue; }
    if (blk[i] && !same(q, sz[i] < n ? sz[i] : n, (unsigned)i)) bad++;
    blk[i] = q;
    sz[i] = n;
    fill(q, n, (unsigned)i);
  }
  CHECK(bad == 0);
  for (int i = 0; i < N; i++) {
    if (blk[i] && !same(blk[i], sz[i], (unsigned)i)) bad++;
    pw_lpool_release(p, blk[i], sz[i]);
    blk[i] = NULL;
  }
  CHECK(bad == 0);
  pw_lpool_free(p);
}

/* Within a class a resize keeps the block; across classes it moves. */
static void test_in_place(void) {
  pw_lpool *p = pw_lpool_new(1u << 20);
  char *a = pw_lpool_realloc(p, NULL, 0, 20);
  CHECK(a != NULL);
  strcpy(a, "nineteen characters");
  CHECK(pw_lpool_realloc(p, a, 20, 24) == a);
  char *b = pw_lpool_realloc(p, a, 24, 200);
  CHECK(b != a);
  CHECK_STR(b, "nineteen characters");
  char *c = pw_lpool_realloc(p, b, 200, 5000);   /* to malloc */
  CHECK_STR(c, "nineteen characters");
  char *d = pw_lpool_realloc(p, c, 5000, 30);    /* and back */
  CHECK_STR(d, "nineteen characters");
  pw_lpool_release(p, d, 30);
  pw_lpool_free(p);
}

/* A region of 16 slabs (1 MiB): more small blocks than it holds come from
** malloc, and every one keeps its bytes. */
static void test_full_region(void) {
  pw_lpool *p = pw_lpool_new(1);
  enum { M = 40000 };   /* 40,000 x 64 B = 2.5 MB */
  static unsigned char *b[M];
  int bad = 0, got = 0;
  for (int i = 0; i < M; i++) {
    b[i] = pw_lpool_realloc(p, NULL, 0, 64);
    if (!b[i]) { bad++; continue; }
    got++;
    fill(b[i], 64, (unsigned)i);
  }
  for (int i = 0; i < M; i++) {
    if (b[i] && !same(b[i], 64, (unsigned)i)) bad++;
    pw_lpool_release(p, b[i], 64);
  }
  CHECK(got == M);
  CHECK(bad == 0);
  pw_lpool_free(p);
}

/* Pages of the blocks b[0..m) in memory (mincore: exact, and true under
** valgrind, whose own memory would blur the process's RSS). */
static size_t resident_pages(void **b, int m) {
  size_t pg = (size_t)sysconf(_SC_PAGESIZE), n = 0;
  uintptr_t last = 0;
  for (int i = 0; i < m; i++) {
    uintptr_t page = (uintptr_t)b[i] & ~(uintptr_t)(pg - 1);
    unsigned char v = 0;
    if (page == last) continue;
    last = page;
    if (mincore((void *)page, pg, &v) == 0 && (v & 1)) n++;
  }
  return n;
}

/* 48 MiB of 64-byte blocks freed: the pool gives their slabs back. */
static void test_memory_returns(void) {
  pw_lpool *p = pw_lpool_new(64u << 20);
  enum { M = 48 << 14 };   /* 786,432 x 64 B = 12,288 pages */
  void **b = malloc(M * sizeof *b);
  for (int i = 0; i < M; i++) {
    b[i] = pw_lpool_realloc(p, NULL, 0, 64);
    if (b[i]) memset(b[i], 1, 64);
  }
  size_t r1 = resident_pages(b, M);
  for (int i = 0; i < M; i++) pw_lpool_release(p, b[i], 64);
  size_t r2 = resident_pages(b, M);
  printf("pages of the blocks in memory: %zu in use, %zu freed\n", r1, r2);
  CHECK(r1 >= 12000);   /* the blocks were real */
  CHECK(r2 <= 1024);    /* and their slabs went back (the pool keeps 1 MiB of empty slabs) */
  free(b);
  pw_lpool_free(p);
}

static void *lua_on_pool(void *ud, void *ptr, size_t osize, size_t nsize) {
  if (nsize == 0) { pw_lpool_release(ud, ptr, ptr ? osize : 0); return NULL; }
  return pw_lpool_realloc(ud, ptr, osize, nsize);
}

static void test_lua_state(void) {
  pw_lpool *p = pw_lpool_new(64u << 20);
  lua_State *L = lua_newstate(lua_on_pool, p);
  CHECK(L != NULL);
  if (!L) return;
  luaL_openlibs(L);
  const char *src =
    "local t = {} for i = 1, 50000 do t[i] = {i, tostring(i) .. 'x', {i}} end "
    "local s = 0 for i = 1, #t do s = s + t[i][1] + #t[i][2] end "
    "t = nil collectgarbage() return s";
  CHECK(luaL_dostring(L, src) == LUA_OK);
  CHECK(lua_tointeger(L, -1) == 1250025000 + 238894 + 50000);
  lua_close(L);
  pw_lpool_free(p);
}

PW_TEST_MAIN(
  test_random();
  test_in_place();
  test_full_region();
  test_memory_returns();
  test_lua_state();
)
