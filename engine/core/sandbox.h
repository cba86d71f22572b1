/*
** sandbox.h: a Lua state fit for untrusted protocol scripts.
**
** The state has a capped allocator (small blocks from size-class pools
** freed with the state, see lpool.h; a refused allocation taints the
** current evaluation even if the script catches the error), an
** instruction budget checked every 1,000 VM instructions (counted in the
** VM by the Lua of third_party/, else by a count hook) that turns sticky
** once spent (the
** script's own pcall cannot swallow it), and a locked string metatable.
** Scripts run in an allow-listed, write-protected _ENV: no io, os, debug,
** package, require, load, dofile, collectgarbage, xpcall (its handler runs
** with hooks off), coroutine, string.dump or math.random; setmetatable
** refuses __gc (a looping finalizer would hang lua_close); pattern
** functions refuse patterns whose backtracking could run unbounded in C.
*/
#ifndef PW_SANDBOX_H
#define PW_SANDBOX_H

#include <lua.h>
#include <stddef.h>
#include <stdint.h>

struct pw_lpool;

typedef struct pw_sandbox {
  lua_State *L;
  struct pw_lpool *pool;     /* the state's small blocks (lpool.h); NULL: malloc */
  size_t used, limit;
  size_t peak;               /* most bytes used since the caller last reset it */
  int mem_tainted;           /* an allocation was refused since begin */
  uint64_t budget, spent;
  int budget_tripped;
  int libs_ref;              /* registry: table of allowed globals */
  /* line coverage of one chunk (off when cov_chunk is NULL) */
  char *cov_chunk;           /* "@path" of the chunk to count */
  uint32_t *cov_counts;      /* cov_counts[line], line < cov_n */
  int cov_n;
  /* wall-clock deadline of one pw_sandbox_begin..end, checked in the count
  ** hook and every 64th allocation; library calls whose work would not
  ** show in either (table.move, string.rep, a plain string.find) charge
  ** their work to the instruction budget before they run */
  unsigned deadline_ms;      /* 0 = PW_SANDBOX_DEADLINE_MS */
  uint64_t deadline_ns;      /* CLOCK_MONOTONIC_COARSE; 0 = off */
  int deadline_tripped;
  unsigned alloc_tick;
  /* known-good state: the upvalues of the closures a loaded chunk returned
  ** (see pw_sandbox_restore) */
  int chunks_ref, snap_ref, envs_ref;   /* registry; LUA_NOREF before set-up */
  int restore_pending;       /* an error or a changed _ENV since the last restore */
  size_t used_before;        /* heap at the start of the current call */
} pw_sandbox;

#define PW_SANDBOX_DEADLINE_MS 10000u

/* Count executed lines of the chunk loaded under name (see pw_sandbox_load).
** Returns -1 when out of memory. */
int pw_sandbox_coverage(pw_sandbox *sb, const char *name, int nlines);

int pw_sandbox_init(pw_sandbox *sb, size_t memory, char *err, size_t errlen);
void pw_sandbox_close(pw_sandbox *sb);

/* Arm the budget for one run of script code; end disarms it. */
void pw_sandbox_begin(pw_sandbox *sb, uint64_t instructions);
void pw_sandbox_end(pw_sandbox *sb);

/* Load a script as text only, with a fresh protected _ENV, and push the
** chunk. extra_idx, if not 0, is a table whose fields are added to _ENV. */
int pw_sandbox_load(pw_sandbox *sb, const char *name, const char *src, size_t len,
                    char *err, size_t errlen);

/* pcall under the budget and the deadline; on error leaves a message in
** err (never calls a metamethod on the error object; a budget or deadline
** error names the script line it stopped). Returns a pw_status: an
** exhausted budget or a passed deadline is PW_EBUDGET. */
int pw_sandbox_pcall(pw_sandbox *sb, int nargs, int nresults, uint64_t instructions,
                     char *err, size_t errlen);

/* Put back every upvalue of every Lua closure reachable from what a chunk
** loaded by pw_sandbox_load returned (its _ENV, its local helpers and
** tables), as it was when the chunk returned: a script that set _ENV = nil
** or reassigned a helper cannot poison later evaluations. The sandbox does
** it by itself before the next call after an error or after a call that
** changed an _ENV; a caller may also do it at the start of each
** evaluation. (The contents of tables are not restored.) */
void pw_sandbox_restore(pw_sandbox *sb);

/* Raise "WHAT: out of memory" from a C function the script called when the
** host refused an allocation: the call then fails as PW_EMEMORY (the
** script's pcall cannot turn it into a success), not as a protocol error. */
int pw_sandbox_raise_oom(lua_State *L, const char *what);

/* Replace the table at the top of the stack by a read-only proxy of it
** (reads, #, pairs and ipairs work; writes raise an error). */
void pw_sandbox_readonly(lua_State *L);

/* A registry reference to the decode function of a private cjson
** instance, strict on numbers (no NaN/Infinity) and 64 levels deep, for
** the host only. Call inside a protected call: it allocates. */
int pw_sandbox_json_decoder(lua_State *L);

#endif
