/*
** examples.c: `pathwise check`: run the example cases a protocol declares
** and compare each result with what the example expects; and the safety
** rule table written for people and programs.
*/
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "error.h"
#include "knowledge.h"
#include "runtime.h"
#include "jsonw.h"
#include "safety.h"

/* ---- example cases declared by the protocol ----
** An example is {name = "...", facts = {...}, expect = {...}}. Nothing in
** it may be misspelt without notice: an unknown key, a value of the wrong
** type, or an id that is not an id pathwise knows (pw_knowledge_resolve;
** for `missing`, a fact path) fails the example, so a check cannot pass
** because it checked nothing. expect's keys:
**   applicable     true|false
**   pathway        the pathway name
**   recommend      ids recommended by the protocol (not blocked)
**   not_recommend  ids not recommended
**   blocked        ids blocked (by the kernel or a plugin)
**   missing        fact paths reported missing
**   preferred      ids recommended with preferred = true
**   strength       {[id] = "recommended"|"consider"|...}: recommended with it
**   order          ids recommended, in this order (others may come between)
*/

static const char *const example_keys[] = {"name", "facts", "expect", NULL};
static const char *const expect_keys[] = {
  "applicable", "pathway", "recommend", "not_recommend", "blocked", "missing",
  "preferred", "strength", "order", NULL};

typedef struct check {
  pw_engine *e;
  pw_buf *out;
  const char *name;   /* of the example */
  int fails;
} check;

static void check_fail(check *c, const char *fmt, const char *a, const char *b) {
  pw_buf_addf(c->out, "FAIL %s: ", c->name);
  pw_buf_addf(c->out, fmt, a, b);
  pw_buf_adds(c->out, "\n");
  c->fails++;
}

/* The protocol's recommendation with this id (not blocked), or NULL. */
static const pw_item *recommended(const pw_result *r, const char *id) {
  for (int i = 0; i < r->items.n; i++) {
    const pw_item *it = &r->items.v[i];
    if (!strcmp(it->id, id) && pw_item_recommended(it)) return it;
  }
  return NULL;
}

static int has_blocked(const pw_result *r, const char *id) {
  for (int i = 0; i < r->items.n; i++)
    if (r->items.v[i].blocked && !strcmp(r->items.v[i].id, id)) return 1;
  return 0;
}

static int has_missing(const pw_result *r, const char *fact) {
  for (int i = 0; i < r->missing.n; i++)
    if (!strcmp(r->missing.v[i].fact, fact)) return 1;
  return 0;
}

static int known_key(const char *const *keys, const char *k) {
  for (; *keys; keys++)
    if (!strcmp(*keys, k)) return 1;
  return 0;
}

/* Every key of the table at idx is one of keys; say which is not. */
static void check_keys(check *c, int idx, const char *const *keys, const char *what) {
  lua_State *L = c->e->sb.L;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "(not a name)";
    if (!known_key(keys, k)) check_fail(c, "%s has unknown key '%s'", what, k);
  }
}

/* Is id (in expect.key) an id pathwise knows? A fact path for `missing`. */
static int known_id(check *c, const char *key, const char *id) {
  char why[PW_KNOWLEDGE_MSG], buf[8];
  uint32_t agents;
  int action;
  pw_kind kind;
  if (!strcmp(key, "missing")) {
    if (pw_facts_describe(&c->e->facts, id, buf, sizeof buf)) return 1;
    check_fail(c, "expect.missing: '%s' is not a fact path pathwise knows%s", id, "");
    return 0;
  }
  if (!pw_knowledge_resolve(id, &agents, &action, &kind, why, sizeof why)) return 1;
  pw_buf_addf(c->out, "FAIL %s: expect.%s: %s\n", c->name, key, why);
  c->fails++;
  return 0;
}

/* Does expect.<key>'s id hold in the result? */
static int holds(const pw_result *r, const char *key, const char *id) {
  const pw_item *it = recommended(r, id);
  if (!strcmp(key, "recommend")) return it != NULL;
  if (!strcmp(key, "not_recommend")) return it == NULL;
  if (!strcmp(key, "preferred")) return it && it->preferred;
  if (!strcmp(key, "blocked")) return has_blocked(r, id);
  return has_missing(r, id);
}

/* expect.<key>: a list of ids, each known and each holding. The list is
** left on the stack (for `order`); nil when absent. */
static void expect_list(check *c, int expect, const char *key) {
  lua_State *L = c->e->sb.L;
  lua_pushstring(L, key);
  int t = lua_rawget(L, expect);
  if (t == LUA_TNIL) return;
  if (t != LUA_TTABLE) { check_fail(c, "expect.%s must be a list of ids%s", key, ""); return; }
  int n = (int)lua_rawlen(L, -1), count = 0;
  lua_pushnil(L);
  while (lua_next(L, -2)) { count++; lua_pop(L, 1); }
  if (count != n) check_fail(c, "expect.%s must be a list of ids, not a table with names%s", key, "");
  for (int i = 1; i <= n; i++) {
    char at[16];
    snprintf(at, sizeof at, "%d", i);
    if (lua_rawgeti(L, -1, i) != LUA_TSTRING) check_fail(c, "expect.%s: entry %s is not a string", key, at);
    else {
      const char *id = lua_tostring(L, -1);
      if (known_id(c, key, id) && strcmp(key, "order") && !holds(&c->e->res, key, id))
        check_fail(c, "expect.%s '%s' does not hold", key, id);
    }
    lua_pop(L, 1);
  }
}

/* Position of id among the recommendations, or -1. */
static int rec_index(const pw_result *r, const char *id) {
  for (int i = 0, k = 0; i < r->items.n; i++) {
    const pw_item *it = &r->items.v[i];
    if (it->blocked || it->source != PW_SRC_PROTOCOL) continue;
    if (!strcmp(it->id, id)) return k;
    k++;
  }
  return -1;
}

/* expect.order: the ids are recommended in this order. */
static void expect_order(check *c, int expect) {
  lua_State *L = c->e->sb.L;
  int fails = c->fails;
  expect_list(c, expect, "order");
  if (!lua_istable(L, -1)) { lua_pop(L, 1); return; }
  int n = (int)lua_rawlen(L, -1), last = -1;
  for (int i = 1; i <= n && c->fails == fails; i++) {
    lua_rawgeti(L, -1, i);
    const char *id = lua_tostring(L, -1);
    int at = rec_index(&c->e->res, id);
    if (at < 0) check_fail(c, "expect.order: '%s' is not recommended%s", id, "");
    else if (at < last) check_fail(c, "expect.order: '%s' comes before the id listed before it%s", id, "");
    last = at;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/* expect.strength: {[id] = strength}. */
static void expect_strength(check *c, int expect) {
  lua_State *L = c->e->sb.L;
  lua_pushliteral(L, "strength");
  int t = lua_rawget(L, expect);
  if (t != LUA_TNIL && t != LUA_TTABLE) check_fail(c, "expect.strength must be a table {[id] = strength}%s%s", "", "");
  if (t != LUA_TTABLE) { lua_pop(L, 1); return; }
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING) {
      check_fail(c, "expect.strength must map ids to strength names%s%s", "", "");
    } else {
      const char *id = lua_tostring(L, -2), *want = lua_tostring(L, -1);
      const pw_item *it = recommended(&c->e->res, id);
      if (known_id(c, "strength", id) && !it) check_fail(c, "expect.strength: '%s' is not recommended%s", id, "");
      else if (it && (!it->strength || strcmp(it->strength, want)))
        check_fail(c, "expect.strength: '%s' has strength %s", id, it->strength ? it->strength : "none");
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/* expect.pathway and expect.applicable. */
static void expect_scalars(check *c, int expect) {
  lua_State *L = c->e->sb.L;
  const pw_result *r = &c->e->res;
  lua_pushliteral(L, "pathway");
  int t = lua_rawget(L, expect);
  if (t == LUA_TSTRING) {
    const char *want = lua_tostring(L, -1);
    if (!r->pathway || strcmp(want, r->pathway))
      check_fail(c, "expected pathway %s, got %s", want, r->pathway ? r->pathway : "none");
  } else if (t != LUA_TNIL) check_fail(c, "expect.pathway must be a string%s%s", "", "");
  lua_pop(L, 1);
  lua_pushliteral(L, "applicable");
  t = lua_rawget(L, expect);
  if (t == LUA_TBOOLEAN && lua_toboolean(L, -1) != (r->applicable == 1))
    check_fail(c, "expected applicable %s%s", lua_toboolean(L, -1) ? "true" : "false", "");
  else if (t != LUA_TNIL && t != LUA_TBOOLEAN) check_fail(c, "expect.applicable must be true or false%s%s", "", "");
  lua_pop(L, 1);
}

static void check_expect(check *c, int expect) {
  static const char *const lists[] = {"recommend", "not_recommend", "blocked", "missing", "preferred"};
  check_keys(c, expect, expect_keys, "expect");
  expect_scalars(c, expect);
  for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
    expect_list(c, expect, lists[i]);
    lua_pop(c->e->sb.L, 1);
  }
  expect_strength(c, expect);
  expect_order(c, expect);
}

static int check_one(pw_engine *e, int ex, pw_buf *out, int index) {
  lua_State *L = e->sb.L;
  pw_error err;
  char name[128];
  check c = {e, out, name, 0};
  lua_pushliteral(L, "name");
  if (lua_rawget(L, ex) == LUA_TSTRING) snprintf(name, sizeof name, "%s", lua_tostring(L, -1));
  else snprintf(name, sizeof name, "example %d", index);
  lua_pop(L, 1);
  check_keys(&c, ex, example_keys, "the example");
  lua_pushliteral(L, "facts");
  lua_rawget(L, ex);
  pw_status rc = pw_engine_evaluate(e, -1, 0, 0, &err);
  lua_pop(L, 1);
  if (rc != PW_OK) {
    pw_buf_addf(out, "FAIL %s: %s\n", name, err.msg);
    return 1;
  }
  lua_pushliteral(L, "expect");
  int t = lua_rawget(L, ex);
  if (t == LUA_TTABLE) check_expect(&c, lua_gettop(L));
  else check_fail(&c, "an example needs expect = {...}%s%s", "", "");
  lua_pop(L, 1);
  if (!c.fails) pw_buf_addf(out, "ok   %s\n", name);
  return c.fails ? 1 : 0;
}

pw_status pw_engine_check_examples(pw_engine *e, pw_buf *out, pw_error *err) {
  lua_State *L = e->sb.L;
  if (!e->loaded) return pw_error_set(err, PW_EPROTOCOL, "no protocol loaded");
  int top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, e->proto_ref);
  lua_pushliteral(L, "examples");
  int t = lua_rawget(L, -2);
  int n = t == LUA_TTABLE ? (int)lua_rawlen(L, -1) : 0, failed = 0;
  for (int i = 1; i <= n; i++) {
    if (lua_rawgeti(L, -1, i) != LUA_TTABLE) {
      pw_buf_addf(out, "FAIL example %d: not a table\n", i);
      failed++;
    } else failed += check_one(e, lua_gettop(L), out, i);
    lua_pop(L, 1);
  }
  lua_settop(L, top);
  pw_buf_addf(out, "%d examples, %d passed, %d failed\n", n, n - failed, failed);
  int lint = pw_gate_lint(e, out);
  int cohort = pw_gate_cohort(e, out);
  if (n == 0) return pw_error_set(err, PW_EPROTOCOL, "%s declares no example cases", e->info.id);
  if (failed) {
    return pw_error_set(err, PW_EPROTOCOL, "%d of %d example cases failed", failed, n);
  }
  if (lint) return pw_error_set(err, PW_EPROTOCOL, "%d comparison(s) of a facts field with a value it never holds", lint);
  if (cohort) return pw_error_set(err, PW_EPROTOCOL, "the protocol failed on %d of the built-in cohort's cases", cohort);
  return PW_OK;
}

/* ---- the rule table, for people and programs ---- */

void pw_rules_json(pw_buf *out) {
  pw_jsonw w;
  pw_jsonw_init(&w, out);
  pw_jsonw_begin_array(&w);
  for (int i = 0; i < pw_safety_count(); i++) {
    const pw_rule_info *r = pw_safety_rule(i);
    pw_jsonw_begin_object(&w);
    pw_jsonw_field_str(&w, "id", r->id);
    pw_jsonw_field_str(&w, "statement", r->statement);
    pw_jsonw_field_str(&w, "applies_to", r->applies_to);
    pw_jsonw_key(&w, "citations");
    pw_jsonw_begin_array(&w);
    for (int c = 0; c < r->cites.n; c++) pw_jsonw_int(&w, r->cites.v[c]);
    pw_jsonw_end_array(&w);
    pw_jsonw_field_str(&w, "guideline", r->guideline);
    pw_jsonw_field_str(&w, "beyond_guideline", r->beyond);
    pw_jsonw_end_object(&w);
  }
  pw_jsonw_end_array(&w);
}

void pw_rules_text(pw_buf *out) {
  for (int i = 0; i < pw_safety_count(); i++) {
    const pw_rule_info *r = pw_safety_rule(i);
    pw_buf_addf(out, "%-36s [", r->id);
    for (int c = 0; c < r->cites.n; c++) pw_buf_addf(out, c ? ", %d" : "%d", r->cites.v[c]);
    if (r->beyond) pw_buf_adds(out, "beyond the guideline");
    pw_buf_addf(out, "]\n    %s\n    applies to: %s\n", r->statement, r->applies_to);
    if (r->guideline) pw_buf_addf(out, "    guideline: \"%s\"\n", r->guideline);
    if (r->beyond) pw_buf_addf(out, "    source (beyond the guideline): %s\n", r->beyond);
  }
}

