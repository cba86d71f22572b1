/*
** engine.c: an engine's life and one evaluation. See pathwise.h, engine.h
** and runtime.h (the files that make up the runtime).
**
** An evaluation: validate facts in C -> protocol applies/evaluate propose
** items through `out` (checked as they come, builder.c) -> proposed orders
** join -> the C safety kernel blocks what breaks a rule -> plugins may
** block more -> the result is written by C (result.c).
*/
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "adapter.h"
#include "error.h"
#include "knowledge.h"
#include "runtime.h"
#include "safety.h"

#define DEFAULT_MEMORY (64u << 20)
#define DEFAULT_INSTRUCTIONS 5000000u
#define DEFAULT_MAX_INPUT (1u << 20)

/* ---- engine life ---- */

static int engine_setup(lua_State *L) {
  pw_engine *e = lua_touserdata(L, 1);
  pw_facts_open(L);
  pw_builder_open(L, e);
  e->decode_ref = pw_sandbox_json_decoder(L);
  return 0;
}

pw_engine *pw_engine_new(const pw_limits *lim, pw_error *err) {
  char msg[256];
  pw_engine *e = calloc(1, sizeof *e);
  if (!e) { pw_error_set(err, PW_EMEMORY, "out of memory"); return NULL; }
  if (lim) e->lim = *lim;
  if (!e->lim.memory) e->lim.memory = DEFAULT_MEMORY;
  if (!e->lim.instructions) e->lim.instructions = DEFAULT_INSTRUCTIONS;
  if (!e->lim.max_input) e->lim.max_input = DEFAULT_MAX_INPUT;
  if (pw_sandbox_init(&e->sb, e->lim.memory, msg, sizeof msg)) {
    pw_error_set(err, PW_EMEMORY, "%s", msg);
    free(e);
    return NULL;
  }
  lua_State *L = e->sb.L;
  lua_pushcfunction(L, engine_setup);
  lua_pushlightuserdata(L, e);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    pw_error_set(err, PW_EINTERNAL, "cannot set up the engine: %s",
         lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "error");
    pw_sandbox_close(&e->sb);
    free(e);
    return NULL;
  }
  e->proto_ref = e->applies_ref = e->evaluate_ref = LUA_NOREF;
  pw_result_reset(&e->res);
  return e;
}

void pw_engine_free(pw_engine *e) {
  if (!e) return;
  pw_sandbox_close(&e->sb);
  pw_protocol_info_free(&e->info);
  for (int i = 0; i < e->nplugins; i++) { free(e->plugins[i].id); free(e->plugins[i].name); }
  pw_result_free(&e->res);
  pw_buf_free(&e->scratch);
  free(e->path);
  free(e->src);
  free(e->src_name);
  free(e->base_files);
  free(e);
}

lua_State *pw_engine_lua(pw_engine *e) { return e->sb.L; }

size_t pw_engine_memory(pw_engine *e, size_t *peak) {
  *peak = e->sb.peak > e->sb.used ? e->sb.peak : e->sb.used;
  e->sb.peak = e->sb.used;
  return e->sb.used;
}
const pw_result *pw_engine_result(const pw_engine *e) { return &e->res; }

const char *pw_engine_protocol_id(const pw_engine *e) { return e->info.id; }
const char *pw_engine_protocol_version(const pw_engine *e) { return e->info.version; }
const char *pw_engine_protocol_title(const pw_engine *e) { return e->info.title; }
const char *pw_engine_protocol_sha256(const pw_engine *e) { return e->loaded ? e->info.sha256 : NULL; }
const char *pw_engine_base_files(const pw_engine *e) { return e->base_files; }
void pw_engine_protocol_json(const pw_engine *e, pw_buf *out) { pw_protocol_info_json(&e->info, out); }
void pw_engine_provenance_json(const pw_engine *e, const char *file, pw_buf *out) {
  pw_protocol_info_json_ex(&e->info, 0, file, out);
}
const pw_protocol_info *pw_engine_info(const pw_engine *e) { return &e->info; }
const pw_facts *pw_engine_facts(const pw_engine *e) { return &e->facts; }

/* ---- evaluation ---- */

/* Decode and mark empty tables inside a protected call: the string copy
** and the marks allocate, and no allocation may fail outside one. */
typedef struct decode_args { pw_engine *e; const char *json; size_t len; } decode_args;

static int decode_p(lua_State *L) {
  decode_args *a = lua_touserdata(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, a->e->decode_ref);
  lua_pushlstring(L, a->json, a->len);
  lua_call(L, 1, 1);
  pw_facts_mark_empty(L, -1, a->json, a->len);   /* {} and [] stay apart (facts.h) */
  return 1;
}

pw_status pw_engine_decode(pw_engine *e, const char *json, size_t len, pw_gate_info *info, pw_error *err) {
  char msg[300];
  pw_gate_limits gl = {e->lim.max_input, 0, 0};   /* the gate's default depth and width */
  if (pw_gate_check(json, len, &gl, info, msg, sizeof msg))
    return pw_error_set(err, PW_EINPUT, "%s", msg);
  lua_State *L = e->sb.L;
  decode_args a = {e, json, len};
  lua_pushcfunction(L, decode_p);
  lua_pushlightuserdata(L, &a);
  e->sb.mem_tainted = 0;
  int rc = lua_pcall(L, 1, 1, 0);
  if (rc != LUA_OK) {
    snprintf(msg, sizeof msg, "invalid JSON: %s", lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?");
    lua_pop(L, 1);
    return pw_error_set(err, e->sb.mem_tainted || rc == LUA_ERRMEM ? PW_EMEMORY : PW_EINPUT, "%s", msg);
  }
  return PW_OK;
}

/* Push the facts view (and, for plugins, the items) inside a protected
** call: each allocates, and an allocation failure outside a protected call
** would reach the panic handler. Returns PW_OK or PW_EMEMORY with nothing pushed. */
static int push_args_p(lua_State *L) {
  pw_engine *e = lua_touserdata(L, 1);
  int items = lua_toboolean(L, 2);
  lua_settop(L, 0);
  pw_facts_push_view(L, &e->facts, &e->gen);
  if (items) pw_builder_push_items(L, &e->res);
  return items ? 2 : 1;
}

static pw_status push_args(pw_engine *e, int items, pw_error *err) {
  lua_State *L = e->sb.L;
  lua_pushcfunction(L, push_args_p);
  lua_pushlightuserdata(L, e);
  lua_pushboolean(L, items);
  if (lua_pcall(L, 2, items ? 2 : 1, 0) == LUA_OK) return PW_OK;
  lua_pop(L, 1);
  return pw_error_set(err, PW_EMEMORY, "out of memory preparing the facts for the protocol");
}

static pw_status run_plugins(pw_engine *e, uint64_t *left, pw_error *err) {
  lua_State *L = e->sb.L;
  char msg[480];
  for (int i = 0; i < e->nplugins; i++) {
    e->cur_plugin = &e->plugins[i];
    lua_rawgeti(L, LUA_REGISTRYINDEX, e->plugins[i].check_ref);
    if (push_args(e, 1, err) != PW_OK) { lua_pop(L, 1); return PW_EMEMORY; }
    lua_rawgeti(L, LUA_REGISTRYINDEX, e->pout_ref);
    e->in_plugin = 1;
    int rc = pw_sandbox_pcall(&e->sb, 3, 0, *left, msg, sizeof msg);
    e->in_plugin = 0;
    *left -= e->sb.spent < *left ? e->sb.spent : *left;
    if (rc != PW_OK)
      return pw_error_set(err, (pw_status)rc, "plugin %s: %s", e->plugins[i].id, msg);
  }
  return PW_OK;
}

static pw_status run_protocol(pw_engine *e, uint64_t *left, pw_error *err) {
  lua_State *L = e->sb.L;
  char msg[480];
  lua_rawgeti(L, LUA_REGISTRYINDEX, e->applies_ref);
  if (push_args(e, 0, err) != PW_OK) { lua_pop(L, 1); return PW_EMEMORY; }
  lua_rawgeti(L, LUA_REGISTRYINDEX, e->out_ref);
  int rc = pw_sandbox_pcall(&e->sb, 2, 2, *left, msg, sizeof msg);
  *left -= e->sb.spent < *left ? e->sb.spent : *left;
  if (rc != PW_OK) return pw_error_set(err, (pw_status)rc, "applies: %s", msg);
  int t1 = lua_type(L, -2), t2 = lua_type(L, -1);
  if ((t1 != LUA_TBOOLEAN && t1 != LUA_TNIL) || (t2 != LUA_TSTRING && t2 != LUA_TNIL)) {
    lua_pop(L, 2);
    return pw_error_set(err, PW_EPROTOCOL, "%s: applies must return true, false or nil, and optionally a reason string",
                e->info.id);
  }
  e->res.applicable = t1 == LUA_TNIL ? -1 : lua_toboolean(L, -2);
  if (t2 == LUA_TSTRING) {   /* the reason: refused, never dropped, when unfit */
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    const char *bad = n > PW_MAX_TEXT ? "is longer than 4096 bytes"
                    : strlen(s) != n || !pw_utf8_valid(s, n) ? "is not valid UTF-8 text" : NULL;
    if (!bad && !(e->res.applicability = pw_arena_strdup(&e->res.arena, s, n))) bad = "could not be kept: out of memory";
    if (bad) {
      lua_pop(L, 2);
      return pw_error_set(err, *bad == 'c' ? PW_EMEMORY : PW_EPROTOCOL,
                          "%s: applies: the reason (second value) %s", e->info.id, bad);
    }
  }
  lua_pop(L, 2);
  pw_builder_trace(e, 0, NULL, "applies returned %s%s", e->res.applicable < 0 ? "nil (cannot tell)" : e->res.applicable ? "true" : "false", "");
  if (e->res.applicable != 1) return PW_OK;
  lua_rawgeti(L, LUA_REGISTRYINDEX, e->evaluate_ref);
  if (push_args(e, 0, err) != PW_OK) { lua_pop(L, 1); return PW_EMEMORY; }
  lua_rawgeti(L, LUA_REGISTRYINDEX, e->out_ref);
  rc = pw_sandbox_pcall(&e->sb, 2, 1, *left, msg, sizeof msg);
  *left -= e->sb.spent < *left ? e->sb.spent : *left;
  if (rc != PW_OK) return pw_error_set(err, (pw_status)rc, "evaluate: %s", msg);
  int tr = lua_type(L, -1);
  lua_pop(L, 1);
  if (tr != LUA_TNIL && tr != LUA_TTABLE)   /* results go through out; a stray value is a bug */
    return pw_error_set(err, PW_EPROTOCOL, "%s: evaluate returned a %s; it returns nothing (or a table)",
                        e->info.id, lua_typename(L, tr));
  return PW_OK;
}

static void add_orders(pw_engine *e) {
  for (int i = 0; i < e->facts.norders; i++) {
    const pw_order_fact *o = &e->facts.orders[i];
    pw_item *it = pw_result_add_item(&e->res);
    if (!it) return;
    it->id = o->id;
    it->agents = o->agents;
    it->action = o->action;
    it->kind = pw_knowledge_kind_name((pw_kind)o->kind);
    it->source = PW_SRC_ORDER;
    it->strength = "proposed";
  }
}

static void add_unknown_fields(pw_engine *e) {
  for (int i = 0; i < e->facts.nunknown; i++) {
    pw_note *n = pw_result_add_note(&e->res, PW_NOTE_WARN);
    char *t = pw_arena_alloc(&e->res.arena, 300);
    if (!n || !t) return;
    snprintf(t, 300, "unknown field '%s' was ignored: check its spelling", e->facts.unknown[i]);
    n->id = "unknown_field";
    n->text = t;
    n->source = PW_SRC_ENGINE;
  }
  for (int i = 0; i < e->facts.nwarnings; i++) {   /* e.g. an unrecognised radiation site */
    pw_note *n = pw_result_add_note(&e->res, PW_NOTE_WARN);
    if (!n) return;
    n->id = e->facts.warnings[i].id;
    n->text = e->facts.warnings[i].text;
    n->source = PW_SRC_ENGINE;
  }
}

/* Remember the protocol items plugins blocked (rule "plugin/rule").
** Returns how many. */
static int collect_withheld(pw_engine *e) {
  e->nwithheld = 0;
  for (int i = 0; i < e->res.items.n && e->nwithheld < PW_MAX_WITHHELD; i++) {
    const pw_item *it = &e->res.items.v[i];
    if (!it->blocked || it->source != PW_SRC_PROTOCOL || !it->rule || !strchr(it->rule, '/')) continue;
    e->withheld[e->nwithheld][0] = it->id;
    e->withheld[e->nwithheld][1] = it->rule;
    e->nwithheld++;
  }
  return e->nwithheld;
}

/* A plan whose protocol proposed systemic therapy but ends with none
** unblocked (a plugin or the kernel took it all) is flagged. */
static void flag_no_regimen(pw_engine *e) {
  int proposed = 0, left = 0;
  for (int i = 0; i < e->res.items.n; i++) {
    const pw_item *it = &e->res.items.v[i];
    if (it->source != PW_SRC_PROTOCOL || !(it->agents & ~pw_knowledge_class_agents(PW_CLS_BONE_AGENT))) continue;
    proposed = 1;
    left |= !it->blocked;
  }
  if (!proposed || left) return;
  pw_note *n = pw_result_add_note(&e->res, PW_NOTE_WARN);
  if (!n) return;
  n->id = "no_systemic_regimen";
  n->text = "No systemic regimen remains: every regimen the protocol proposed is blocked. The plan has no "
            "anticancer treatment; review it with the treating team.";
  n->source = PW_SRC_ENGINE;
  n->level = PW_LEVEL_URGENT;
}

/* One pass: the protocol, the proposed orders, the kernel, the plugins. */
static pw_status run_pass(pw_engine *e, unsigned flags, uint64_t *left, pw_error *err) {
  pw_status rc = PW_OK;
  if (!(flags & PW_EVAL_ORDERS_ONLY)) rc = run_protocol(e, left, err);
  else e->res.applicable = -1;
  if (rc == PW_OK) {
    add_orders(e);
    pw_safety_apply(&e->facts, &e->res);
    rc = run_plugins(e, left, err);
  }
  return rc;
}

pw_status pw_engine_evaluate(pw_engine *e, int facts_idx, int orders_idx, unsigned flags, pw_error *err) {
  lua_State *L = e->sb.L;
  char msg[480];
  uint64_t left = e->lim.instructions;
  pw_result_reset(&e->res);
  e->facts_ok = 0;
  pw_sandbox_restore(&e->sb);   /* every evaluation starts from the state the protocol loaded in */
  e->res.tracing = (flags & PW_EVAL_TRACE) != 0;
  if (!e->loaded && !(flags & PW_EVAL_ORDERS_ONLY))
    return pw_error_set(err, PW_EPROTOCOL, "no protocol loaded");
  facts_idx = lua_absindex(L, facts_idx);
  if (orders_idx) orders_idx = lua_absindex(L, orders_idx);
  if (pw_adapter_is_fhir(L, facts_idx, msg, sizeof msg))
    return pw_error_set(err, PW_EINPUT, "%s", msg);
  int frc = pw_facts_from_lua(L, facts_idx, &e->facts, &e->res.arena, msg, sizeof msg);
  if (!frc && orders_idx) frc = pw_facts_orders_from_lua(L, orders_idx, &e->facts, &e->res.arena, msg, sizeof msg);
  if (frc) return pw_error_set(err, frc == -2 ? PW_EMEMORY : PW_EINPUT, "%s", msg);
  e->res.patient_id = e->facts.patient_id;
  add_unknown_fields(e);
  e->in_eval = 1;
  e->nwithheld = 0;
  pw_status rc = run_pass(e, flags, &left, err);
  if (rc == PW_OK && !(flags & PW_EVAL_ORDERS_ONLY) && collect_withheld(e) > 0) {
    /* a plugin blocked a protocol item: evaluate again, the protocol told
    ** (out.withheld) so that it offers its next alternative */
    pw_result_clear_plan(&e->res);
    pw_sandbox_restore(&e->sb);
    add_unknown_fields(e);
    rc = run_pass(e, flags, &left, err);
  }
  if (rc == PW_OK) flag_no_regimen(e);
  e->nwithheld = 0;
  e->in_eval = 0;
  e->gen++;   /* views handed to scripts die here */
  if (rc != PW_OK) return rc;
  e->facts_ok = 1;   /* the facts sha256 waits until someone asks (pw_engine_facts_sha256) */
  return PW_OK;
}

const char *pw_engine_facts_sha256(pw_engine *e) {
  if (!e->facts_ok) return NULL;
  if (!e->res.facts_sha256[0]) {
    pw_buf_reset(&e->scratch);
    pw_facts_canonical(&e->facts, &e->scratch);
    pw_sha256_hex(e->scratch.data, e->scratch.len, e->res.facts_sha256);
  }
  return e->res.facts_sha256;
}

pw_status pw_engine_eval_table(pw_engine *e, int facts_idx, int orders_idx, unsigned flags,
                               pw_buf *out, pw_error *err) {
  pw_status rc = pw_engine_evaluate(e, facts_idx, orders_idx, flags, err);
  if (rc == PW_OK && out) pw_result_json(&e->res, &e->info, out);
  return rc;
}

pw_status pw_engine_eval(pw_engine *e, const char *json, size_t len, unsigned flags, pw_buf *out, pw_error *err) {
  lua_State *L = e->sb.L;
  int top = lua_gettop(L);
  pw_status rc = pw_engine_decode(e, json, len, NULL, err);
  if (rc == PW_OK) rc = pw_engine_eval_table(e, -1, 0, flags, out, err);
  lua_settop(L, top);
  return rc;
}

void pw_engine_render_text(const pw_engine *e, pw_buf *out) { pw_result_text(&e->res, &e->info, out); }

