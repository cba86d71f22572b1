/*
** handler.c: the worker half of rpc.h: one engine per loaded protocol,
** built (and its examples checked, at load) by pw_rpc_new, and the handler
** of evaluate and check_orders.
**
** A request line is decoded by pw_engine_decode (the gate's full strict
** check, then cjson) into the engine's Lua state and read with raw access
** only (lua_rawget, lua_next), never a metamethod; the engine's stack is
** left as found. The answer is the response line and, when a log is open,
** the decision-log fragment right after it. An engine whose state ran out
** of memory (or hit an internal error) is rebuilt from the same source.
*/
#include "rpc.h"

#include <lauxlib.h>
#include <lua.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "adapter.h"
#include "cds.h"
#include "engine.h"
#include "locate.h"
#include "result.h"
#include "whatif.h"

/* ==================================================================== */
/* {====== the worker half                                              */

typedef struct rpc_engine {
  pw_engine *e;
  char *id;
  pw_buf ident;         /* "protocol":{"id":..,"version":..,"sha256":..} */
  size_t baseline;      /* its state's bytes once built, after a full collection */
  size_t used;          /* and after the last call */
} rpc_engine;

struct pw_rpc {
  pw_rpc_config cfg;
  rpc_engine *eng;
  int n;
  pw_buf text;
  pw_adapter *fhir;     /* evaluate_fhir: made on first use (see the end) */
  pw_cds *cds;          /* the CDS Hooks service: made on first use */
  uint64_t rebuilds;    /* engines rebuilt after load (state_check, errors) */
};

static void rpc_engine_clear(rpc_engine *re) {
  if (re->e) pw_engine_free(re->e);
  free(re->id);
  pw_buf_free(&re->ident);
  memset(re, 0, sizeof *re);
}

/* ==================================================================== */
/* {====== state memory: back to its baseline after a big evaluation    */
/*
** An evaluation whose state's peak went far above the baseline (a deep
** recursion leaves 200,000 CallInfos and a 16 MB stack, freed only half
** per collection and pinning the heap's pages) is followed by full
** collections until the state stops shrinking; if it is still well above
** its baseline (a protocol keeping data between calls), the state is
** rebuilt from the same source; then the freed memory goes back to the
** kernel (malloc_trim), so the worker's RSS returns too.
*/

#define STATE_FAR ((size_t)8 << 20)     /* a peak this far above: settle */
#define STATE_SLACK ((size_t)2 << 20)   /* settled above 2 x baseline + this: rebuild */

/* Give the pages malloc holds free back to the kernel. */
static void state_trim(void) {
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

/* Collect until the state stops shrinking; returns its bytes. */
static size_t state_settle(rpc_engine *re) {
  lua_State *L = pw_engine_lua(re->e);
  size_t peak, used = pw_engine_memory(re->e, &peak);
  for (int i = 0; i < 64; i++) {
    lua_gc(L, LUA_GCCOLLECT);
    size_t now = pw_engine_memory(re->e, &peak);
    if (now >= used) break;
    used = now;
  }
  return used;
}

static int rpc_engine_build(pw_rpc *r, int i, int check, char *err, size_t errlen);

/* Rebuild engine ei's state from the same source, and give the old
** state's memory (up to its cap) back to the kernel; a worker that cannot
** rebuild asks to be respawned. */
static void state_rebuild(pw_rpc *r, int ei, pw_rpc_outcome *oc) {
  char e2[256];
  r->rebuilds++;
  if (rpc_engine_build(r, ei, 0, e2, sizeof e2) != 0) oc->fatal = 1;
  state_trim();
}

/* After a call on engine ei: settle, rebuild and trim as above; report
** the states' bytes and the rebuilds in oc. */
static void state_check(pw_rpc *r, int ei, pw_rpc_outcome *oc) {
  rpc_engine *re = &r->eng[ei];
  if (re->e) {
    size_t peak;
    re->used = pw_engine_memory(re->e, &peak);
    if (peak > re->baseline + STATE_FAR) {
      re->used = state_settle(re);
      if (re->used > 2 * re->baseline + STATE_SLACK) state_rebuild(r, ei, oc);
      else state_trim();
    }
  }
  oc->state_bytes = 0;
  for (int i = 0; i < r->n; i++) oc->state_bytes += r->eng[i].used;
  oc->rebuilds = r->rebuilds;
}

/* }====== */

static int rpc_engine_build(pw_rpc *r, int i, int check, char *err, size_t errlen) {
  const pw_rpc_protocol *p = &r->cfg.protocols[i];
  rpc_engine *re = &r->eng[i];
  pw_error e;
  memset(&e, 0, sizeof e);
  rpc_engine_clear(re);
  re->e = pw_engine_new(&r->cfg.limits, &e);
  if (!re->e) {
    snprintf(err, errlen, "%s: cannot create an engine: %s", p->name, e.msg);
    return -1;
  }
  if (pw_engine_load_buffer(re->e, p->name, p->src, p->len, &e) != PW_OK) {
    snprintf(err, errlen, "%s", e.msg);
    return -1;
  }
  for (int k = 0; k < r->cfg.nplugins; k++) {
    if (pw_engine_add_plugin(re->e, r->cfg.plugins[k], &e) != PW_OK) {
      snprintf(err, errlen, "%s", e.msg);
      return -1;
    }
  }
  if (check) {
    pw_buf rep = {0};
    if (pw_engine_check_examples(re->e, &rep, &e) != PW_OK) {
      /* only what failed: the report's FAIL lines, each ended by "; " */
      int k = snprintf(err, errlen, "%s: %s", p->name, e.msg);
      const char *q = rep.data, *end = rep.data + rep.len;
      while (q && q < end && k >= 0 && (size_t)k < errlen) {
        const char *nl = memchr(q, '\n', (size_t)(end - q));
        int n = (int)((nl ? nl : end) - q);
        if (n > 5 && !memcmp(q, "FAIL ", 5)) k += snprintf(err + k, errlen - (size_t)k, "; %.*s", n, q);
        q = nl ? nl + 1 : end;
      }
      pw_buf_free(&rep);
      return -1;
    }
    pw_buf_free(&rep);
  }
  const char *id = pw_engine_protocol_id(re->e);
  re->id = strdup(id ? id : "");
  if (!re->id) {
    snprintf(err, errlen, "%s: out of memory", p->name);
    return -1;
  }
  /* id, version, sha256, file name, the base it extends and each plugin's
  ** id, version, sha256 and file name: every record says what decided */
  pw_buf_adds(&re->ident, "\"protocol\":");
  pw_engine_provenance_json(re->e, p->name, &re->ident);
  re->baseline = re->used = state_settle(re);
  return 0;
}

pw_rpc *pw_rpc_new(const pw_rpc_config *cfg, char *err, size_t errlen) {
  pw_rpc *r = calloc(1, sizeof *r);
  if (!r) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  r->cfg = *cfg;
  r->n = cfg->nprotocols;
  r->eng = calloc((size_t)(r->n ? r->n : 1), sizeof *r->eng);
  if (!r->eng) {
    free(r);
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  if (r->n == 0) {
    snprintf(err, errlen, "no protocol to load");
    pw_rpc_free(r);
    return NULL;
  }
  for (int i = 0; i < r->n; i++) {
    if (rpc_engine_build(r, i, cfg->check_examples, err, errlen) != 0) {
      pw_rpc_free(r);
      return NULL;
    }
    for (int j = 0; j < i; j++) {
      if (strcmp(r->eng[j].id, r->eng[i].id) == 0) {
        snprintf(err, errlen, "%s and %s both declare protocol id '%s'",
                 cfg->protocols[j].name, cfg->protocols[i].name, r->eng[i].id);
        pw_rpc_free(r);
        return NULL;
      }
    }
  }
  return r;
}

void pw_rpc_free(pw_rpc *r) {
  if (!r) return;
  for (int i = 0; i < r->n; i++) rpc_engine_clear(&r->eng[i]);
  free(r->eng);
  pw_buf_free(&r->text);
  pw_adapter_free(r->fhir);
  pw_cds_free(r->cds);
  free(r);
}

void pw_rpc_ready_payload(pw_rpc *r, pw_buf *out) {
  pw_buf_add(out, "[", 1);
  for (int i = 0; i < r->n; i++) {
    if (i) pw_buf_add(out, ",", 1);
    /* beside its base and plugins, the protocol's own file name (never a
    ** host path: clients see it in `protocols`, `health` and reloads) */
    pw_protocol_info_json_ex(pw_engine_info(r->eng[i].e), 1, r->cfg.protocols[i].name, out);
  }
  pw_buf_add(out, "]\n", 2);
  for (int i = 0; i < r->n; i++) {
    pw_buf_adds(out, r->eng[i].id);
    pw_buf_add(out, "\n", 1);
  }
  /* then each engine's provenance ("=" and the decision log's protocol
  ** object) and the host path of each base its `extends` loaded ("@"),
  ** for the supervisor's reload events and file watcher (never sent to
  ** clients) */
  for (int i = 0; i < r->n; i++) {
    pw_buf_add(out, "=", 1);
    pw_engine_provenance_json(r->eng[i].e, r->cfg.protocols[i].name, out);
    pw_buf_add(out, "\n", 1);
  }
  for (int i = 0; i < r->n; i++) {
    const char *q = pw_engine_base_files(r->eng[i].e), *line;
    size_t l;
    while ((line = pw_lines_next(&q, &l))) {
      pw_buf_add(out, "@", 1);
      pw_buf_add(out, line, l);
      pw_buf_add(out, "\n", 1);
    }
  }
}

static int status_code(pw_status st) {
  switch (st) {
    case PW_EINPUT: return PW_RPC_VALIDATION;
    case PW_EPROTOCOL: return PW_RPC_PROTOCOL;
    case PW_EBUDGET: return PW_RPC_BUDGET;
    case PW_EMEMORY: return PW_RPC_MEMORY;
    default: return PW_RPC_INTERNAL;
  }
}

/* Which engine a request names (only asked when several are loaded). */
static int pick_engine(pw_rpc *r, const char *line, size_t len, int *unknown) {
  char name[128];
  *unknown = 0;
  if (pw_rpc_param_string(line, len, "protocol", name, sizeof name) <= 0) return 0;   /* a type error later */
  for (int i = 0; i < r->n; i++)
    if (strcmp(r->eng[i].id, name) == 0) return i;
  *unknown = 1;
  return 0;
}

/* Is the empty table at params.<key> written as {} (1) or [] (0)? */
static int empty_was_object(const char *line, size_t len, const char *key) {
  pw_span v = pw_rpc_param(line, len, key);   /* the gate already refused duplicate keys */
  return !v.len || line[v.off] == '{';
}

static void log_fragment(pw_rpc *r, int ei, const char *line, size_t len, pw_buf *out) {
  rpc_engine *re = &r->eng[ei];
  const pw_result *res = pw_engine_result(re->e);
  pw_buf_addf(out, "\"schema_version\":%d,\"engine\":\"" PW_VERSION "\",", PW_RESULT_SCHEMA);
  pw_buf_add(out, re->ident.data, re->ident.len);
  pw_buf_adds(out, ",\"facts_sha256\":");
  pw_buf_json_str(out, res ? pw_engine_facts_sha256(re->e) : NULL);
  if (r->cfg.log_facts) {
    pw_span f = pw_rpc_param(line, len, "facts");   /* its raw text, for --log-facts */
    pw_buf_adds(out, ",\"facts\":");
    if (f.len) pw_buf_add(out, line + f.off, f.len);
    else pw_buf_add(out, "null", 4);
  }
  pw_buf_adds(out, ",\"pathway\":");
  pw_buf_json_str(out, res ? res->pathway : NULL);
  pw_buf_adds(out, ",\"recommendations\":[");
  int first = 1;
  for (int i = 0; res && i < res->items.n; i++) {
    const pw_item *it = &res->items.v[i];
    if (it->blocked || it->source == PW_SRC_ORDER) continue;
    if (!first) pw_buf_add(out, ",", 1);
    first = 0;
    pw_buf_json_str(out, it->id);
  }
  pw_buf_adds(out, "],\"orders_allowed\":[");
  first = 1;
  for (int i = 0; res && i < res->items.n; i++) {
    const pw_item *it = &res->items.v[i];
    if (it->blocked || it->source != PW_SRC_ORDER) continue;
    if (!first) pw_buf_add(out, ",", 1);
    first = 0;
    pw_buf_json_str(out, it->id);
  }
  pw_buf_adds(out, "],\"blocked\":[");
  first = 1;
  for (int i = 0; res && i < res->items.n; i++) {
    const pw_item *it = &res->items.v[i];
    if (!it->blocked) continue;
    if (!first) pw_buf_add(out, ",", 1);
    first = 0;
    pw_buf_adds(out, "{\"id\":");
    pw_buf_json_str(out, it->id);
    pw_buf_adds(out, ",\"rule\":");
    pw_buf_json_str(out, it->rule);
    pw_buf_add(out, "}", 1);
  }
  pw_buf_add(out, "]", 1);
}

static void buf_cut(pw_buf *b, size_t len) {
  b->len = len;
  if (b->data) b->data[len] = '\0';
}

/* is the value at idx absent (nil or JSON null)? */
static int absent(lua_State *L, int idx) {
  int t = lua_type(L, idx);
  return t == LUA_TNIL || t == LUA_TLIGHTUSERDATA;
}

/* One call being answered: where its parts sit on the engine's stack and,
** once something is wrong, the error to answer with. */
typedef struct rpc_call {
  pw_rpc *r;
  rpc_engine *re;
  lua_State *L;
  int method;
  const char *line;
  size_t len;
  int unknown;            /* params.protocol names no loaded engine */
  int base;               /* the stack top before the call */
  int req, params, facts; /* stack slots: base+1, +2, +3 */
  int orders;             /* check_orders: base+5; evaluate: 0 */
  unsigned flags;
  int text;               /* format "text" */
  int what_if;            /* evaluate with what_if: true (issue 17) */
  int code;
  char msg[600];
} rpc_call;

static int call_fail(rpc_call *k, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int call_fail(rpc_call *k, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(k->msg, sizeof k->msg, fmt, ap);
  va_end(ap);
  k->code = code;
  return -1;
}

/* The request object and its params object, whose every member must be
** known: a typo is an error, not a silent default. */
static int read_params(rpc_call *k) {
  lua_State *L = k->L;
  if (!lua_checkstack(L, 8)) return call_fail(k, PW_RPC_INTERNAL, "Lua stack exhausted");
  k->req = k->base + 1;
  if (lua_type(L, k->req) != LUA_TTABLE)
    return call_fail(k, PW_RPC_INVALID_REQUEST, "request: expected an object");
  lua_pushliteral(L, "params");
  if (lua_rawget(L, k->req) != LUA_TTABLE)
    return call_fail(k, PW_RPC_INVALID_PARAMS, "params: expected an object with member 'facts'");
  k->params = k->base + 2;
  lua_pushnil(L);
  while (lua_next(L, k->params)) {
    const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    int ok = key && (strcmp(key, "facts") == 0 || strcmp(key, "protocol") == 0 ||
                     (k->method == PW_M_EVALUATE &&
                      (strcmp(key, "format") == 0 || strcmp(key, "trace") == 0 ||
                       strcmp(key, "what_if") == 0)) ||
                     (k->method == PW_M_CHECK_ORDERS && strcmp(key, "orders") == 0));
    if (!ok) {
      call_fail(k, PW_RPC_INVALID_PARAMS, "params: unknown member '%.60s' for %s",
                key ? key : "?", pw_rpc_method_name(k->method));
      lua_pop(L, 2);
      return -1;
    }
    lua_pop(L, 1);
  }
  return 0;
}

/* params.facts must be an object ({} is one; [] is not). */
static int read_facts(rpc_call *k) {
  lua_State *L = k->L;
  lua_pushliteral(L, "facts");
  k->facts = k->base + 3;
  if (lua_rawget(L, k->params) != LUA_TTABLE)
    return call_fail(k, PW_RPC_INVALID_PARAMS, "params.facts: expected an object");
  lua_pushnil(L);
  if (lua_next(L, k->facts)) lua_pop(L, 2);
  else if (!empty_was_object(k->line, k->len, "facts"))
    return call_fail(k, PW_RPC_INVALID_PARAMS, "params.facts: expected an object, got an array");
  return 0;
}

/* params.protocol, if given, must name the engine picked for the call. */
static int read_protocol(rpc_call *k) {
  lua_State *L = k->L;
  lua_pushliteral(L, "protocol");
  lua_rawget(L, k->params);                               /* base+4 */
  if (absent(L, -1)) return 0;
  if (lua_type(L, -1) != LUA_TSTRING)
    return call_fail(k, PW_RPC_INVALID_PARAMS, "params.protocol: expected a protocol id string");
  if (k->unknown || strcmp(lua_tostring(L, -1), k->re->id) != 0)
    return call_fail(k, PW_RPC_UNKNOWN_PROTOCOL,
                     "params.protocol: no loaded protocol has id '%.100s'",
                     lua_tostring(L, -1));
  return 0;
}

/* evaluate: params.format ("json" or "text"), params.trace and
** params.what_if. */
static int read_evaluate(rpc_call *k) {
  lua_State *L = k->L;
  lua_pushliteral(L, "format");
  lua_rawget(L, k->params);                               /* base+5 */
  if (!absent(L, -1)) {
    const char *f = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    if (f && strcmp(f, "text") == 0) k->text = 1;
    else if (!f || strcmp(f, "json") != 0)
      return call_fail(k, PW_RPC_INVALID_PARAMS, "params.format: expected \"json\" or \"text\"");
  }
  lua_pushliteral(L, "trace");
  lua_rawget(L, k->params);                               /* base+6 */
  if (!absent(L, -1)) {
    if (lua_type(L, -1) != LUA_TBOOLEAN)
      return call_fail(k, PW_RPC_INVALID_PARAMS, "params.trace: expected true or false");
    if (lua_toboolean(L, -1)) k->flags |= PW_EVAL_TRACE;
  }
  lua_pushliteral(L, "what_if");
  lua_rawget(L, k->params);                               /* base+7 */
  if (!absent(L, -1) && lua_type(L, -1) != LUA_TBOOLEAN)
    return call_fail(k, PW_RPC_INVALID_PARAMS, "params.what_if: expected true or false");
  k->what_if = lua_type(L, -1) == LUA_TBOOLEAN && lua_toboolean(L, -1);
  return 0;
}

/* check_orders: params.orders, an array of order id strings. */
static int read_orders(rpc_call *k) {
  lua_State *L = k->L;
  k->flags |= PW_EVAL_ORDERS_ONLY;
  lua_pushliteral(L, "orders");
  k->orders = k->base + 5;
  if (lua_rawget(L, k->params) != LUA_TTABLE)
    return call_fail(k, PW_RPC_INVALID_PARAMS, "params.orders: expected an array of order ids");
  lua_Integer n = (lua_Integer)lua_rawlen(L, k->orders), count = 0;
  lua_pushnil(L);
  while (lua_next(L, k->orders)) {
    count++;
    if (!lua_isinteger(L, -2) || lua_tointeger(L, -2) < 1 || lua_tointeger(L, -2) > n ||
        lua_type(L, -1) != LUA_TSTRING) {
      int bad_key = !lua_isinteger(L, -2);
      lua_pop(L, 2);
      if (bad_key)
        return call_fail(k, PW_RPC_INVALID_PARAMS,
                         "params.orders: expected an array, got an object");
      return call_fail(k, PW_RPC_INVALID_PARAMS,
                       "params.orders: every item must be an order id string");
    }
    lua_pop(L, 1);
  }
  if (count == 0 && empty_was_object(k->line, k->len, "orders"))
    return call_fail(k, PW_RPC_INVALID_PARAMS, "params.orders: expected an array, got an object");
  return 0;
}

/* Evaluate and append the result line (without its closing "}\n"). */
static int evaluate(rpc_call *k, const char *id, size_t idlen, pw_buf *out) {
  pw_engine *e = k->re->e;
  pw_error err;
  pw_status st;
  err.code = PW_OK;
  err.msg[0] = '\0';
  pw_buf_add(out, "{\"jsonrpc\":\"2.0\",\"id\":", 22);
  if (id) pw_buf_add(out, id, idlen);
  else pw_buf_add(out, "null", 4);
  pw_buf_add(out, ",\"result\":", 10);
  if (k->what_if) {   /* the result with its what_if member, or the text with its section */
    pw_buf_reset(&k->r->text);
    st = pw_whatif_eval_table(e, k->facts, k->flags, k->text, NULL, k->text ? &k->r->text : out,
                              &err);
    if (st == PW_OK && k->text) {
      pw_buf_add(&k->r->text, "", 0);
      pw_buf_json_str(out, k->r->text.data);
    }
  } else if (k->text) {
    st = pw_engine_eval_table(e, k->facts, k->orders, k->flags, NULL, &err);   /* no JSON needed */
    if (st == PW_OK) {
      pw_buf_reset(&k->r->text);
      pw_engine_render_text(e, &k->r->text);
      pw_buf_add(&k->r->text, "", 0);   /* NUL-terminated even when empty */
      pw_buf_json_str(out, k->r->text.data);
    }
  } else {   /* one line: ends in '}' */
    st = pw_engine_eval_table(e, k->facts, k->orders, k->flags, out, &err);
  }
  if (st != PW_OK) return call_fail(k, status_code(st), "%s", err.msg);
  return 0;
}

/* Decode the line and read its params; 0, or -1 with k->code set. The
** id, once the line passed the gate, goes to *id. */
static int call_read(rpc_call *k, const char **id, size_t *idlen) {
  pw_gate_info gi;
  pw_error err;
  memset(&gi, 0, sizeof gi);
  err.code = PW_OK;
  err.msg[0] = '\0';
  pw_status st = pw_engine_decode(k->re->e, k->line, k->len, &gi, &err);
  if (st != PW_OK) {
    pw_span sp;   /* refused: its id, if it can still be read (issue 12) */
    if (pw_rpc_readable_id(k->line, k->len, &sp) == 0) {
      *id = k->line + sp.off;
      *idlen = sp.len;
    }
    if (st == PW_EMEMORY) return call_fail(k, PW_RPC_MEMORY, "%s", err.msg);
    return call_fail(k, PW_RPC_PARSE_ERROR, "Parse error: %s", err.msg);
  }
  if (gi.has_id) {
    *id = k->line + gi.id_off;
    *idlen = gi.id_len;
  }
  if (read_params(k) != 0 || read_facts(k) != 0 || read_protocol(k) != 0) return -1;
  return k->method == PW_M_EVALUATE ? read_evaluate(k) : read_orders(k);
}

static void handle_fhir(pw_rpc *r, const char *line, size_t len, pw_buf *out,
                        pw_rpc_outcome *oc);
static void handle_cds(pw_rpc *r, const char *line, size_t len, pw_buf *out, pw_rpc_outcome *oc);

/* The log fragment of a request that reached its protocol and failed there
** (issue 12: every such request leaves one record, with its error kind). */
static void log_error_fragment(pw_rpc *r, int ei, int code, const char *msg, pw_buf *out) {
  rpc_engine *re = &r->eng[ei];
  pw_buf_addf(out, "\"schema_version\":%d,\"engine\":\"" PW_VERSION "\",", PW_RESULT_SCHEMA);
  pw_buf_add(out, re->ident.data, re->ident.len);
  pw_buf_addf(out, ",\"error\":{\"code\":%d,\"kind\":\"%s\",\"message\":", code,
              pw_rpc_code_kind(code));
  pw_buf_json_str(out, msg);
  pw_buf_add(out, "}", 1);
}

void pw_rpc_handle(pw_rpc *r, int method, const char *line, size_t len, pw_buf *out,
                   pw_rpc_outcome *oc) {
  if (method == PW_M_EVALUATE_FHIR) {
    handle_fhir(r, line, len, out, oc);
    return;
  }
  if (method == PW_M_CDS) {
    handle_cds(r, line, len, out, oc);
    return;
  }
  size_t start = out->len;
  const char *id = NULL;
  size_t idlen = 0;
  rpc_call k;
  memset(&k, 0, sizeof k);
  k.r = r;
  k.method = method;
  k.line = line;
  k.len = len;
  int ei = r->n > 1 ? pick_engine(r, line, len, &k.unknown) : 0;
  k.re = &r->eng[ei];
  k.L = pw_engine_lua(k.re->e);
  k.base = lua_gettop(k.L);
  oc->engine = ei;
  oc->fatal = 0;
  int reached = call_read(&k, &id, &idlen) == 0;
  if (reached && evaluate(&k, id, idlen, out) == 0) {
    pw_buf_add(out, "}\n", 2);
    oc->code = 0;
    oc->resp_len = out->len - start;
    if (r->cfg.log) log_fragment(r, ei, line, len, out);
    lua_settop(k.L, k.base);
    state_check(r, ei, oc);
    return;
  }
  lua_settop(k.L, k.base);
  buf_cut(out, start);
  pw_rpc_error_line(out, id, idlen, k.code, k.msg);
  oc->code = k.code;
  oc->resp_len = out->len - start;
  if (reached && r->cfg.log) log_error_fragment(r, ei, k.code, k.msg, out);
  if (k.code == PW_RPC_MEMORY || k.code == PW_RPC_INTERNAL) {
    state_rebuild(r, ei, oc);   /* the state may be unusable */
  }
  if (!oc->fatal) state_check(r, ei, oc);
}

/* }====== */

/* ==================================================================== */
/* {====== evaluate_fhir: a FHIR document through the input adapter     */
/*
** params: {bundle: a FHIR document (Bundle, resource, prefetch object),
**          as_of?: "YYYY-MM-DD" (default today, UTC), protocol?, format?, trace?}
** The request is gated and decoded with the adapter's limits (16 MiB,
** 100,000 members; the line must also fit --max-line), the adapter derives
** the facts, the engine evaluates them; the result gains "input" (as of,
** sources, unmapped), as `pathwise eval --from fhir` prints it.
*/

typedef struct fhir_params {
  char as_of[16];
  int text, trace, what_if;
  int bundle;            /* stack index in the adapter's state */
  const char *protocol;  /* params.protocol (on that stack), or NULL */
} fhir_params;

static int fhir_params_read(lua_State *L, int req, fhir_params *p, char *msg, size_t n) {
  lua_pushliteral(L, "params");
  if (lua_rawget(L, req) != LUA_TTABLE) { snprintf(msg, n, "params: expected an object with member 'bundle'"); return PW_RPC_INVALID_PARAMS; }
  int params = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, params)) {
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
    if (strcmp(k, "bundle") && strcmp(k, "as_of") && strcmp(k, "protocol") && strcmp(k, "format") &&
        strcmp(k, "trace") && strcmp(k, "what_if")) {
      snprintf(msg, n, "params: unknown member '%.60s' for evaluate_fhir", k);
      lua_pop(L, 2);
      return PW_RPC_INVALID_PARAMS;
    }
    lua_pop(L, 1);
  }
  lua_pushliteral(L, "as_of");
  lua_rawget(L, params);
  if (!absent(L, -1)) {
    if (lua_type(L, -1) != LUA_TSTRING || !pw_adapter_date_ok(lua_tostring(L, -1))) {
      snprintf(msg, n, "params.as_of: expected a date \"YYYY-MM-DD\"");
      return PW_RPC_INVALID_PARAMS;
    }
    snprintf(p->as_of, sizeof p->as_of, "%s", lua_tostring(L, -1));
  }
  lua_pushliteral(L, "format");
  lua_rawget(L, params);
  const char *f = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
  if (!absent(L, -1) && (!f || (strcmp(f, "json") && strcmp(f, "text")))) {
    snprintf(msg, n, "params.format: expected \"json\" or \"text\"");
    return PW_RPC_INVALID_PARAMS;
  }
  p->text = f && !strcmp(f, "text");
  lua_pushliteral(L, "trace");
  lua_rawget(L, params);
  if (!absent(L, -1) && lua_type(L, -1) != LUA_TBOOLEAN) {
    snprintf(msg, n, "params.trace: expected true or false");
    return PW_RPC_INVALID_PARAMS;
  }
  p->trace = lua_toboolean(L, -1);
  lua_pushliteral(L, "what_if");
  lua_rawget(L, params);
  if (!absent(L, -1) && lua_type(L, -1) != LUA_TBOOLEAN) {
    snprintf(msg, n, "params.what_if: expected true or false");
    return PW_RPC_INVALID_PARAMS;
  }
  p->what_if = lua_toboolean(L, -1);
  lua_pushliteral(L, "protocol");
  lua_rawget(L, params);
  if (!absent(L, -1) && lua_type(L, -1) != LUA_TSTRING) {
    snprintf(msg, n, "params.protocol: expected a protocol id string");
    return PW_RPC_INVALID_PARAMS;
  }
  p->protocol = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
  lua_pushliteral(L, "bundle");
  if (lua_rawget(L, params) != LUA_TTABLE || lua_rawlen(L, -1) > 0) {
    snprintf(msg, n, "params.bundle: expected a FHIR document (an object)");
    return PW_RPC_INVALID_PARAMS;
  }
  p->bundle = lua_gettop(L);
  return 0;
}

static pw_adapter *fhir_adapter(pw_rpc *r, char *msg, size_t n) {
  pw_error err;
  if (r->fhir) return r->fhir;
  char path[4096], codes[4096];
  if (pw_locate_default_adapter(path, sizeof path) != 0 ||
      pw_locate_adapter_codes(path, codes, sizeof codes) != 0) {
    snprintf(msg, n, "FHIR adapter: cannot locate it (set PATHWISE_ADAPTER)");
    return NULL;
  }
  pw_adapter *a = pw_adapter_new(NULL, &err);
  if (a && (pw_adapter_load(a, path, &err) != PW_OK ||
            pw_adapter_add_codes(a, codes, &err) != PW_OK)) {
    pw_adapter_free(a);
    a = NULL;
  }
  if (!a) snprintf(msg, n, "FHIR adapter: %s", err.msg);
  return r->fhir = a;
}

/* Evaluate the derived facts with engine ei and write the response. */
static int fhir_eval(pw_rpc *r, int ei, const fhir_params *p, const pw_adapter_output *in,
                     const char *id, size_t idlen, pw_buf *out, char *msg, size_t n) {
  pw_error err;
  pw_buf res = {0};
  pw_engine *e = r->eng[ei].e;
  unsigned flags = p->trace ? PW_EVAL_TRACE : 0;
  pw_buf_reset(&r->text);
  pw_status st = p->what_if ? pw_whatif_eval(e, in->facts.data, in->facts.len, flags, p->text, NULL,
                                             p->text ? &r->text : &res, &err)
                            : pw_engine_eval(e, in->facts.data, in->facts.len, flags, p->text ? NULL : &res, &err);
  if (st != PW_OK) {
    pw_buf_free(&res);
    snprintf(msg, n, "facts from FHIR: %.500s", err.msg);
    return status_code(st);
  }
  pw_buf_adds(out, "{\"jsonrpc\":\"2.0\",\"id\":");
  if (id) pw_buf_add(out, id, idlen);
  else pw_buf_add(out, "null", 4);
  pw_buf_adds(out, ",\"result\":");
  if (p->text) {
    if (!p->what_if) pw_engine_render_text(e, &r->text);
    pw_buf_adds(&r->text, "\n");
    pw_buf_add(&r->text, in->text.data, in->text.len);
    pw_buf_add(&r->text, "", 0);
    pw_buf_json_str(out, r->text.data);
  } else {
    pw_adapter_splice(&res, in);
    pw_buf_add(out, res.data, res.len);
  }
  pw_buf_add(out, "}\n", 2);
  pw_buf_free(&res);
  return 0;
}

static void handle_fhir(pw_rpc *r, const char *line, size_t len, pw_buf *out, pw_rpc_outcome *oc) {
  size_t start = out->len;
  char msg[600];
  pw_error err;
  pw_gate_info gi;
  fhir_params p;
  pw_adapter_output in = {0};
  const char *id = NULL;
  size_t idlen = 0;
  int code = 0, unknown = 0, ei = r->n > 1 ? pick_engine(r, line, len, &unknown) : 0;
  int reached = 0;   /* the adapter ran: a failure from here on is logged (issue 12) */
  memset(oc, 0, sizeof *oc);
  memset(&p, 0, sizeof p);
  memset(&gi, 0, sizeof gi);
  oc->engine = -1;
  pw_adapter *a = fhir_adapter(r, msg, sizeof msg);
  if (!a) { code = PW_RPC_INTERNAL; goto fail; }
  lua_State *L = pw_adapter_lua(a);
  int base = lua_gettop(L);
  pw_status st = pw_adapter_decode(a, line, len, &gi, &err);
  if (st != PW_OK) {
    pw_span sp;   /* refused: its id, if it can still be read (issue 12) */
    if (pw_rpc_readable_id(line, len, &sp) == 0) {
      id = line + sp.off;
      idlen = sp.len;
    }
    code = st == PW_EMEMORY ? PW_RPC_MEMORY : PW_RPC_PARSE_ERROR;
    snprintf(msg, sizeof msg, "%s%.500s", code == PW_RPC_PARSE_ERROR ? "Parse error: " : "", err.msg);
    goto fail;
  }
  if (gi.has_id) { id = line + gi.id_off; idlen = gi.id_len; }
  if (lua_type(L, base + 1) != LUA_TTABLE) { code = PW_RPC_INVALID_REQUEST; snprintf(msg, sizeof msg, "request: expected an object"); goto done; }
  if ((code = fhir_params_read(L, base + 1, &p, msg, sizeof msg))) goto done;
  if (p.protocol && strcmp(p.protocol, r->eng[ei].id) != 0) unknown = 1;   /* one engine too */
  if (unknown) { code = PW_RPC_UNKNOWN_PROTOCOL; snprintf(msg, sizeof msg, "params.protocol: no loaded protocol has that id"); goto done; }
  if (!p.as_of[0]) pw_adapter_today(p.as_of);
  reached = 1;
  st = pw_adapter_run_value(a, p.bundle, p.as_of, &in, &err);
  if (st != PW_OK) { code = status_code(st); snprintf(msg, sizeof msg, "%.580s", err.msg); goto done; }
  code = fhir_eval(r, ei, &p, &in, id, idlen, out, msg, sizeof msg);
done:
  lua_settop(L, base);
  lua_gc(L, LUA_GCCOLLECT);
  if (!code) {
    oc->resp_len = out->len - start;
    oc->engine = ei;
    if (r->cfg.log) log_fragment(r, ei, line, len, out);
    pw_adapter_output_free(&in);
    return;
  }
fail:
  pw_adapter_output_free(&in);
  buf_cut(out, start);
  pw_rpc_error_line(out, id, idlen, code, msg);
  oc->code = code;
  oc->engine = ei;
  oc->resp_len = out->len - start;
  if (reached && r->cfg.log) log_error_fragment(r, ei, code, msg, out);
}

/* }====== */

/* {====== cds: the CDS Hooks service (cds.h), for the HTTP listener      */
/*
** params: {op: "discovery" | "call" | "feedback", service?, request?}. The
** supervisor built the line from an HTTP request (httpd.c); request is the
** HTTP body, already gate-checked there. The result is {"status": the HTTP
** status, "body": the HTTP body}; the decision-log fragment names the
** service and status (a call adds the engine's usual fragment, feedback its
** records). The request itself (fhirAuthorization and its access token) is
** never written to the log.
*/

typedef struct cds_params {
  char op[16], service[160];
  const char *req;
  size_t req_len;
} cds_params;

static int cds_params_read(const char *line, size_t len, cds_params *p, const char **id, size_t *idlen) {
  static const char *const top[] = {"id", "params"};
  static const char *const par[] = {"op", "service", "request"};
  pw_span sp[2], pp[3];
  memset(p, 0, sizeof *p);
  if (pw_rpc_members(line, len, top, 2, sp, 0) != 0 || !sp[1].len) return -1;
  if (sp[0].len) { *id = line + sp[0].off; *idlen = sp[0].len; }
  const char *par_text = line + sp[1].off;
  if (pw_rpc_members(par_text, sp[1].len, par, 3, pp, 0) != 0) return -1;
  if (!pp[0].len || pw_rpc_string(par_text + pp[0].off, pp[0].len, p->op, sizeof p->op) < 0) return -1;
  if (pp[1].len && pw_rpc_string(par_text + pp[1].off, pp[1].len, p->service, sizeof p->service) < 0) return -1;
  if (pp[2].len) { p->req = par_text + pp[2].off; p->req_len = pp[2].len; }
  return 0;
}

/* The loaded protocols' id, title and version (strings in store). */
static int cds_protocols(pw_rpc *r, pw_cds_protocol *p, char (*store)[3][256], int max) {
  static const char *const keys[] = {"id", "title", "version"};
  int n = 0;
  for (int i = 0; i < r->n && n < max; i++) {
    pw_buf b = {0};
    pw_span sp[3];
    pw_engine_protocol_json(r->eng[i].e, &b);
    memset(store[n], 0, sizeof store[n]);
    if (b.data && pw_rpc_members(b.data, b.len, keys, 3, sp, 0) == 0)
      for (int k = 0; k < 3; k++)
        if (sp[k].len) pw_rpc_string(b.data + sp[k].off, sp[k].len, store[n][k], sizeof store[n][k]);
    if (!store[n][0][0]) snprintf(store[n][0], sizeof store[n][0], "%s", r->eng[i].id);
    p[n].id = store[n][0];
    p[n].title = store[n][1];
    p[n].version = store[n][2];
    n++;
    pw_buf_free(&b);
  }
  return n;
}

static int cds_feedback(const cds_params *p, pw_buf *body, pw_buf *frag) {
  static const char *const keys[] = {"feedback"};
  pw_span sp[1];
  if (!p->req || pw_rpc_members(p->req, p->req_len, keys, 1, sp, 0) != 0 || !sp[0].len ||
      p->req[sp[0].off] != '[') {
    pw_cds_outcome(body, "invalid", "feedback: expected {\"feedback\": [...]}");
    return 400;
  }
  pw_buf_adds(body, "{}");
  pw_buf_adds(frag, ",\"feedback\":");
  pw_buf_add(frag, p->req + sp[0].off, sp[0].len);
  return 200;
}

static void handle_cds(pw_rpc *r, const char *line, size_t len, pw_buf *out, pw_rpc_outcome *oc) {
  cds_params p;
  const char *id = NULL;
  size_t idlen = 0;
  pw_buf body = {0}, frag = {0};
  pw_cds_protocol protos[16];
  char store[16][3][256];
  int status = 200, ei = -1;
  char msg[300];
  memset(oc, 0, sizeof *oc);
  oc->engine = 0;
  if (cds_params_read(line, len, &p, &id, &idlen) != 0) {
    pw_rpc_error_line(out, id, idlen, PW_RPC_INVALID_PARAMS, "cds: params {op, service?, request?} expected");
    oc->code = PW_RPC_INVALID_PARAMS;
    oc->resp_len = out->len;
    return;
  }
  int np = cds_protocols(r, protos, store, 16);
  pw_error err;
  char apath[4096], cpath[4096];
  int located = r->cds || (pw_locate_default_adapter(apath, sizeof apath) == 0 &&
                           pw_locate_adapter_codes(apath, cpath, sizeof cpath) == 0);
  if (!located) {
    status = 500;
    pw_cds_outcome(&body, "exception", "FHIR adapter code table: cannot locate it (set PATHWISE_ADAPTER)");
  } else if (!r->cds && !(r->cds = pw_cds_new(cpath, &err))) {
    status = 500;
    pw_cds_outcome(&body, "exception", err.msg);
  } else if (!strcmp(p.op, "discovery")) {
    pw_cds_discovery(r->cds, protos, np, &body);
  } else {
    int hook = pw_cds_service(p.service, protos, np, &ei);
    pw_adapter *a = hook >= 0 ? fhir_adapter(r, msg, sizeof msg) : NULL;
    if (hook < 0) {
      status = 404;
      pw_cds_outcome(&body, "not-found", "no CDS service with that id (GET /cds-services lists them)");
    } else if (!strcmp(p.op, "feedback")) {
      status = cds_feedback(&p, &body, &frag);
    } else if (!a) {
      status = 500;
      pw_cds_outcome(&body, "exception", msg);
    } else {
      status = pw_cds_call(r->cds, r->eng[ei].e, a, hook, p.req ? p.req : "", p.req_len, NULL, &body);
    }
  }
  size_t start = out->len;
  pw_buf_adds(out, "{\"jsonrpc\":\"2.0\",\"id\":");
  if (id) pw_buf_add(out, id, idlen);
  else pw_buf_adds(out, "null");
  pw_buf_addf(out, ",\"result\":{\"status\":%d,\"body\":", status);
  pw_buf_add(out, body.data ? body.data : "{}", body.data ? body.len : 2);
  pw_buf_adds(out, "}}\n");
  oc->resp_len = out->len - start;
  oc->engine = ei >= 0 ? ei : 0;
  if (r->cfg.log) {
    if (status == 200 && ei >= 0 && !strcmp(p.op, "call")) {
      log_fragment(r, ei, line, len, out);
      pw_buf_add(out, ",", 1);
    } else {   /* no decision: who answered, and for which protocol if known */
      pw_buf_addf(out, "\"schema_version\":%d,\"engine\":\"" PW_VERSION "\",", PW_RESULT_SCHEMA);
      if (ei >= 0) {
        pw_buf_add(out, r->eng[ei].ident.data, r->eng[ei].ident.len);
        pw_buf_add(out, ",", 1);
      }
    }
    pw_buf_adds(out, "\"cds\":{\"op\":");
    pw_buf_json_str(out, p.op);
    pw_buf_adds(out, ",\"service\":");
    pw_buf_json_str(out, p.service);
    pw_buf_addf(out, ",\"status\":%d", status);
    pw_buf_add(out, frag.data ? frag.data : "", frag.len);
    pw_buf_add(out, "}", 1);
  }
  pw_buf_free(&body);
  pw_buf_free(&frag);
}

/* }====== */
