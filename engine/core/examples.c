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

/* ---- example cases declared by the protocol ---- */

static int has_item(const pw_result *r, const char *id, int blocked) {
  for (int i = 0; i < r->items.n; i++) {
    const pw_item *it = &r->items.v[i];
    if (!strcmp(it->id, id) && it->blocked == blocked && (blocked || it->source == PW_SRC_PROTOCOL)) return 1;
  }
  return 0;
}

static int has_missing(const pw_result *r, const char *fact) {
  for (int i = 0; i < r->missing.n; i++)
    if (!strcmp(r->missing.v[i].fact, fact)) return 1;
  return 0;
}

/* Check expect.<key> (a list of ids) against the result; returns failures. */
static int expect_list(pw_engine *e, int expect, const char *key, pw_buf *out, const char *name) {
  lua_State *L = e->sb.L;
  int fails = 0;
  lua_pushstring(L, key);
  if (lua_rawget(L, expect) == LUA_TTABLE) {
    int n = (int)lua_rawlen(L, -1);
    for (int i = 1; i <= n; i++) {
      if (lua_rawgeti(L, -1, i) == LUA_TSTRING) {
        const char *id = lua_tostring(L, -1);
        int ok = !strcmp(key, "recommend") ? has_item(&e->res, id, 0)
               : !strcmp(key, "not_recommend") ? !has_item(&e->res, id, 0)
               : !strcmp(key, "blocked") ? has_item(&e->res, id, 1)
               : has_missing(&e->res, id);
        if (!ok) {
          pw_buf_addf(out, "FAIL %s: expect.%s '%s' does not hold\n", name, key, id);
          fails++;
        }
      }
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  return fails;
}

static int check_one(pw_engine *e, int ex, pw_buf *out, int index) {
  lua_State *L = e->sb.L;
  pw_error err;
  char name[128];
  int fails = 0;
  lua_pushliteral(L, "name");
  if (lua_rawget(L, ex) == LUA_TSTRING) snprintf(name, sizeof name, "%s", lua_tostring(L, -1));
  else snprintf(name, sizeof name, "example %d", index);
  lua_pop(L, 1);
  lua_pushliteral(L, "facts");
  lua_rawget(L, ex);
  pw_status rc = pw_engine_evaluate(e, -1, 0, 0, &err);
  lua_pop(L, 1);
  if (rc != PW_OK) {
    pw_buf_addf(out, "FAIL %s: %s\n", name, err.msg);
    return 1;
  }
  lua_pushliteral(L, "expect");
  if (lua_rawget(L, ex) == LUA_TTABLE) {
    int expect = lua_gettop(L);
    lua_pushliteral(L, "pathway");
    if (lua_rawget(L, expect) == LUA_TSTRING) {
      const char *want = lua_tostring(L, -1);
      if (!e->res.pathway || strcmp(want, e->res.pathway)) {
        pw_buf_addf(out, "FAIL %s: expected pathway %s, got %s\n", name, want, e->res.pathway ? e->res.pathway : "none");
        fails++;
      }
    }
    lua_pop(L, 1);
    lua_pushliteral(L, "applicable");
    int t = lua_rawget(L, expect);
    if (t == LUA_TBOOLEAN && lua_toboolean(L, -1) != (e->res.applicable == 1)) {
      pw_buf_addf(out, "FAIL %s: expected applicable %s\n", name, lua_toboolean(L, -1) ? "true" : "false");
      fails++;
    }
    lua_pop(L, 1);
    fails += expect_list(e, expect, "recommend", out, name);
    fails += expect_list(e, expect, "not_recommend", out, name);
    fails += expect_list(e, expect, "blocked", out, name);
    fails += expect_list(e, expect, "missing", out, name);
  }
  lua_pop(L, 1);
  if (!fails) pw_buf_addf(out, "ok   %s\n", name);
  return fails ? 1 : 0;
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
  if (n == 0) return pw_error_set(err, PW_EPROTOCOL, "%s declares no example cases", e->info.id);
  if (failed) {
    return pw_error_set(err, PW_EPROTOCOL, "%d of %d example cases failed", failed, n);
  }
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
    pw_jsonw_end_object(&w);
  }
  pw_jsonw_end_array(&w);
}

void pw_rules_text(pw_buf *out) {
  for (int i = 0; i < pw_safety_count(); i++) {
    const pw_rule_info *r = pw_safety_rule(i);
    pw_buf_addf(out, "%-36s [", r->id);
    for (int c = 0; c < r->cites.n; c++) pw_buf_addf(out, c ? ", %d" : "%d", r->cites.v[c]);
    pw_buf_addf(out, "]\n    %s\n    applies to: %s\n    guideline: \"%s\"\n", r->statement, r->applies_to,
                r->guideline);
  }
}

