/*
** rpc.c: JSON-RPC 2.0 helpers (supervisor side) and the worker's handler
** for evaluate and check_orders.
**
** The scanner only delimits: strings are skipped to their closing quote,
** containers by counting brackets outside strings, scalars as a run of
** [A-Za-z0-9+-.]. Every index is checked against n, so any bytes are safe.
** Whether the text is valid JSON is the gate's business (pw_engine_decode
** runs it in the worker before cjson sees a byte).
**
** The worker reads the decoded request with raw access only (lua_rawget,
** lua_next), never a metamethod, and leaves its engine's stack as found.
*/
#include "rpc.h"

#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adapter.h"
#include "engine.h"
#include "result.h"
#include "whatif.h"

/* ==================================================================== */
/* {====== method table and error kinds                                 */

static const char *const rpc_methods[PW_M__COUNT] = {
  NULL, "evaluate", "check_orders", "protocols", "rules", "reload", "health", "stats",
  "evaluate_fhir"
};

int pw_rpc_method_num(const char *s, size_t n) {
  for (int m = 1; m < PW_M__COUNT; m++)
    if (strlen(rpc_methods[m]) == n && memcmp(rpc_methods[m], s, n) == 0) return m;
  return PW_M_NONE;
}

const char *pw_rpc_method_name(int m) {
  return (m > 0 && m < PW_M__COUNT) ? rpc_methods[m] : "unknown";
}

const char *pw_rpc_code_kind(int code) {
  switch (code) {
    case PW_RPC_PARSE_ERROR: return "parse";
    case PW_RPC_INVALID_REQUEST: return "invalid_request";
    case PW_RPC_METHOD_NOT_FOUND: return "method_not_found";
    case PW_RPC_INVALID_PARAMS: return "invalid_params";
    case PW_RPC_VALIDATION: return "validation";
    case PW_RPC_PROTOCOL: return "protocol";
    case PW_RPC_BUDGET: return "budget";
    case PW_RPC_MEMORY: return "memory";
    case PW_RPC_DEADLINE: return "deadline";
    case PW_RPC_WORKER_CRASH: return "worker_crash";
    case PW_RPC_LOG_FAILED: return "decision_log";
    case PW_RPC_TOO_LARGE: return "too_large";
    case PW_RPC_BUSY: return "busy";
    case PW_RPC_UNKNOWN_PROTOCOL: return "unknown_protocol";
    case PW_RPC_FORBIDDEN: return "forbidden";
    case PW_RPC_RELOAD_FAILED: return "reload";
    default: return "internal";
  }
}

void pw_rpc_error_line(pw_buf *out, const char *id, size_t idlen, int code,
                       const char *msg) {
  pw_buf_adds(out, "{\"jsonrpc\":\"2.0\",\"id\":");
  if (id && idlen) pw_buf_add(out, id, idlen);
  else pw_buf_add(out, "null", 4);
  pw_buf_addf(out, ",\"error\":{\"code\":%d,\"message\":", code);
  pw_buf_json_str(out, msg ? msg : "");
  pw_buf_adds(out, ",\"data\":{\"kind\":\"");
  pw_buf_adds(out, pw_rpc_code_kind(code));
  pw_buf_add(out, "\"}}}\n", 5);
}

/* }====== */

/* ==================================================================== */
/* {====== the scanner                                                  */

static size_t scan_ws(const char *s, size_t i, size_t n) {
  while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
  return i;
}

/* s[i] is '"'; returns the index after the closing quote, 0 if none. */
static size_t scan_string(const char *s, size_t i, size_t n) {
  i++;
  while (i < n) {
    const char *q = memchr(s + i, '"', n - i);
    if (!q) return 0;
    size_t j = (size_t)(q - s);
    /* count the backslashes just before the quote */
    size_t k = j;
    while (k > i && s[k - 1] == '\\') k--;
    if (((j - k) & 1) == 0) return j + 1;
    i = j + 1;
  }
  return 0;
}

static int scalar_char(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         c == '-' || c == '+' || c == '.';
}

/* Returns the index after the value starting at s[i], 0 if malformed. */
static size_t scan_value(const char *s, size_t i, size_t n) {
  if (i >= n) return 0;
  char c = s[i];
  if (c == '"') return scan_string(s, i, n);
  if (c == '{' || c == '[') {
    size_t depth = 0;
    while (i < n) {
      c = s[i];
      if (c == '"') {
        i = scan_string(s, i, n);
        if (!i) return 0;
        continue;
      }
      if (c == '{' || c == '[') depth++;
      else if (c == '}' || c == ']') {
        if (--depth == 0) return i + 1;
      }
      i++;
    }
    return 0;
  }
  size_t j = i;
  while (j < n && scalar_char(s[j])) j++;
  return j > i ? j : 0;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static int hex4(const char *s, size_t i, size_t n) {
  if (i + 4 > n) return -1;
  int v = 0;
  for (int k = 0; k < 4; k++) {
    int h = hexval(s[i + (size_t)k]);
    if (h < 0) return -1;
    v = v * 16 + h;
  }
  return v;
}

int pw_rpc_string(const char *s, size_t n, char *out, size_t cap) {
  if (n < 2 || s[0] != '"' || s[n - 1] != '"' || cap == 0) return -1;
  size_t o = 0;
  for (size_t i = 1; i < n - 1; i++) {
    unsigned char c = (unsigned char)s[i];
    unsigned long cp;
    if (c < 0x20) return -1;
    if (c != '\\') {
      if (o + 1 >= cap) return -1;
      out[o++] = (char)c;
      continue;
    }
    if (++i >= n - 1) return -1;
    switch (s[i]) {
      case '"': cp = '"'; break;
      case '\\': cp = '\\'; break;
      case '/': cp = '/'; break;
      case 'b': cp = '\b'; break;
      case 'f': cp = '\f'; break;
      case 'n': cp = '\n'; break;
      case 'r': cp = '\r'; break;
      case 't': cp = '\t'; break;
      case 'u': {
        int h = hex4(s, i + 1, n - 1);
        if (h < 0) return -1;
        i += 4;
        cp = (unsigned long)h;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          if (i + 2 >= n - 1 || s[i + 1] != '\\' || s[i + 2] != 'u') return -1;
          int lo = hex4(s, i + 3, n - 1);
          if (lo < 0xDC00 || lo > 0xDFFF) return -1;
          i += 6;
          cp = 0x10000 + ((cp - 0xD800) << 10) + ((unsigned long)lo - 0xDC00);
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          return -1;
        }
        if (cp == 0) return -1;
        break;
      }
      default: return -1;
    }
    char u[4];
    size_t k;
    if (cp < 0x80) { u[0] = (char)cp; k = 1; }
    else if (cp < 0x800) { u[0] = (char)(0xC0 | (cp >> 6)); u[1] = (char)(0x80 | (cp & 0x3F)); k = 2; }
    else if (cp < 0x10000) {
      u[0] = (char)(0xE0 | (cp >> 12)); u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
      u[2] = (char)(0x80 | (cp & 0x3F)); k = 3;
    } else {
      u[0] = (char)(0xF0 | (cp >> 18)); u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
      u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); u[3] = (char)(0x80 | (cp & 0x3F)); k = 4;
    }
    if (o + k >= cap) return -1;
    memcpy(out + o, u, k);
    o += k;
  }
  out[o] = '\0';
  return (int)o;
}

int pw_rpc_members(const char *s, size_t n, const char *const *keys, int nkeys,
                   pw_span *spans, int flags) {
  int found = 0;
  for (int k = 0; k < nkeys; k++) spans[k].off = spans[k].len = 0;
  size_t i = scan_ws(s, 0, n);
  if (i >= n || s[i] != '{') return -1;
  i = scan_ws(s, i + 1, n);
  if (i < n && s[i] == '}') {
    i = scan_ws(s, i + 1, n);
    return i == n ? 0 : -1;
  }
  for (;;) {
    if (i >= n || s[i] != '"') return -1;
    size_t kend = scan_string(s, i, n);
    if (!kend) return -1;
    const char *key = s + i + 1;
    size_t klen = kend - i - 2;
    i = scan_ws(s, kend, n);
    if (i >= n || s[i] != ':') return -1;
    i = scan_ws(s, i + 1, n);
    size_t vend = scan_value(s, i, n);
    if (!vend) return -1;
    char dec[64];
    if (memchr(key, '\\', klen)) {
      int dl = pw_rpc_string(s + (key - s) - 1, klen + 2, dec, sizeof dec);
      if (dl < 0) { dec[0] = '\0'; dl = 0; }
      key = dec;
      klen = (size_t)dl;
    }
    for (int k = 0; k < nkeys; k++) {
      if (strlen(keys[k]) == klen && memcmp(keys[k], key, klen) == 0) {
        if (spans[k].len) return -1;   /* duplicate */
        spans[k].off = i;
        spans[k].len = vend - i;
        found++;
        break;
      }
    }
    if ((flags & PW_RPC_FIRST) && found == nkeys) return 0;
    i = scan_ws(s, vend, n);
    if (i < n && s[i] == ',') {
      i = scan_ws(s, i + 1, n);
      continue;
    }
    if (i < n && s[i] == '}') {
      i = scan_ws(s, i + 1, n);
      return i == n ? 0 : -1;
    }
    return -1;
  }
}

/* }====== */

/* ==================================================================== */
/* {====== the worker half                                              */

typedef struct rpc_engine {
  pw_engine *e;
  char *id;
  pw_buf ident;         /* "protocol":{"id":..,"version":..,"sha256":..} */
} rpc_engine;

struct pw_rpc {
  pw_rpc_config cfg;
  rpc_engine *eng;
  int n;
  pw_buf text;
  pw_adapter *fhir;     /* evaluate_fhir: made on first use (rpc_fhir.c part below) */
};

static void rpc_engine_clear(rpc_engine *re) {
  if (re->e) pw_engine_free(re->e);
  free(re->id);
  pw_buf_free(&re->ident);
  memset(re, 0, sizeof *re);
}

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
      /* the report says which example and why; keep the message short */
      size_t keep = rep.len;
      if (keep > 300) keep = 300;
      snprintf(err, errlen, "%s: example cases failed: %s%s%.*s", p->name, e.msg,
               keep ? ": " : "", (int)keep, rep.data ? rep.data : "");
      for (char *c = err; *c; c++)
        if (*c == '\n') *c = ' ';
      pw_buf_free(&rep);
      return -1;
    }
    pw_buf_free(&rep);
  }
  const char *id = pw_engine_protocol_id(re->e);
  re->id = strdup(id ? id : "");
  if (!re->id) abort();
  pw_buf_adds(&re->ident, "\"protocol\":{\"id\":");
  pw_buf_json_str(&re->ident, pw_engine_protocol_id(re->e));
  pw_buf_adds(&re->ident, ",\"version\":");
  pw_buf_json_str(&re->ident, pw_engine_protocol_version(re->e));
  pw_buf_adds(&re->ident, ",\"sha256\":");
  pw_buf_json_str(&re->ident, pw_engine_protocol_sha256(re->e));
  pw_buf_adds(&re->ident, "}");
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
  free(r);
}

void pw_rpc_ready_payload(pw_rpc *r, pw_buf *out) {
  pw_buf_add(out, "[", 1);
  for (int i = 0; i < r->n; i++) {
    if (i) pw_buf_add(out, ",", 1);
    pw_engine_protocol_json(r->eng[i].e, out);
  }
  pw_buf_add(out, "]\n", 2);
  for (int i = 0; i < r->n; i++) {
    pw_buf_adds(out, r->eng[i].id);
    pw_buf_add(out, "\n", 1);
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
  static const char *const top[] = {"params"};
  static const char *const par[] = {"protocol"};
  pw_span sp[1], pp[1];
  char name[128];
  *unknown = 0;
  if (pw_rpc_members(line, len, top, 1, sp, PW_RPC_FIRST) != 0 || !sp[0].len) return 0;
  if (pw_rpc_members(line + sp[0].off, sp[0].len, par, 1, pp, PW_RPC_FIRST) != 0 ||
      !pp[0].len)
    return 0;
  const char *v = line + sp[0].off + pp[0].off;
  if (pp[0].len == 4 && memcmp(v, "null", 4) == 0) return 0;
  if (pw_rpc_string(v, pp[0].len, name, sizeof name) < 0) return 0; /* type error later */
  for (int i = 0; i < r->n; i++)
    if (strcmp(r->eng[i].id, name) == 0) return i;
  *unknown = 1;
  return 0;
}

/* The raw text of params.facts (for --log-facts). */
static pw_span facts_span(const char *line, size_t len) {
  static const char *const top[] = {"params"};
  static const char *const par[] = {"facts"};
  pw_span sp[1], fp[1], none = {0, 0};
  if (pw_rpc_members(line, len, top, 1, sp, PW_RPC_FIRST) != 0 || !sp[0].len) return none;
  if (pw_rpc_members(line + sp[0].off, sp[0].len, par, 1, fp, PW_RPC_FIRST) != 0 ||
      !fp[0].len)
    return none;
  fp[0].off += sp[0].off;
  return fp[0];
}

/* Is the empty table at params.<key> written as {} (1) or [] (0)? */
static int empty_was_object(const char *line, size_t len, const char *key) {
  static const char *const top[] = {"params"};
  const char *par[1] = {key};
  pw_span sp[1], kp[1];
  if (pw_rpc_members(line, len, top, 1, sp, 0) != 0 || !sp[0].len) return 1;
  if (pw_rpc_members(line + sp[0].off, sp[0].len, par, 1, kp, 0) != 0 || !kp[0].len) return 1;
  return line[sp[0].off + kp[0].off] == '{';
}

static void log_fragment(pw_rpc *r, int ei, const char *line, size_t len, pw_buf *out) {
  rpc_engine *re = &r->eng[ei];
  const pw_result *res = pw_engine_result(re->e);
  pw_buf_addf(out, "\"schema_version\":%d,\"engine\":\"" PW_VERSION "\",", PW_RESULT_SCHEMA);
  pw_buf_add(out, re->ident.data, re->ident.len);
  pw_buf_adds(out, ",\"facts_sha256\":");
  pw_buf_json_str(out, res ? res->facts_sha256 : NULL);
  if (r->cfg.log_facts) {
    pw_span f = facts_span(line, len);
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

static void handle_fhir(pw_rpc *r, const char *line, size_t len, pw_buf *out, pw_rpc_outcome *oc);

void pw_rpc_handle(pw_rpc *r, int method, const char *line, size_t len, pw_buf *out,
                   pw_rpc_outcome *oc) {
  if (method == PW_M_EVALUATE_FHIR) { handle_fhir(r, line, len, out, oc); return; }
  size_t start = out->len;
  const char *id = NULL;
  size_t idlen = 0;
  char msg[600];
  int code = 0;
  int ei = 0, unknown = 0;
  oc->code = 0;
  oc->protocol = -1;
  oc->resp_len = 0;
  oc->fatal = 0;

  if (r->n > 1) ei = pick_engine(r, line, len, &unknown);
  rpc_engine *re = &r->eng[ei];
  lua_State *L = pw_engine_lua(re->e);
  int base = lua_gettop(L);
  pw_gate_info gi;
  pw_error err;
  memset(&gi, 0, sizeof gi);
  err.code = PW_OK;
  err.msg[0] = '\0';

  pw_status st = pw_engine_decode(re->e, line, len, &gi, &err);
  if (st != PW_OK) {
    code = st == PW_EMEMORY ? PW_RPC_MEMORY : PW_RPC_PARSE_ERROR;
    snprintf(msg, sizeof msg, "%s%s", code == PW_RPC_PARSE_ERROR ? "Parse error: " : "", err.msg);
    goto fail;
  }
  if (gi.has_id) {
    id = line + gi.id_off;
    idlen = gi.id_len;
  }
  if (!lua_checkstack(L, 8)) {
    code = PW_RPC_INTERNAL;
    snprintf(msg, sizeof msg, "Lua stack exhausted");
    goto fail;
  }
  int req = base + 1;
  if (lua_type(L, req) != LUA_TTABLE) {
    code = PW_RPC_INVALID_REQUEST;
    snprintf(msg, sizeof msg, "request: expected an object");
    goto fail;
  }
  lua_pushliteral(L, "params");
  if (lua_rawget(L, req) != LUA_TTABLE) {
    code = PW_RPC_INVALID_PARAMS;
    snprintf(msg, sizeof msg, "params: expected an object with member 'facts'");
    goto fail;
  }
  int params = base + 2;
  /* every member must be known: a typo is an error, not a silent default */
  lua_pushnil(L);
  while (lua_next(L, params)) {
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    int ok = k && (strcmp(k, "facts") == 0 || strcmp(k, "protocol") == 0 ||
                   (method == PW_M_EVALUATE &&
                    (strcmp(k, "format") == 0 || strcmp(k, "trace") == 0 || strcmp(k, "what_if") == 0)) ||
                   (method == PW_M_CHECK_ORDERS && strcmp(k, "orders") == 0));
    if (!ok) {
      code = PW_RPC_INVALID_PARAMS;
      snprintf(msg, sizeof msg, "params: unknown member '%.60s' for %s", k ? k : "?",
               pw_rpc_method_name(method));
      lua_pop(L, 2);
      goto fail;
    }
    lua_pop(L, 1);
  }
  lua_pushliteral(L, "facts");
  int facts = base + 3;
  if (lua_rawget(L, params) != LUA_TTABLE) {
    code = PW_RPC_INVALID_PARAMS;
    snprintf(msg, sizeof msg, "params.facts: expected an object");
    goto fail;
  }
  lua_pushnil(L);
  if (lua_next(L, facts)) lua_pop(L, 2);
  else if (!empty_was_object(line, len, "facts")) {
    code = PW_RPC_INVALID_PARAMS;
    snprintf(msg, sizeof msg, "params.facts: expected an object, got an array");
    goto fail;
  }
  /* protocol */
  lua_pushliteral(L, "protocol");
  lua_rawget(L, params);                                  /* base+4 */
  if (!absent(L, -1)) {
    if (lua_type(L, -1) != LUA_TSTRING) {
      code = PW_RPC_INVALID_PARAMS;
      snprintf(msg, sizeof msg, "params.protocol: expected a protocol id string");
      goto fail;
    }
    if (unknown || strcmp(lua_tostring(L, -1), re->id) != 0) {
      code = PW_RPC_UNKNOWN_PROTOCOL;
      snprintf(msg, sizeof msg, "params.protocol: no loaded protocol has id '%.100s'",
               lua_tostring(L, -1));
      goto fail;
    }
  }
  unsigned flags = 0;
  int text = 0, orders = 0, what_if = 0;
  if (method == PW_M_EVALUATE) {
    lua_pushliteral(L, "format");
    lua_rawget(L, params);                                /* base+5 */
    if (!absent(L, -1)) {
      const char *f = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
      if (f && strcmp(f, "text") == 0) text = 1;
      else if (!f || strcmp(f, "json") != 0) {
        code = PW_RPC_INVALID_PARAMS;
        snprintf(msg, sizeof msg, "params.format: expected \"json\" or \"text\"");
        goto fail;
      }
    }
    lua_pushliteral(L, "trace");
    lua_rawget(L, params);                                /* base+6 */
    if (!absent(L, -1)) {
      if (lua_type(L, -1) != LUA_TBOOLEAN) {
        code = PW_RPC_INVALID_PARAMS;
        snprintf(msg, sizeof msg, "params.trace: expected true or false");
        goto fail;
      }
      if (lua_toboolean(L, -1)) flags |= PW_EVAL_TRACE;
    }
    lua_pushliteral(L, "what_if");
    lua_rawget(L, params);                                /* base+7 */
    if (!absent(L, -1) && lua_type(L, -1) != LUA_TBOOLEAN) {
      code = PW_RPC_INVALID_PARAMS;
      snprintf(msg, sizeof msg, "params.what_if: expected true or false");
      goto fail;
    }
    what_if = lua_type(L, -1) == LUA_TBOOLEAN && lua_toboolean(L, -1);   /* issue 17 */
  } else {
    flags |= PW_EVAL_ORDERS_ONLY;
    lua_pushliteral(L, "orders");
    orders = base + 5;
    if (lua_rawget(L, params) != LUA_TTABLE) {
      code = PW_RPC_INVALID_PARAMS;
      snprintf(msg, sizeof msg, "params.orders: expected an array of order ids");
      goto fail;
    }
    lua_Integer n = (lua_Integer)lua_rawlen(L, orders), count = 0;
    lua_pushnil(L);
    while (lua_next(L, orders)) {
      count++;
      if (!lua_isinteger(L, -2) || lua_tointeger(L, -2) < 1 || lua_tointeger(L, -2) > n ||
          lua_type(L, -1) != LUA_TSTRING) {
        int bad_key = !lua_isinteger(L, -2);
        lua_pop(L, 2);
        code = PW_RPC_INVALID_PARAMS;
        if (bad_key) snprintf(msg, sizeof msg, "params.orders: expected an array, got an object");
        else snprintf(msg, sizeof msg, "params.orders: every item must be an order id string");
        goto fail;
      }
      lua_pop(L, 1);
    }
    if (count == 0 && empty_was_object(line, len, "orders")) {
      code = PW_RPC_INVALID_PARAMS;
      snprintf(msg, sizeof msg, "params.orders: expected an array, got an object");
      goto fail;
    }
  }

  pw_buf_add(out, "{\"jsonrpc\":\"2.0\",\"id\":", 22);
  if (id) pw_buf_add(out, id, idlen);
  else pw_buf_add(out, "null", 4);
  pw_buf_add(out, ",\"result\":", 10);
  if (what_if) {   /* the result with its what_if member, or the text report with its section */
    pw_buf_reset(&r->text);
    st = pw_whatif_eval_table(re->e, facts, flags, text, NULL, text ? &r->text : out, &err);
    if (st == PW_OK && text) {
      pw_buf_add(&r->text, "", 0);
      pw_buf_json_str(out, r->text.data);
    }
  } else if (text) {
    st = pw_engine_eval_table(re->e, facts, orders, flags, NULL, &err);   /* no JSON needed */
    if (st == PW_OK) {
      pw_buf_reset(&r->text);
      pw_engine_render_text(re->e, &r->text);
      pw_buf_add(&r->text, "", 0);   /* NUL-terminated even when empty */
      pw_buf_json_str(out, r->text.data);
    }
  } else {
    st = pw_engine_eval_table(re->e, facts, orders, flags, out, &err);   /* one line: ends in '}' */
  }
  if (st != PW_OK) {
    buf_cut(out, start);
    code = status_code(st);
    snprintf(msg, sizeof msg, "%s", err.msg);
    goto fail;
  }
  pw_buf_add(out, "}\n", 2);
  oc->resp_len = out->len - start;
  oc->protocol = ei;
  if (r->cfg.log) log_fragment(r, ei, line, len, out);
  lua_settop(L, base);
  return;

fail:
  lua_settop(L, base);
  buf_cut(out, start);
  pw_rpc_error_line(out, id, idlen, code, msg);
  oc->code = code;
  oc->protocol = ei;
  oc->resp_len = out->len - start;
  if (code == PW_RPC_MEMORY || code == PW_RPC_INTERNAL) {
    /* the state may be unusable: rebuild it from the same source */
    char e2[256];
    if (rpc_engine_build(r, ei, 0, e2, sizeof e2) != 0) oc->fatal = 1; /* respawn me */
  }
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
  pw_adapter *a = pw_adapter_new(NULL, &err);
  if (a && (pw_adapter_load(a, PW_DEFAULT_ADAPTER, &err) != PW_OK ||
            pw_adapter_add_codes(a, PW_DEFAULT_ADAPTER_CODES, &err) != PW_OK)) {
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
  memset(oc, 0, sizeof *oc);
  memset(&p, 0, sizeof p);
  memset(&gi, 0, sizeof gi);
  oc->protocol = -1;
  pw_adapter *a = fhir_adapter(r, msg, sizeof msg);
  if (!a) { code = PW_RPC_INTERNAL; goto fail; }
  lua_State *L = pw_adapter_lua(a);
  int base = lua_gettop(L);
  pw_status st = pw_adapter_decode(a, line, len, &gi, &err);
  if (st != PW_OK) {
    code = st == PW_EMEMORY ? PW_RPC_MEMORY : PW_RPC_PARSE_ERROR;
    snprintf(msg, sizeof msg, "%s%.500s", code == PW_RPC_PARSE_ERROR ? "Parse error: " : "", err.msg);
    goto fail;
  }
  if (gi.has_id) { id = line + gi.id_off; idlen = gi.id_len; }
  if (lua_type(L, base + 1) != LUA_TTABLE) { code = PW_RPC_INVALID_REQUEST; snprintf(msg, sizeof msg, "request: expected an object"); goto done; }
  if ((code = fhir_params_read(L, base + 1, &p, msg, sizeof msg))) goto done;
  if (unknown) { code = PW_RPC_UNKNOWN_PROTOCOL; snprintf(msg, sizeof msg, "params.protocol: no loaded protocol has that id"); goto done; }
  if (!p.as_of[0]) pw_adapter_today(p.as_of);
  st = pw_adapter_run_value(a, p.bundle, p.as_of, &in, &err);
  if (st != PW_OK) { code = status_code(st); snprintf(msg, sizeof msg, "%.580s", err.msg); goto done; }
  code = fhir_eval(r, ei, &p, &in, id, idlen, out, msg, sizeof msg);
done:
  lua_settop(L, base);
  lua_gc(L, LUA_GCCOLLECT);
  if (!code) {
    oc->resp_len = out->len - start;
    oc->protocol = ei;
    if (r->cfg.log) log_fragment(r, ei, line, len, out);
    pw_adapter_output_free(&in);
    return;
  }
fail:
  pw_adapter_output_free(&in);
  buf_cut(out, start);
  pw_rpc_error_line(out, id, idlen, code, msg);
  oc->code = code;
  oc->protocol = ei;
  oc->resp_len = out->len - start;
}

/* }====== */
