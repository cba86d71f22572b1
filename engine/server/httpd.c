/*
** httpd.c: CDS Hooks 2.0 over HTTP/1.1 (issue 14), on the supervisor's loop.
**
** An HTTP connection is a conn (conn.c) with c->http set: bytes go through
** llhttp (http.h) instead of line framing. Each request becomes one
** JSON-RPC request line of method "cds" (params {op, service, request}),
** handed to pw_request_line like any line from the JSON-RPC socket, so it
** takes the same path: the envelope, a worker process (handler.c answers
** with cds.c), the decision log, the answer. One request per connection is
** with the workers at a time (HTTP answers in order); reading pauses until
** it is answered, then the next pipelined request is parsed. pw_conn_send
** and pw_conn_error hand an HTTP connection's answers here: the result
** {"status","body"} becomes the HTTP response, a JSON-RPC error a 4xx/5xx
** with a FHIR OperationOutcome. The request body is never logged.
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include "cds.h"
#include "supervisor.h"

#define JSON_TYPE "application/json"
#define FHIR_ERR_TYPE "application/fhir+json"

/* --http PATH: the Unix socket, born with --socket-mode. */
static int listen_unix(srv *s, const char *path) {
  struct stat st;
  if (lstat(path, &st) == 0) {   /* a stale socket of ours: replace it; anything else: refuse */
    if (!S_ISSOCK(st.st_mode) || st.st_uid != geteuid()) {
      pw_serve_say("--http %s exists and is not our socket; refusing to replace it", path);
      return -1;
    }
    unlink(path);
  }
  uv_pipe_init(s->loop, &s->http_listener, 0);
  s->http_listener.data = s;
  s->http_init = 1;
  mode_t old = umask((mode_t)(~s->o.socket_mode & 0777));
  int rc = uv_pipe_bind(&s->http_listener, path);
  umask(old);
  if (rc == 0 && lstat(path, &st) == 0) {
    s->http_dev = st.st_dev;
    s->http_ino = st.st_ino;
    s->http_bound = 1;
  }
  if (rc == 0) rc = uv_listen((uv_stream_t *)&s->http_listener, 256, pw_conn_accept);
  if (rc != 0) {
    pw_serve_say("--http %s: %s", path, uv_strerror(rc));
    return -1;
  }
  pw_serve_say("CDS Hooks on %s", path);
  return 0;
}

/* --http-port N: 127.0.0.1 only (loopback, for local testing); 0 takes a
** free port, which the start message names. */
static int listen_tcp(srv *s, int port) {
  struct sockaddr_in sa;
  int rc = uv_ip4_addr("127.0.0.1", port, &sa);
  uv_tcp_init(s->loop, &s->http_tcp);
  s->http_tcp.data = s;
  s->http_tcp_init = 1;
  if (rc == 0) rc = uv_tcp_bind(&s->http_tcp, (const struct sockaddr *)&sa, 0);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&s->http_tcp, 256, pw_conn_accept);
  if (rc != 0) {
    pw_serve_say("--http-port %d: 127.0.0.1: %s", port, uv_strerror(rc));
    return -1;
  }
  struct sockaddr_storage got;
  int len = (int)sizeof got;
  if (uv_tcp_getsockname(&s->http_tcp, (struct sockaddr *)&got, &len) == 0 && got.ss_family == AF_INET)
    port = ntohs(((struct sockaddr_in *)&got)->sin_port);
  pw_serve_say("CDS Hooks on http://127.0.0.1:%d/cds-services (loopback only)", port);
  return 0;
}

int pw_httpd_listen(srv *s) {
  const char *path = s->o.http_path;
  if (!path && s->o.http_port < 0) return 0;
  if (!s->o.http_no_auth) {
    char err[300];
    if (!(s->jwt = pw_jwt_new(&s->o.jwt, err, sizeof err))) {
      pw_serve_say("--http-jwks: %s", err);
      return -1;
    }
  }
  if (path && listen_unix(s, path) != 0) return -1;
  if (s->o.http_port >= 0 && listen_tcp(s, s->o.http_port) != 0) return -1;
  if (s->o.http_no_auth)
    pw_serve_say("WARNING: CDS Hooks WITHOUT AUTHENTICATION (--http-no-auth): any local process "
                 "that can connect is trusted. For testing only.");
  return 0;
}

void pw_httpd_unlink(srv *s) {
  struct stat st;
  if (!s->http_bound) return;
  s->http_bound = 0;
  if (lstat(s->o.http_path, &st) == 0 && st.st_dev == s->http_dev && st.st_ino == s->http_ino)
    unlink(s->o.http_path);
}

/* One whole response; then either the next request or the close. */
static void respond(conn *c, int status, const char *ctype, const char *body, size_t len) {
  int keep = c->http_keep && !c->s->stopping && status < 500 && status != 400 && status != 413 &&
             status != 431 && status != 414 && status != 408;
  const char *extra = status == 405 ? "Allow: GET, POST\r\n"
                    : status == 401 ? "WWW-Authenticate: Bearer error=\"invalid_token\"\r\n" : NULL;
  pw_http_response(&c->out.buf, status, ctype, extra, body, len, keep);
  c->http_busy = 0;
  c->http_phase_ms = uv_now(c->s->loop);   /* keep-alive idle time counts from the answer */
  if (!keep) {
    c->close_after_flush = 1;
    pw_conn_pause(c);
  }
  pw_conn_dirty(c);
}

static void respond_outcome(conn *c, int status, const char *code, const char *msg) {
  pw_buf b = {0};
  pw_cds_outcome(&b, code, msg);
  respond(c, status, FHIR_ERR_TYPE, b.data, b.len);
  pw_buf_free(&b);
}

/* The HTTP status that answers a JSON-RPC error code. */
int pw_httpd_status(int code) {
  int st = 500;
  switch (code) {
    case PW_RPC_PARSE_ERROR: case PW_RPC_INVALID_REQUEST: case PW_RPC_INVALID_PARAMS:
    case PW_RPC_VALIDATION: st = 400; break;
    case PW_RPC_TOO_LARGE: st = 413; break;
    case PW_RPC_FORBIDDEN: st = 403; break;
    case PW_RPC_UNKNOWN_PROTOCOL: st = 404; break;
    case PW_RPC_BUSY: case PW_RPC_LOG_FAILED: case PW_RPC_WORKER_CRASH: st = 503; break;
    case PW_RPC_DEADLINE: st = 504; break;
    default: break;
  }
  return st;
}

/* The cds member of the supervisor's record of a lost request (answer.c):
** op and service from the request line route() built, the status sent. */
void pw_httpd_log_lost(pw_buf *f, const char *line, size_t len, int code) {
  static const char *const top[] = {"params"};
  static const char *const par[] = {"op", "service"};
  pw_span sp[1], pp[2];
  char op[16] = "", svc[160] = "";
  if (pw_rpc_members(line, len, top, 1, sp, 0) == 0 && sp[0].len &&
      pw_rpc_members(line + sp[0].off, sp[0].len, par, 2, pp, 0) == 0) {
    const char *p = line + sp[0].off;
    if (pp[0].len) pw_rpc_string(p + pp[0].off, pp[0].len, op, sizeof op);
    if (pp[1].len) pw_rpc_string(p + pp[1].off, pp[1].len, svc, sizeof svc);
  }
  pw_buf_adds(f, ",\"cds\":{\"op\":");
  pw_buf_json_str(f, *op ? op : "call");
  pw_buf_adds(f, ",\"service\":");
  pw_buf_json_str(f, svc);
  pw_buf_addf(f, ",\"status\":%d}", pw_httpd_status(code));
}

/* A JSON-RPC error for this connection's request, as HTTP. */
void pw_httpd_error(conn *c, int code, const char *msg) {
  int st = pw_httpd_status(code);
  if (!c->http_busy && !c->close_after_flush && code == PW_RPC_BUSY && pw_http_in_request(c->http))
    st = 408;   /* the idle sweep (conn.c) caught a request half received */
  respond_outcome(c, st, st >= 500 ? "transient" : "invalid", msg);
}

/* The worker's response line {"jsonrpc","id","result":{"status","body"}}. */
void pw_httpd_answer(conn *c, const char *line, size_t n) {
  static const char *const top[] = {"result", "error"};
  static const char *const res[] = {"status", "body"};
  pw_span sp[2], rp[2];
  if (pw_rpc_members(line, n, top, 2, sp, 0) != 0 || !sp[0].len ||
      pw_rpc_members(line + sp[0].off, sp[0].len, res, 2, rp, 0) != 0 || !rp[0].len || !rp[1].len) {
    respond_outcome(c, 500, "exception", "the worker's answer could not be read");
    return;
  }
  const char *r = line + sp[0].off;
  int status = atoi(r + rp[0].off);
  if (status < 200 || status > 599) status = 500;
  respond(c, status, status == 200 ? JSON_TYPE : FHIR_ERR_TYPE, r + rp[1].off, rp[1].len);
}

/* A service id: letters, digits, '-', '_', '.' only (it is put in JSON as is). */
static int id_ok(const char *s, size_t n) {
  if (!n || n > 150) return 0;
  for (size_t i = 0; i < n; i++)
    if (!(s[i] == '-' || s[i] == '_' || s[i] == '.' || (s[i] >= '0' && s[i] <= '9') ||
          (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
      return 0;
  return 1;
}

static int json_type(const char *ct) {
  size_t n = strlen("application/json");
  return !*ct || (!strncasecmp(ct, "application/json", n) && (ct[n] == 0 || ct[n] == ';'));
}

/* The bearer token; 0 when it passes (or with --http-no-auth). Refusals
** are logged with the reason and the peer, never the token. */
static int authorized(conn *c, const pw_http_request *q) {
  srv *s = c->s;
  if (!s->jwt) return 1;
  char why[160] = "no bearer token";
  const char *a = q->authorization.data;
  size_t n = q->authorization.len;
  int ok = a && n > 7 && !strncasecmp(a, "Bearer ", 7) &&
           pw_jwt_verify(s->jwt, a + 7, n - 7, (long long)time(NULL), why, sizeof why) == 0;
  if (!ok) {
    s->http_refused++;
    pw_serve_say("CDS Hooks: refused %s %s from uid %ld pid %ld: %s", q->method_name, q->path.data,
                 c->uid, c->pid, why);
    respond_outcome(c, 401, "login", why);
  }
  return ok;
}

/* Route one request: a "cds" line to the workers, or an answer here. */
static void route(conn *c, const pw_http_request *q) {
  static const char pre[] = "/cds-services";
  const char *path = q->path.data;
  size_t plen = q->path.len, np = sizeof pre - 1;
  const char *op = NULL, *svc = "";
  size_t slen = 0;
  if (plen == np && !memcmp(path, pre, np)) op = "discovery";
  else if (plen > np + 1 && !memcmp(path, pre, np) && path[np] == '/') {
    svc = path + np + 1;
    slen = plen - np - 1;
    op = "call";
    const char *fb = "/feedback";
    if (slen > 9 && !memcmp(svc + slen - 9, fb, 9)) { op = "feedback"; slen -= 9; }
  }
  if (!op || (*svc && !id_ok(svc, slen))) { respond_outcome(c, 404, "not-found", "no such resource; GET /cds-services lists the services"); return; }
  int want = *svc ? PW_HTTP_POST : PW_HTTP_GET;
  if (q->method != want) { respond_outcome(c, 405, "not-supported", "method not allowed here"); return; }
  if (!authorized(c, q)) return;
  if (want == PW_HTTP_POST) {
    char e[300];
    if (!json_type(q->content_type.data ? q->content_type.data : "")) {
      respond_outcome(c, 415, "not-supported", "expected Content-Type: application/json");
      return;
    }
    if (!q->body.len || pw_gate_check(q->body.data, q->body.len, &c->s->gate, NULL, e, sizeof e) != 0) {
      respond_outcome(c, 400, "invalid", q->body.len ? e : "a JSON body is required");
      return;
    }
  }
  pw_buf line = {0};
  pw_buf_addf(&line, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"cds\",\"params\":{\"op\":\"%s\"", op);
  if (slen) pw_buf_addf(&line, ",\"service\":\"%.*s\"", (int)slen, svc);
  if (want == PW_HTTP_POST) {
    pw_buf_adds(&line, ",\"request\":");
    pw_buf_add(&line, q->body.data, q->body.len);
  }
  pw_buf_adds(&line, "}}");
  if (line.failed) { pw_buf_free(&line); respond_outcome(c, 503, "transient", "out of memory"); return; }
  c->http_busy = 1;
  pw_request_line(c, line.data, line.len);
  pw_buf_free(&line);
}

/* A request's phase began now (the time of the read that moved it). */
static void phase_note(conn *c) {
  int ph = pw_http_phase(c->http);
  if (ph != c->http_phase) {
    c->http_phase = ph;
    c->http_phase_ms = uv_now(c->s->loop);
  }
}

/* Every tick, for each HTTP connection c (conn.c's sweep): idle between
** requests past --idle-timeout, it is closed without an answer (a client
** reusing it retries on a new one); a request whose headers, or body, are
** slower than --http-header-timeout or --http-body-timeout (slowloris, a
** stalled upload) gets 408 and is closed. conn.c's idle timeout, checked
** after this once a second, finds nothing left to do here. */
void pw_httpd_sweep(conn *c, uint64_t now) {
  srv *s = c->s;
  if (c->closing || c->inflight || c->http_busy || c->out.queued || c->close_after_flush) return;
  if (c->http_phase == PW_HTTP_AT_IDLE) {   /* bytes that begin no request do not count */
    if (s->o.idle_s && now - c->http_phase_ms > (uint64_t)s->o.idle_s * 1000u) pw_conn_close(c);
    return;
  }
  int head = c->http_phase == PW_HTTP_AT_HEADERS;
  unsigned lim = head ? s->o.http_header_ms : s->o.http_body_ms;
  if (!lim || now - c->http_phase_ms <= lim) return;
  char msg[160];
  snprintf(msg, sizeof msg, "the request's %s did not arrive within %u ms (--http-%s-timeout); closing",
           head ? "headers" : "body", lim, head ? "header" : "body");
  c->http_keep = 0;
  s->conns_stalled++;   /* a slow client, counted with the JSON-RPC socket's */
  respond_outcome(c, 408, "timeout", msg);
}

void pw_httpd_process(conn *c) {
  while (!c->closing && !c->paused && !c->close_after_flush && !c->http_busy && c->rpos < c->rlen) {
    size_t used = 0;
    int st = pw_http_feed(c->http, c->rb + c->rpos, c->rlen - c->rpos, &used);
    phase_note(c);
    c->rpos += used;
    c->scan = c->rpos;
    if (pw_http_take_continue(c->http)) pw_buf_adds(&c->out.buf, "HTTP/1.1 100 Continue\r\n\r\n"), pw_conn_dirty(c);
    if (st == PW_HTTP_MORE) break;
    if (st == PW_HTTP_ERROR) {
      c->http_keep = 0;
      respond_outcome(c, pw_http_error_status(c->http), "invalid", pw_http_error_message(c->http));
      break;
    }
    const pw_http_request *q = pw_http_request_get(c->http);
    c->http_keep = q->keep_alive;
    route(c, q);
    pw_http_next(c->http);
    phase_note(c);
  }
  if (c->http_busy && !c->paused) pw_conn_pause(c);
}
