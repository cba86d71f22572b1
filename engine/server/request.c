/*
** request.c: one request line, as the supervisor sees it.
**
** The supervisor reads only jsonrpc, method and id (pw_rpc_members, a
** bounded scan); the line's full strict check (pw_gate_check) runs here
** only for the methods answered here and for error replies that echo the
** id; an evaluation's line is checked in the worker, by its decode. So an
** evaluate, check_orders or evaluate_fhir line becomes a req and goes to
** the pool (pool.c) unparsed; health, stats, protocols, rules and reload go to
** methods.c; everything else is answered with an error at once.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor.h"

void pw_req_free(req *r) {
  conn *c = r->c;
  if (!r->answered) c->inflight--;
  free(r);
  pw_conn_unref(c);
}

/* An id that is safe to echo (the line passed the gate), else NULL. */
static const char *req_id(srv *s, req *r, size_t *len) {
  *len = 0;
  if (!r->id_len) return NULL;
  pw_gate_info gi;
  char e[8];
  if (pw_gate_check(r->line, r->len, &s->gate, &gi, e, sizeof e) != 0) {
    pw_span sp;   /* refused: its id, if it can still be read */
    if (pw_rpc_readable_id(r->line, r->len, &sp) != 0) return NULL;
    *len = sp.len;
    return r->line + sp.off;
  }
  if (!gi.has_id) return NULL;
  *len = gi.id_len;
  return r->line + gi.id_off;
}

/* Answer r with an error now (it may stay queued at a worker). */
void pw_req_fail(srv *s, req *r, int code, const char *msg) {
  if (r->answered) return;
  r->answered = 1;
  r->c->inflight--;
  s->responses++;
  pw_stats_latency(s, r->t_recv);
  if (r->id_len) {
    size_t idlen;
    const char *id = req_id(s, r, &idlen);
    pw_conn_error(r->c, id, idlen, code, msg);
  } else {
    pw_stats_error(s, code);
  }
}

/* Answer a line p[0..n) the gate refused (its message in e), or, with e
** NULL, one it passed that is still no JSON-RPC request object; its id is
** echoed when it can still be read (pw_rpc_readable_id). */
static void parse_error(conn *c, const char *p, size_t n, const char *e) {
  char msg[400];
  pw_span id = {0, 0};
  snprintf(msg, sizeof msg, "Parse error: %s", e ? e : "not a JSON-RPC request object");
  if (pw_rpc_readable_id(p, n, &id) != 0) id.len = 0;
  pw_conn_error(c, id.len ? p + id.off : NULL, id.len, PW_RPC_PARSE_ERROR, msg);
}

/* null, a string of at most 256 bytes, or a finite number a client can
** read back exactly (|id| <= 2^53 - 1): 1e400 or a 1 KiB string is refused */
static int id_ok(const char *id, size_t n) {
  if (n == 4 && memcmp(id, "null", 4) == 0) return 1;
  if (id[0] == '"') return n <= 258;
  if (!(id[0] == '-' || (id[0] >= '0' && id[0] <= '9')) || n > 40) return 0;
  char t[41], *end;
  memcpy(t, id, n);
  t[n] = '\0';
  double v = strtod(t, &end);
  return *end == '\0' && isfinite(v) && fabs(v) <= 9007199254740991.0;
}

/* What the supervisor reads of a line: its id, method and, if the
** envelope is wrong, why. */
typedef struct line_head {
  const char *id;            /* raw text; NULL when absent */
  size_t idlen;
  int m;                     /* PW_M_NONE when unknown or bad */
  const char *bad;           /* the envelope is not JSON-RPC 2.0: why */
  char method[64];
} line_head;

static void line_head_read(const char *p, const pw_span sp[3], line_head *h) {
  char ver[8];
  h->id = sp[2].len ? p + sp[2].off : NULL;
  h->idlen = sp[2].len;
  h->m = PW_M_NONE;
  h->bad = NULL;
  h->method[0] = '\0';
  if (h->id && !id_ok(h->id, h->idlen)) {
    h->bad = "id: expected null, a string of at most 256 bytes or a finite number of at most "
             "2^53-1 in magnitude";
    h->id = NULL;   /* not echoed */
  }
  else if (!sp[0].len || pw_rpc_string(p + sp[0].off, sp[0].len, ver, sizeof ver) != 3 ||
           strcmp(ver, "2.0") != 0)
    h->bad = "jsonrpc: expected \"2.0\"";
  else if (!sp[1].len ||
           pw_rpc_string(p + sp[1].off, sp[1].len, h->method, sizeof h->method) < 0)
    h->bad = "method: expected a method name string";
  else h->m = pw_rpc_method_num(h->method, strlen(h->method));
}

static req *req_new(conn *c, const char *p, size_t n, const line_head *h) {
  srv *s = c->s;
  req *r = malloc(sizeof *r + n);
  if (!r) return NULL;
  memcpy(r->line, p, n);
  r->len = (uint32_t)n;
  r->link.next = NULL;
  r->c = c;
  r->tag = ++s->tag_seq;
  r->t_recv = pw_worker_now_ns();
  r->deadline = r->t_recv + SRV_MS(s->o.timeout_ms);
  r->method = (uint16_t)h->m;
  r->answered = r->retries = 0;
  r->id_off = h->id ? (uint32_t)(h->id - p) : 0;
  r->id_len = (uint32_t)h->idlen;
  c->inflight++;
  c->refs++;
  return r;
}

/* evaluate, check_orders or evaluate_fhir: to a worker, unless the log
** refuses records */
static void line_evaluation(conn *c, const char *p, size_t n, const line_head *h) {
  srv *s = c->s;
  s->by_method[h->m]++;
  if (s->log && pw_declog_error(s->log)) {
    char msg[512], e[300];
    pw_gate_info gi;
    s->responses++;
    /* the id is echoed only once the whole line passed the gate */
    if (pw_gate_check(p, n, &s->gate, &gi, e, sizeof e) != 0) {
      parse_error(c, p, n, e);
      return;
    }
    snprintf(msg, sizeof msg, "%s; evaluations are refused until it is fixed (SIGUSR1 reopens)",
             pw_declog_error(s->log));
    if (gi.has_id) pw_conn_error(c, p + gi.id_off, gi.id_len, PW_RPC_LOG_FAILED, msg);
    else pw_stats_error(s, PW_RPC_LOG_FAILED);
    return;
  }
  req *r = req_new(c, p, n, h);
  if (r) {
    pw_pool_dispatch(s, r);
    return;
  }
  s->responses++;
  if (h->id) pw_conn_error(c, h->id, h->idlen, PW_RPC_INTERNAL,
                           "out of memory: the request was not evaluated; try again");
  else pw_stats_error(s, PW_RPC_INTERNAL);
}

/* everything else is answered here, after the full check */
static void line_local(conn *c, const char *p, size_t n, const line_head *h) {
  srv *s = c->s;
  char e[300];
  if (pw_gate_check(p, n, &s->gate, NULL, e, sizeof e) != 0) {
    s->responses++;
    parse_error(c, p, n, e);
    return;
  }
  if (h->bad) {
    s->responses++;
    /* an id that could be read is echoed, as in every error reply */
    pw_conn_error(c, h->id, h->id ? h->idlen : 0, PW_RPC_INVALID_REQUEST, h->bad);
    return;
  }
  if (h->m == PW_M_NONE) {
    char msg[200];
    s->responses++;
    s->unknown_method++;
    snprintf(msg, sizeof msg,
             "method '%.60s' not found; methods: evaluate, check_orders, protocols, rules, "
             "reload, health, stats",
             h->method);
    if (h->id) pw_conn_error(c, h->id, h->idlen, PW_RPC_METHOD_NOT_FOUND, msg);
    else pw_stats_error(s, PW_RPC_METHOD_NOT_FOUND);
    return;
  }
  s->by_method[h->m]++;
  pw_methods_call(c, h->m, h->id, h->id ? h->idlen : 0);
}

void pw_request_line(conn *c, const char *p, size_t n) {
  srv *s = c->s;
  static const char *const keys[] = {"jsonrpc", "method", "id"};
  pw_span sp[3];
  char e[300];   /* the gate's message when it refuses the line */
  while (n && (p[n - 1] == '\r' || p[n - 1] == ' ' || p[n - 1] == '\t')) n--;
  size_t i = 0;
  while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r')) i++;
  if (i == n) return;
  s->requests++;
  if (p[i] == '[') {
    s->responses++;
    pw_conn_error(c, NULL, 0, PW_RPC_INVALID_REQUEST,
                  "batch requests are not supported: send one request object per line");
    return;
  }
  if (pw_rpc_members(p, n, keys, 3, sp, PW_RPC_FIRST) != 0) {
    s->responses++;
    parse_error(c, p, n, pw_gate_check(p, n, &s->gate, NULL, e, sizeof e) ? e : NULL);
    return;
  }
  line_head h;
  line_head_read(p, sp, &h);
  if (h.m == PW_M_EVALUATE || h.m == PW_M_CHECK_ORDERS || h.m == PW_M_EVALUATE_FHIR ||
      h.m == PW_M_CDS)
    line_evaluation(c, p, n, &h);
  else line_local(c, p, n, &h);
}
