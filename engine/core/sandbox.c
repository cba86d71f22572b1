/*
** sandbox.c: the restricted Lua state; see sandbox.h.
*/
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <lua-cjson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "lpool.h"
#include "pathwise.h"
#include "sandbox.h"

/* Under ASan the state's blocks come from malloc, so that every one is
** checked (lpool.h carves many from one mapping). */
#if defined(PW_SANITIZE) || defined(__SANITIZE_ADDRESS__)
#define PW_SANDBOX_MALLOC 1
#else
#define PW_SANDBOX_MALLOC 0
#endif

#define HOOK_STEP 1000
#define POOL_REGION ((size_t)16 << 20)
#define PATTERN_MAX_SUBJECT 2048

static void sb_mark_chunk(pw_sandbox *sb);

static pw_sandbox *sb_of(lua_State *L) { return *(pw_sandbox **)lua_getextraspace(L); }

static uint64_t sb_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Has the deadline passed? Sticky once it has. */
static int sb_past_deadline(pw_sandbox *sb) {
  if (sb->deadline_tripped) return 1;
  if (!sb->deadline_ns || sb_now_ns() < sb->deadline_ns) return 0;
  sb->deadline_tripped = 1;
  return 1;
}

/* The state's blocks: from its size-class pools (lpool.h), or plain malloc
** when there is no pool (under the sanitizers, so ASan sees every block). */
static void sb_release(pw_sandbox *sb, void *ptr, size_t osize) {
  if (sb->pool) pw_lpool_release(sb->pool, ptr, osize);
  else free(ptr);
}

static void *sb_realloc(pw_sandbox *sb, void *ptr, size_t osize, size_t nsize) {
  return sb->pool ? pw_lpool_realloc(sb->pool, ptr, osize, nsize) : realloc(ptr, nsize);
}

static void *sb_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  pw_sandbox *sb = ud;
  if (!ptr) osize = 0;
  if (nsize == 0) {
    sb_release(sb, ptr, osize);
    sb->used -= osize;
    return NULL;
  }
  /* a long library call that allocates (concatenation, a growing table)
  ** is stopped here at the deadline: the refusal unwinds it */
  if (nsize > osize && (++sb->alloc_tick & 63) == 0 && sb_past_deadline(sb)) return NULL;
  if (nsize > osize && sb->used + (nsize - osize) > sb->limit) {
    sb->mem_tainted = 1;
    return NULL;
  }
  void *p = sb_realloc(sb, ptr, osize, nsize);
  if (!p) { sb->mem_tainted = 2; return NULL; }   /* the host, not the cap */
  sb->used = sb->used - osize + nsize;
  if (sb->used > sb->peak) sb->peak = sb->used;
  return p;
}

static void sb_count_line(pw_sandbox *sb, lua_State *L, lua_Debug *ar) {
  if (!lua_getinfo(L, "S", ar) || strcmp(ar->source, sb->cov_chunk)) return;
  if (ar->currentline > 0 && ar->currentline < sb->cov_n) sb->cov_counts[ar->currentline]++;
}

static unsigned sb_deadline_ms(const pw_sandbox *sb) {
  return sb->deadline_ms ? sb->deadline_ms : PW_SANDBOX_DEADLINE_MS;
}

static void sb_hook(lua_State *L, lua_Debug *ar);

/* Call sb_hook every `step` VM instructions (and on each new line when
** coverage is on). The Lua of third_party/ counts instructions in the VM
** (lua_setbudget, LUA_BUDGET): no hook runs per instruction, the line
** hook only for coverage. Against another Lua, a count hook, which in 5.4
** makes every instruction go through luaG_traceexec. The accounting is
** the same (see third_party/README.md). step 0: off. */
static void sb_set_count(pw_sandbox *sb, lua_State *L, int step) {
  int line = step && sb->cov_chunk ? LUA_MASKLINE : 0;
#ifdef LUA_BUDGET
  lua_setbudget(L, step ? sb_hook : NULL, step);
  lua_sethook(L, line ? sb_hook : NULL, line, 0);
#else
  lua_sethook(L, step ? sb_hook : NULL, step ? LUA_MASKCOUNT | line : 0, step);
#endif
}

/* From now on every instruction raises again: the script's pcall cannot
** swallow an exhausted budget or a passed deadline. */
static void sb_trip(pw_sandbox *sb, lua_State *L) {
  if (!sb->budget_tripped) {
    sb->budget_tripped = 1;
    sb_set_count(sb, L, 1);
  }
}

/* Raise the budget or deadline error, prefixed with the script line
** running at stack level `level` (0 in the hook: the interrupted
** function; 1 in a library call: its caller). */
static int sb_budget_error(pw_sandbox *sb, lua_State *L, int level, const char *what) {
  char msg[200];
  sb_trip(sb, L);
  if (sb->deadline_tripped)
    snprintf(msg, sizeof msg, "deadline of %u ms exceeded", sb_deadline_ms(sb));
  else if (what)
    snprintf(msg, sizeof msg, "%s exceeds the instruction budget of %llu", what, (unsigned long long)sb->budget);
  else   /* lua_pushfstring knows no %llu */
    snprintf(msg, sizeof msg, "instruction budget of %llu exceeded", (unsigned long long)sb->budget);
  luaL_where(L, level);
  lua_pushstring(L, msg);
  lua_concat(L, 2);
  return lua_error(L);
}

static void sb_hook(lua_State *L, lua_Debug *ar) {
  pw_sandbox *sb = sb_of(L);
  if (ar->event == LUA_HOOKLINE) { sb_count_line(sb, L, ar); return; }
  sb->spent += sb->budget_tripped ? 1 : HOOK_STEP;
  if (sb->spent < sb->budget && !sb->budget_tripped && !sb_past_deadline(sb)) return;
  sb_budget_error(sb, L, 0, NULL);
}

/* Charge work a library call is about to do without running the count
** hook (elements moved, bytes compared, in units of about one
** instruction); raise the budget error, naming the caller's line, when
** it would not fit in what is left. */
static void sb_charge(lua_State *L, double units, const char *what) {
  pw_sandbox *sb = sb_of(L);
  if (!sb->budget) return;   /* outside an evaluation (host code) */
  double left = sb->spent < sb->budget ? (double)(sb->budget - sb->spent) : 0;
  if (units <= left && !sb_past_deadline(sb)) { sb->spent += (uint64_t)units; return; }
  char w[80];
  snprintf(w, sizeof w, "%s (about %.3g units of work)", what, units);
  sb_budget_error(sb, L, 1, w);
}

void pw_sandbox_begin(pw_sandbox *sb, uint64_t instructions) {
  sb->budget = instructions;
  sb->spent = 0;
  sb->budget_tripped = 0;
  sb->mem_tainted = 0;
  sb->deadline_tripped = 0;
  sb->deadline_ns = sb_now_ns() + (uint64_t)sb_deadline_ms(sb) * 1000000ull;
  sb_set_count(sb, sb->L, HOOK_STEP);
}

int pw_sandbox_coverage(pw_sandbox *sb, const char *name, int nlines) {
  free(sb->cov_chunk);
  free(sb->cov_counts);
  sb->cov_n = nlines + 1;
  sb->cov_counts = calloc((size_t)sb->cov_n, sizeof *sb->cov_counts);
  sb->cov_chunk = malloc(strlen(name) + 2);
  if (!sb->cov_counts || !sb->cov_chunk) return -1;
  sb->cov_chunk[0] = '@';
  strcpy(sb->cov_chunk + 1, name);
  return 0;
}

void pw_sandbox_end(pw_sandbox *sb) {
  sb_set_count(sb, sb->L, 0);
  sb->deadline_ns = 0;
  sb->budget = 0;   /* host code after this is not charged */
}

/* ---- replacements for unsafe functions ---- */

static int sb_setmetatable(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  int t = lua_type(L, 2);
  luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
  if (t == LUA_TTABLE) {
    lua_pushliteral(L, "__gc");
    if (lua_rawget(L, 2) != LUA_TNIL)
      return luaL_error(L, "setmetatable: __gc finalizers are not allowed in protocols");
    lua_pop(L, 1);
    lua_pushliteral(L, "__mode");   /* what a weak table holds depends on when the collector ran */
    if (lua_rawget(L, 2) != LUA_TNIL)
      return luaL_error(L, "setmetatable: weak tables (__mode) are not allowed in protocols");
    lua_pop(L, 1);
  }
  if (lua_getmetatable(L, 1)) {
    lua_pushliteral(L, "__metatable");
    if (lua_rawget(L, -2) != LUA_TNIL) return luaL_error(L, "cannot change a protected metatable");
    lua_pop(L, 2);
  }
  lua_settop(L, 2);
  lua_setmetatable(L, 1);
  return 1;
}

/* Refuse patterns whose backtracking in C could run unbounded: at most one
** '*', '+' or '-' quantifier and two '?', on a subject of limited size. */
static int pattern_ok(lua_State *L, int subject, int pattern) {
  size_t sn, pn;
  luaL_checklstring(L, subject, &sn);
  const char *p = luaL_checklstring(L, pattern, &pn);
  int star = 0, opt = 0;
  for (size_t i = 0; i < pn; i++) {
    if (p[i] == '%') { i++; continue; }
    if (p[i] == '[') {           /* skip a set, where quantifiers are literal */
      i++;
      if (i < pn && p[i] == '^') i++;
      if (i < pn && p[i] == ']') i++;
      while (i < pn && p[i] != ']') { if (p[i] == '%') i++; i++; }
      continue;
    }
    if (i == 0) continue;        /* a leading quantifier char is a literal */
    if (p[i] == '*' || p[i] == '+' || p[i] == '-') star++;
    else if (p[i] == '?') opt++;
  }
  if (star > 1 || opt > 2)
    return luaL_error(L, "pattern too complex for the sandbox (at most one of * + - and two ?): '%s'", p);
  if (sn > PATTERN_MAX_SUBJECT)
    return luaL_error(L, "pattern subject too long for the sandbox (%d bytes at most)", PATTERN_MAX_SUBJECT);
  return 1;
}

static int sb_pattern_call(lua_State *L) {
  int plain = lua_toboolean(L, 4) && lua_tointeger(L, lua_upvalueindex(2)) == 1;
  if (!plain) pattern_ok(L, 1, 2);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

static void wrap_pattern(lua_State *L, int strlib, const char *name, int is_find) {
  lua_getfield(L, strlib, name);
  lua_pushinteger(L, is_find);
  lua_pushcclosure(L, sb_pattern_call, 2);
  lua_setfield(L, strlib, name);
}

/* ---- library calls whose work the count hook does not see ---- */

/* Call the original (upvalue 1) with the arguments as given. */
static int sb_call_original(lua_State *L) {
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

/* table.move(a1, f, e [, t [, a2]]): e - f + 1 element moves, even over
** nils that allocate nothing (table.move({}, 1, math.maxinteger - 1, 1, {})) */
static int sb_table_move(lua_State *L) {
  lua_Integer f = luaL_checkinteger(L, 2), e = luaL_checkinteger(L, 3);
  if (e >= f) sb_charge(L, (double)e - (double)f + 1, "table.move");
  return sb_call_original(L);
}

/* string.rep(s, n [, sep]): n copies, even of an empty string. A result
** beyond the memory left fails at once in its first allocation, so only
** one that fits is charged. */
static int sb_string_rep(lua_State *L) {
  size_t l, lsep = 0;
  luaL_checklstring(L, 1, &l);
  lua_Integer n = luaL_checkinteger(L, 2);
  if (lua_type(L, 3) == LUA_TSTRING) lua_tolstring(L, 3, &lsep);
  pw_sandbox *sb = sb_of(L);
  double total = ((double)l + (double)lsep) * (double)n;
  if (n > 0 && total <= (double)(sb->limit - (sb->used < sb->limit ? sb->used : sb->limit)))
    sb_charge(L, (double)n / 16 + total / 1024, "string.rep");
  return sb_call_original(L);
}

/* string.find(s, p, init, true): a plain search compares up to
** (#s - #p + 1) * #p bytes (a megabyte needle over a long haystack);
** pattern searches are bounded by the pattern checks above. */
static int sb_string_find(lua_State *L) {
  size_t hn, nn;
  luaL_checklstring(L, 1, &hn);
  luaL_checklstring(L, 2, &nn);
  if (lua_toboolean(L, 4) && nn > 1 && nn <= hn)
    sb_charge(L, ((double)(hn - nn) + 1) * (double)nn / 256 + (double)hn / 256, "string.find");
  return sb_call_original(L);
}

static void wrap_bounded(lua_State *L, const char *lib, const char *name, lua_CFunction f) {
  lua_getglobal(L, lib);
  lua_getfield(L, -1, name);
  lua_pushcclosure(L, f, 1);
  lua_setfield(L, -2, name);
  lua_pop(L, 1);
}

static void sb_bound_library_calls(lua_State *L) {
  wrap_bounded(L, "table", "move", sb_table_move);
  wrap_bounded(L, "string", "rep", sb_string_rep);
  wrap_bounded(L, "string", "find", sb_string_find);   /* over the pattern check */
}

static int sb_readonly(lua_State *L) {
  return luaL_error(L, "attempt to modify a read-only table or create a global ('%s'; use local)",
                    lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "?");
}

static int sb_undeclared(lua_State *L) {
  return luaL_error(L, "undeclared global '%s' (use local)",
                    lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "?");
}

/* ---- the same iteration order in every process ----
**
** Lua's own next() follows the table's hash layout, which depends on a
** per-state random seed and on addresses: the same protocol could iterate
** the same table in a different order in another process, and so produce
** a different result. Scripts get a pairs and a next that visit keys in
** one fixed order: numbers by value, then strings byte by byte, then false
** and true. Keys of other types (tables, functions) have no such order and
** are refused. The sorting work is charged to the instruction budget. */

typedef struct skey { int rank; lua_Integer i; lua_Number n; int isint; const char *s; size_t len; int pos; } skey;

static int key_rank(lua_State *L, int idx) {
  switch (lua_type(L, idx)) {
  case LUA_TNUMBER: return 0;
  case LUA_TSTRING: return 1;
  case LUA_TBOOLEAN: return 2;
  default: return -1;
  }
}

static void key_read(lua_State *L, int idx, skey *k) {
  memset(k, 0, sizeof *k);
  k->rank = key_rank(L, idx);
  if (k->rank < 0)
    luaL_error(L, "pairs/next: a %s key has no fixed order; iterate a list (ipairs) or use string/number keys",
               luaL_typename(L, idx));
  if (k->rank == 0) {
    k->isint = lua_isinteger(L, idx);
    if (k->isint) k->i = lua_tointeger(L, idx);
    k->n = lua_tonumber(L, idx);
  } else if (k->rank == 1) k->s = lua_tolstring(L, idx, &k->len);
  else k->i = lua_toboolean(L, idx);
}

static int key_cmp(const void *pa, const void *pb) {
  const skey *a = pa, *b = pb;
  if (a->rank != b->rank) return a->rank < b->rank ? -1 : 1;
  if (a->rank == 1) {
    int c = memcmp(a->s, b->s, a->len < b->len ? a->len : b->len);
    return c ? c : (a->len > b->len) - (a->len < b->len);
  }
  if (a->rank == 0 && a->isint && b->isint) return (a->i > b->i) - (a->i < b->i);
  if (a->rank == 0 && a->n != b->n) return a->n < b->n ? -1 : 1;
  if (a->rank == 0) return (b->isint - a->isint);   /* 1 before 1.0: never both keys, but total */
  return (int)(a->i - b->i);
}

static int sb_sorted_next(lua_State *L) {   /* upvalues: sorted keys, position, table */
  lua_Integer i = lua_tointeger(L, lua_upvalueindex(2));
  lua_Integer n = (lua_Integer)lua_rawlen(L, lua_upvalueindex(1));
  while (i < n) {
    i++;
    lua_rawgeti(L, lua_upvalueindex(1), i);
    lua_pushvalue(L, -1);
    if (lua_rawget(L, lua_upvalueindex(3)) != LUA_TNIL) {   /* removed during the loop: skipped */
      lua_pushinteger(L, i);
      lua_replace(L, lua_upvalueindex(2));
      return 2;
    }
    lua_pop(L, 2);
  }
  lua_pushinteger(L, n);
  lua_replace(L, lua_upvalueindex(2));
  return 0;
}

/* Push an iterator over the table at idx, keys in the fixed order. */
static void push_sorted_iter(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  size_t n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) { lua_pop(L, 1); n++; }
  skey *keys = lua_newuserdatauv(L, (n ? n : 1) * sizeof *keys, 0);
  int kidx = lua_gettop(L);
  lua_createtable(L, (int)n, 0);   /* keys, then sorted in place */
  int tidx = lua_gettop(L);
  size_t k = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    key_read(L, -1, &keys[k]);
    keys[k].pos = (int)k + 1;
    lua_pushvalue(L, -1);
    lua_rawseti(L, tidx, (lua_Integer)++k);   /* anchors the key (and its string) */
  }
  qsort(keys, n, sizeof *keys, key_cmp);
  sb_charge(L, (double)n * 4 + 1, "pairs");
  lua_createtable(L, (int)n, 0);
  for (size_t j = 0; j < n; j++) {
    lua_rawgeti(L, tidx, keys[j].pos);
    lua_rawseti(L, -2, (lua_Integer)j + 1);
  }
  lua_pushinteger(L, 0);
  lua_pushvalue(L, idx);
  lua_pushcclosure(L, sb_sorted_next, 3);
  lua_replace(L, kidx);
  lua_settop(L, kidx);
}

static int sb_pairs(lua_State *L) {
  luaL_checkany(L, 1);
  if (luaL_getmetafield(L, 1, "__pairs") != LUA_TNIL) {   /* facts views, read-only proxies */
    lua_pushvalue(L, 1);
    lua_call(L, 1, 3);
    return 3;
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  push_sorted_iter(L, 1);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

/* next(t, k): the key after k in the fixed order (one pass, no sorting). */
static int sb_next(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 2);
  skey after, best, cur;
  int have_after = !lua_isnil(L, 2), have_best = 0;
  if (have_after) key_read(L, 2, &after);
  uint64_t n = 0;
  lua_pushnil(L);   /* best key at 3 after the loop */
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    lua_pop(L, 1);
    n++;
    key_read(L, -1, &cur);
    if (have_after && key_cmp(&cur, &after) <= 0) continue;
    if (have_best && key_cmp(&cur, &best) >= 0) continue;
    best = cur;
    have_best = 1;
    lua_pushvalue(L, -1);
    lua_replace(L, 3);
  }
  sb_charge(L, (double)n + 1, "next");
  if (!have_best) { lua_pushnil(L); return 1; }
  lua_pushvalue(L, 3);
  lua_pushvalue(L, 3);
  lua_rawget(L, 1);
  return 2;
}

static int sb_pairs_proxy(lua_State *L) {   /* pairs over a read-only proxy */
  lua_getmetatable(L, 1);
  lua_getfield(L, -1, "__index");
  push_sorted_iter(L, -1);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

/* tostring without addresses: "table", "function", unless __tostring says more. */
static int sb_tostring(lua_State *L) {
  luaL_checkany(L, 1);
  int t = lua_type(L, 1);
  int addressed = t == LUA_TTABLE || t == LUA_TFUNCTION || t == LUA_TUSERDATA || t == LUA_TTHREAD ||
                  t == LUA_TLIGHTUSERDATA;
  if (addressed && luaL_getmetafield(L, 1, "__tostring") == LUA_TNIL) {
    lua_pushstring(L, t == LUA_TLIGHTUSERDATA && !lua_touserdata(L, 1) ? "null" : lua_typename(L, t));
    return 1;
  }
  lua_settop(L, 1);
  luaL_tolstring(L, 1, NULL);
  return 1;
}

/* string.format: no %p (an address), and %s of a table or function says its type, never its address. */
static int sb_format(lua_State *L) {
  size_t n;
  const char *f = luaL_checklstring(L, 1, &n);
  for (size_t i = 0; i + 1 < n; i++) {
    if (f[i] != '%') continue;
    size_t j = i + 1;
    while (j < n && strchr("-+ #0123456789.", f[j])) j++;
    if (j < n && f[j] == 'p') return luaL_error(L, "string.format: %%p (an address) is not available in the sandbox");
    i = j;
  }
  int top = lua_gettop(L);
  for (int a = 2; a <= top; a++) {
    int t = lua_type(L, a);
    if (t == LUA_TTABLE || t == LUA_TFUNCTION || t == LUA_TUSERDATA || t == LUA_TTHREAD || t == LUA_TLIGHTUSERDATA) {
      lua_pushcfunction(L, sb_tostring);
      lua_pushvalue(L, a);
      lua_call(L, 1, 1);
      lua_replace(L, a);
    }
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, top, 1);
  return 1;
}

static int sb_len_proxy(lua_State *L) {
  lua_getmetatable(L, 1);
  lua_getfield(L, -1, "__index");
  lua_pushinteger(L, (lua_Integer)lua_rawlen(L, -1));
  return 1;
}

void pw_sandbox_readonly(lua_State *L) {
  lua_newtable(L);                 /* proxy */
  lua_createtable(L, 0, 5);        /* its metatable */
  lua_pushcfunction(L, sb_len_proxy);
  lua_setfield(L, -2, "__len");
  lua_pushvalue(L, -3);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, sb_readonly);
  lua_setfield(L, -2, "__newindex");
  lua_pushcfunction(L, sb_pairs_proxy);
  lua_setfield(L, -2, "__pairs");
  lua_pushliteral(L, "locked");
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
  lua_remove(L, -2);
}

static const char *const base_allowed[] = {
  "assert", "error", "ipairs", "next", "pairs", "pcall", "select", "tonumber",
  "tostring", "type", "rawequal", "rawlen", "rawget", "getmetatable", "_VERSION", NULL};

static int sb_setup(lua_State *L) {
  pw_sandbox *sb = lua_touserdata(L, 1);
  luaL_requiref(L, "_G", luaopen_base, 1);
  luaL_requiref(L, "string", luaopen_string, 1);
  luaL_requiref(L, "table", luaopen_table, 1);
  luaL_requiref(L, "math", luaopen_math, 1);
  luaL_requiref(L, "utf8", luaopen_utf8, 1);
  luaL_requiref(L, "cjson", luaopen_cjson, 1);   /* for the host; scripts get none */
  lua_pop(L, 6);

  /* Harden the real string library, which the string metatable serves. */
  lua_getglobal(L, "string");
  int strlib = lua_gettop(L);
  lua_pushnil(L);
  lua_setfield(L, strlib, "dump");
  wrap_pattern(L, strlib, "find", 1);
  wrap_pattern(L, strlib, "match", 0);
  wrap_pattern(L, strlib, "gmatch", 0);
  wrap_pattern(L, strlib, "gsub", 0);
  lua_getfield(L, strlib, "format");
  lua_pushcclosure(L, sb_format, 1);
  lua_setfield(L, strlib, "format");
  sb_bound_library_calls(L);
  lua_pushliteral(L, "");
  lua_getmetatable(L, -1);
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");     /* getmetatable('') is false */
  lua_pop(L, 2);

  lua_getglobal(L, "math");
  lua_pushnil(L);
  lua_setfield(L, -2, "random");
  lua_pushnil(L);
  lua_setfield(L, -2, "randomseed");
  lua_pop(L, 1);

  /* The allowed globals, each library a read-only proxy. */
  lua_newtable(L);
  int libs = lua_gettop(L);
  for (int i = 0; base_allowed[i]; i++) {
    lua_getglobal(L, base_allowed[i]);
    lua_setfield(L, libs, base_allowed[i]);
  }
  lua_pushcfunction(L, sb_setmetatable);
  lua_setfield(L, libs, "setmetatable");
  lua_pushcfunction(L, sb_pairs);   /* the same order in every process */
  lua_setfield(L, libs, "pairs");
  lua_pushcfunction(L, sb_next);
  lua_setfield(L, libs, "next");
  lua_pushcfunction(L, sb_tostring);
  lua_setfield(L, libs, "tostring");
  const char *const libnames[] = {"string", "table", "math", "utf8"};
  for (int i = 0; i < 4; i++) {
    lua_getglobal(L, libnames[i]);
    pw_sandbox_readonly(L);
    lua_setfield(L, libs, libnames[i]);
  }
  lua_pushlightuserdata(L, NULL);     /* cjson's null, for example facts */
  lua_setfield(L, libs, "null");
  /* A read of anything else is an error. Environments index this table
  ** directly, so a global read costs a table lookup, not a C call. */
  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, sb_undeclared);
  lua_setfield(L, -2, "__index");
  lua_pushliteral(L, "locked");
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, libs);
  sb->libs_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

static int sb_panic(lua_State *L) {
  (void)L;
  abort();   /* an unprotected error is a bug in pathwise; never continue */
  return 0;
}

int pw_sandbox_init(pw_sandbox *sb, size_t memory, char *err, size_t errlen) {
  memset(sb, 0, sizeof *sb);
  sb->limit = memory;
#if !PW_SANDBOX_MALLOC
  /* the region is address space, which a worker's RLIMIT_AS counts: at
  ** most 16 MiB of it per state (a state's small blocks are a few MiB;
  ** beyond the region they come from malloc) */
  sb->pool = pw_lpool_new(memory < POOL_REGION ? memory : POOL_REGION);   /* NULL: plain malloc */
#endif
  sb->L = lua_newstate(sb_alloc, sb);
  if (!sb->L) {
    pw_lpool_free(sb->pool);
    sb->pool = NULL;
    snprintf(err, errlen, "cannot create a Lua state: out of memory (cap %zu bytes)", memory); return -1; }
  *(pw_sandbox **)lua_getextraspace(sb->L) = sb;
  lua_atpanic(sb->L, sb_panic);
  lua_gc(sb->L, LUA_GCGEN, 0, 0);
  lua_pushcfunction(sb->L, sb_setup);
  lua_pushlightuserdata(sb->L, sb);
  if (lua_pcall(sb->L, 1, 0, 0) != LUA_OK) {
    snprintf(err, errlen, "cannot set up the sandbox: %s",
             lua_type(sb->L, -1) == LUA_TSTRING ? lua_tostring(sb->L, -1) : "error");
    lua_close(sb->L);
    sb->L = NULL;
    pw_lpool_free(sb->pool);
    sb->pool = NULL;
    return -1;
  }
  return 0;
}

void pw_sandbox_close(pw_sandbox *sb) {
  if (!sb->L) return;
  sb_set_count(sb, sb->L, 0);
  lua_close(sb->L);
  sb->L = NULL;
  pw_lpool_free(sb->pool);   /* after lua_close: every block is back */
  sb->pool = NULL;
  free(sb->cov_chunk);
  free(sb->cov_counts);
  sb->cov_chunk = NULL;
  sb->cov_counts = NULL;
}

/* A fresh environment: an empty table reading from the allowed globals,
** refusing new globals and reads of undeclared ones. */
static void push_env(lua_State *L, int libs_ref) {
  lua_newtable(L);
  lua_createtable(L, 0, 3);
  lua_rawgeti(L, LUA_REGISTRYINDEX, libs_ref);   /* undeclared names raise */
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, sb_readonly);
  lua_setfield(L, -2, "__newindex");
  lua_pushliteral(L, "locked");
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
}

int pw_sandbox_load(pw_sandbox *sb, const char *name, const char *src, size_t len,
                    char *err, size_t errlen) {
  lua_State *L = sb->L;
  char chunk[300];
  snprintf(chunk, sizeof chunk, "@%s", name);
  if (!lua_checkstack(L, 8)) { snprintf(err, errlen, "Lua stack exhausted"); return PW_EINTERNAL; }
  sb->mem_tainted = 0;
  int rc = luaL_loadbufferx(L, src, len, chunk, "t");
  if (rc != LUA_OK) {
    snprintf(err, errlen, "%s", lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "cannot load");
    lua_pop(L, 1);
    return rc == LUA_ERRMEM ? PW_EMEMORY : PW_EPROTOCOL;
  }
  push_env(L, sb->libs_ref);
  lua_setupvalue(L, -2, 1);   /* the chunk's _ENV */
  sb_mark_chunk(sb);
  return PW_OK;
}

static void error_text(lua_State *L, char *err, size_t errlen) {
  int t = lua_type(L, -1);
  if (t == LUA_TSTRING || t == LUA_TNUMBER) {
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);   /* no metamethods for these */
    snprintf(err, errlen, "%.*s", (int)(n > 400 ? 400 : n), s);
  } else
    snprintf(err, errlen, "script raised an error object that is not a string (a %s value)", lua_typename(L, t));
}


/* ---- known-good state: snapshot and restore of upvalues ---- */

static char sb_nil_mark;   /* stands for nil in a snapshot */

#define SNAP_DEPTH 64

/* Record the upvalues of the closure at fi (each shared cell once), then
** walk their values. Stack: seen at seen, snapshot at snap (weak keys:
** closure -> {[i] = value}), envs at envs (list of {closure, i, env}). */
static void snap_value(lua_State *L, int v, int seen, int snap, int envs, int depth);

static void snap_closure(lua_State *L, int fi, int seen, int snap, int envs, int depth) {
  lua_createtable(L, 0, 0);
  int rec = lua_gettop(L), any = 0;
  for (int i = 1;; i++) {
    const char *name = lua_getupvalue(L, fi, i);
    if (!name) break;
    lua_pushlightuserdata(L, lua_upvalueid(L, fi, i));
    if (lua_rawget(L, seen) != LUA_TNIL) { lua_pop(L, 2); continue; }   /* cell done */
    lua_pop(L, 1);
    lua_pushlightuserdata(L, lua_upvalueid(L, fi, i));
    lua_pushboolean(L, 1);
    lua_rawset(L, seen);
    int val = lua_gettop(L);
    if (lua_isnil(L, val)) lua_pushlightuserdata(L, &sb_nil_mark); else lua_pushvalue(L, val);
    lua_rawseti(L, rec, i);
    any = 1;
    if (!strcmp(name, "_ENV")) {   /* checked after every call */
      lua_createtable(L, 3, 0);
      lua_pushvalue(L, fi); lua_rawseti(L, -2, 1);
      lua_pushinteger(L, i); lua_rawseti(L, -2, 2);
      lua_pushvalue(L, val); lua_rawseti(L, -2, 3);
      lua_rawseti(L, envs, (lua_Integer)lua_rawlen(L, envs) + 1);
    }
    snap_value(L, val, seen, snap, envs, depth + 1);
    lua_pop(L, 1);
  }
  if (any) { lua_pushvalue(L, fi); lua_pushvalue(L, rec); lua_rawset(L, snap); }
  lua_pop(L, 1);
}

static void snap_value(lua_State *L, int v, int seen, int snap, int envs, int depth) {
  int t = lua_type(L, v);
  if ((t != LUA_TFUNCTION && t != LUA_TTABLE) || (t == LUA_TFUNCTION && lua_iscfunction(L, v)) ||
      depth > SNAP_DEPTH)
    return;
  luaL_checkstack(L, 12, "snapshot");
  lua_pushvalue(L, v);
  if (lua_rawget(L, seen) != LUA_TNIL) { lua_pop(L, 1); return; }
  lua_pop(L, 1);
  lua_pushvalue(L, v);
  lua_pushboolean(L, 1);
  lua_rawset(L, seen);
  if (t == LUA_TFUNCTION) { snap_closure(L, v, seen, snap, envs, depth); return; }
  lua_pushnil(L);
  while (lua_next(L, v)) {   /* raw: no metamethods run */
    snap_value(L, lua_gettop(L) - 1, seen, snap, envs, depth + 1);
    snap_value(L, lua_gettop(L), seen, snap, envs, depth + 1);
    lua_pop(L, 1);
  }
  if (lua_getmetatable(L, v)) {
    snap_value(L, lua_gettop(L), seen, snap, envs, depth + 1);
    lua_pop(L, 1);
  }
}

/* (protected) snapshot what the chunk returned: arguments 1..n. */
static int sb_snapshot(lua_State *L) {
  pw_sandbox *sb = lua_touserdata(L, 1);
  int n = lua_gettop(L);
  lua_newtable(L);
  int seen = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, sb->snap_ref);
  lua_rawgeti(L, LUA_REGISTRYINDEX, sb->envs_ref);
  for (int i = 2; i <= n; i++) snap_value(L, i, seen, seen + 1, seen + 2, 0);
  return 0;
}

/* Weak-keyed table in the registry (closures that are gone drop out). */
static int sb_weak_table(lua_State *L, const char *mode) {
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushstring(L, mode);
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  return luaL_ref(L, LUA_REGISTRYINDEX);
}

static int sb_restore_all(lua_State *L) {
  pw_sandbox *sb = lua_touserdata(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, sb->snap_ref);
  lua_pushnil(L);
  while (lua_next(L, 2)) {   /* closure -> {[i] = value} */
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      if (lua_touserdata(L, -1) == &sb_nil_mark) { lua_pop(L, 1); lua_pushnil(L); }
      lua_setupvalue(L, -4, (int)lua_tointeger(L, -2));
    }
    lua_pop(L, 1);
  }
  return 0;
}

void pw_sandbox_restore(pw_sandbox *sb) {
  lua_State *L = sb->L;
  if (sb->snap_ref == LUA_NOREF || sb->snap_ref == 0) return;
  lua_pushcfunction(L, sb_restore_all);
  lua_pushlightuserdata(L, sb);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) { lua_pop(L, 1); return; }   /* retried next call */
  sb->restore_pending = 0;
}

/* Did a call change an _ENV cell? (a legitimate script never assigns _ENV) */
static int sb_env_changed(pw_sandbox *sb) {
  lua_State *L = sb->L;
  if (!sb->envs_ref || sb->envs_ref == LUA_NOREF || !lua_checkstack(L, 6)) return 0;
  int changed = 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, sb->envs_ref);
  lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
  for (lua_Integer k = 1; k <= n && !changed; k++) {
    lua_rawgeti(L, -1, k);
    lua_rawgeti(L, -1, 1);
    lua_rawgeti(L, -2, 2);
    int i = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (lua_getupvalue(L, -1, i)) {
      lua_rawgeti(L, -3, 3);
      changed = !lua_rawequal(L, -1, -2);
      lua_pop(L, 2);
    }
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
  return changed;
}

/* After a chunk from pw_sandbox_load returned nresults values (on the
** stack top): snapshot them as the known-good state. */
static void sb_snapshot_results(pw_sandbox *sb, int nresults) {
  lua_State *L = sb->L;
  if (nresults <= 0 || !lua_checkstack(L, nresults + 4)) return;
  if (!sb->snap_ref) { sb->snap_ref = sb_weak_table(L, "k"); sb->envs_ref = sb_weak_table(L, "v"); }
  int top = lua_gettop(L);
  lua_pushcfunction(L, sb_snapshot);
  lua_pushlightuserdata(L, sb);
  for (int i = top - nresults + 1; i <= top; i++) lua_pushvalue(L, i);
  if (lua_pcall(L, nresults + 1, 0, 0) != LUA_OK) lua_pop(L, 1);   /* out of memory: no snapshot */
}

/* Is the function about to be called a chunk pw_sandbox_load made? */
static int sb_is_chunk(pw_sandbox *sb, int fidx) {
  lua_State *L = sb->L;
  if (!sb->chunks_ref) return 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, sb->chunks_ref);
  lua_pushvalue(L, fidx);
  int is = lua_rawget(L, -2) != LUA_TNIL;
  lua_pop(L, 2);
  return is;
}

static void sb_mark_chunk(pw_sandbox *sb) {
  lua_State *L = sb->L;
  if (!sb->chunks_ref) sb->chunks_ref = sb_weak_table(L, "k");
  lua_rawgeti(L, LUA_REGISTRYINDEX, sb->chunks_ref);
  lua_pushvalue(L, -2);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

/* A deep recursion leaves a 16 MB stack and 200,000 CallInfos behind;
** each full collection frees half of the unused CallInfos, so collect
** until the heap is back near where the call began or stops shrinking. */
static void sb_settle(pw_sandbox *sb) {
  size_t slack = 1u << 20;
  for (int i = 0; i < 32 && sb->used > sb->used_before + slack; i++) {
    size_t was = sb->used;
    lua_gc(sb->L, LUA_GCCOLLECT);
    if (sb->used >= was - was / 64) break;
  }
}

int pw_sandbox_raise_oom(lua_State *L, const char *what) {
  sb_of(L)->mem_tainted = 2;
  return luaL_error(L, "%s: out of memory", what);
}

/* The budget or deadline error: the raised message when it is ours (it
** names the script line: "file.lua:6: deadline of 10000 ms exceeded"),
** else the plain statement. */
static void sb_budget_text(pw_sandbox *sb, char *err, size_t errlen, uint64_t instructions) {
  const char *s = lua_type(sb->L, -1) == LUA_TSTRING ? lua_tostring(sb->L, -1) : NULL;
  if (s && (strstr(s, "deadline of ") || strstr(s, "instruction budget of ")) && strlen(s) < 400)
    snprintf(err, errlen, "%s", s);
  else if (sb->deadline_tripped)
    snprintf(err, errlen, "deadline of %u ms exceeded", sb_deadline_ms(sb));
  else
    snprintf(err, errlen, "instruction budget of %llu exceeded", (unsigned long long)instructions);
}

int pw_sandbox_pcall(pw_sandbox *sb, int nargs, int nresults, uint64_t instructions,
                     char *err, size_t errlen) {
  if (sb->restore_pending) pw_sandbox_restore(sb);
  int chunk = sb_is_chunk(sb, lua_gettop(sb->L) - nargs);
  sb->used_before = sb->used;
  pw_sandbox_begin(sb, instructions);
  int rc = lua_pcall(sb->L, nargs, nresults, 0);
  pw_sandbox_end(sb);
  if (rc != LUA_OK || sb->budget_tripped || sb->deadline_tripped || sb->mem_tainted || sb_env_changed(sb))
    sb->restore_pending = 1;
  if (rc != LUA_OK) sb_settle(sb);
  else if (chunk && !sb->budget_tripped && !sb->deadline_tripped && !sb->mem_tainted)
    sb_snapshot_results(sb, nresults);
  if (sb->budget_tripped || sb->deadline_tripped) {
    if (rc != LUA_OK) sb_budget_text(sb, err, errlen, instructions);
    else snprintf(err, errlen, "instruction budget of %llu exceeded", (unsigned long long)instructions);
    if (rc != LUA_OK) lua_pop(sb->L, 1); else lua_pop(sb->L, nresults);
    return PW_EBUDGET;
  }
  if (sb->mem_tainted) {
    const char *m = rc != LUA_OK && lua_type(sb->L, -1) == LUA_TSTRING ? lua_tostring(sb->L, -1) : NULL;
    if (sb->mem_tainted == 2 && m && strstr(m, ": out of memory") && strlen(m) < 300) snprintf(err, errlen, "%s", m);
    else if (sb->mem_tainted == 2) snprintf(err, errlen, "out of memory (the host refused an allocation)");
    else snprintf(err, errlen, "memory cap of %zu bytes reached", sb->limit);
    if (rc != LUA_OK) lua_pop(sb->L, 1); else lua_pop(sb->L, nresults);
    lua_gc(sb->L, LUA_GCCOLLECT);
    return PW_EMEMORY;
  }
  if (rc != LUA_OK) {
    error_text(sb->L, err, errlen);
    lua_pop(sb->L, 1);
    return rc == LUA_ERRMEM ? PW_EMEMORY : PW_EPROTOCOL;
  }
  return PW_OK;
}

int pw_sandbox_json_decoder(lua_State *L) {
  lua_getglobal(L, "cjson");   /* loaded for the host by pw_sandbox_init; scripts never see it */
  lua_getfield(L, -1, "new");
  lua_call(L, 0, 1);
  lua_getfield(L, -1, "decode_invalid_numbers");
  lua_pushboolean(L, 0);
  lua_call(L, 1, 0);
  lua_getfield(L, -1, "decode_max_depth");
  lua_pushinteger(L, 64);
  lua_call(L, 1, 0);
  lua_getfield(L, -1, "decode");
  int ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pop(L, 2);
  return ref;
}
