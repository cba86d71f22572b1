/*
** http.c: HTTP/1.1 request parsing with llhttp (see http.h).
*/
#include "http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <llhttp.h>
#include "buf.h"

enum { H_NONE, H_AUTH, H_CTYPE, H_EXPECT, H_OTHER };

struct pw_http_conn {
  llhttp_t parser;
  llhttp_settings_t settings;
  pw_http_limits lim;
  pw_http_request req;
  pw_buf field;          /* the header name being received */
  pw_buf expect;         /* the Expect header */
  int target;            /* H_*: where the header value goes */
  int nheaders;
  size_t header_bytes;
  int started, headers_done, ready, status, cont;
  char msg[160];
};

static pw_http_conn *conn_of(llhttp_t *p) { return (pw_http_conn *)p->data; }

static int refuse(pw_http_conn *c, int status, const char *msg) {
  c->status = status;
  snprintf(c->msg, sizeof c->msg, "%s", msg);
  return -1;
}

static int count_header_bytes(pw_http_conn *c, size_t n) {
  c->header_bytes += n;
  if (c->header_bytes > c->lim.max_header_bytes) return refuse(c, 431, "request header fields too large");
  return 0;
}

static int on_message_begin(llhttp_t *p) {
  conn_of(p)->started = 1;
  return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t n) {
  pw_http_conn *c = conn_of(p);
  if (c->req.path.len + n > c->lim.max_url) return refuse(c, 414, "request target too long");
  pw_buf_add(&c->req.path, at, n);
  return count_header_bytes(c, n);
}

static int on_header_field(llhttp_t *p, const char *at, size_t n) {
  pw_http_conn *c = conn_of(p);
  pw_buf_add(&c->field, at, n);
  return count_header_bytes(c, n);
}

static int on_header_field_complete(llhttp_t *p) {
  pw_http_conn *c = conn_of(p);
  if (++c->nheaders > c->lim.max_headers) return refuse(c, 431, "too many request header fields");
  pw_buf_add(&c->field, "", 1);
  const char *f = c->field.data;
  pw_buf *dst = NULL;
  c->target = H_OTHER;
  if (!strcasecmp(f, "authorization")) { c->target = H_AUTH; dst = &c->req.authorization; }
  else if (!strcasecmp(f, "content-type")) { c->target = H_CTYPE; dst = &c->req.content_type; }
  else if (!strcasecmp(f, "expect")) { c->target = H_EXPECT; dst = &c->expect; }
  if (dst && dst->len) return refuse(c, 400, "a header field that may appear once appears twice");
  pw_buf_reset(&c->field);
  return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n) {
  pw_http_conn *c = conn_of(p);
  if (c->target == H_AUTH) pw_buf_add(&c->req.authorization, at, n);
  else if (c->target == H_CTYPE) pw_buf_add(&c->req.content_type, at, n);
  else if (c->target == H_EXPECT) pw_buf_add(&c->expect, at, n);
  return count_header_bytes(c, n);
}

static int on_headers_complete(llhttp_t *p) {
  pw_http_conn *c = conn_of(p);
  c->headers_done = 1;
  if ((p->flags & F_CONTENT_LENGTH) && p->content_length > c->lim.max_body)
    return refuse(c, 413, "request body too large");
  if (c->expect.len) {
    pw_buf_add(&c->expect, "", 1);
    if (strcasecmp(c->expect.data, "100-continue")) return refuse(c, 417, "unsupported Expect");
    c->cont = 1;
  }
  return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n) {
  pw_http_conn *c = conn_of(p);
  if (c->req.body.len + n > c->lim.max_body) return refuse(c, 413, "request body too large");
  pw_buf_add(&c->req.body, at, n);
  return 0;
}

/* Cut the query, NUL-terminate the path and the two headers. */
static void finish(pw_http_conn *c) {
  pw_http_request *r = &c->req;
  char *q = r->path.data ? memchr(r->path.data, '?', r->path.len) : NULL;
  if (q) r->path.len = (size_t)(q - r->path.data);
  pw_buf_add(&r->path, "", 1);
  r->path.len--;
  pw_buf_add(&r->authorization, "", 1);
  r->authorization.len--;
  pw_buf_add(&r->content_type, "", 1);
  r->content_type.len--;
  switch (c->parser.method) {
  case HTTP_GET: r->method = PW_HTTP_GET; break;
  case HTTP_POST: r->method = PW_HTTP_POST; break;
  case HTTP_HEAD: r->method = PW_HTTP_HEAD; break;
  default: r->method = PW_HTTP_OTHER;
  }
  r->method_name = llhttp_method_name((llhttp_method_t)c->parser.method);
  r->keep_alive = llhttp_should_keep_alive(&c->parser);
}

static int on_message_complete(llhttp_t *p) {
  pw_http_conn *c = conn_of(p);
  finish(c);
  c->ready = 1;
  return HPE_PAUSED;
}

pw_http_conn *pw_http_conn_new(const pw_http_limits *lim) {
  pw_http_conn *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  if (lim) c->lim = *lim;
  if (!c->lim.max_url) c->lim.max_url = PW_HTTP_MAX_URL;
  if (!c->lim.max_header_bytes) c->lim.max_header_bytes = PW_HTTP_MAX_HEADER_BYTES;
  if (!c->lim.max_body) c->lim.max_body = PW_HTTP_MAX_BODY;
  if (c->lim.max_headers <= 0) c->lim.max_headers = PW_HTTP_MAX_HEADERS;
  llhttp_settings_init(&c->settings);
  c->settings.on_message_begin = on_message_begin;
  c->settings.on_url = on_url;
  c->settings.on_header_field = on_header_field;
  c->settings.on_header_field_complete = on_header_field_complete;
  c->settings.on_header_value = on_header_value;
  c->settings.on_headers_complete = on_headers_complete;
  c->settings.on_body = on_body;
  c->settings.on_message_complete = on_message_complete;
  llhttp_init(&c->parser, HTTP_REQUEST, &c->settings);
  c->parser.data = c;
  return c;
}

static void req_clear(pw_http_conn *c) {
  pw_buf_free(&c->req.path);
  pw_buf_free(&c->req.authorization);
  pw_buf_free(&c->req.content_type);
  pw_buf_free(&c->req.body);
  pw_buf_free(&c->field);
  pw_buf_free(&c->expect);
  memset(&c->req, 0, sizeof c->req);
  c->nheaders = 0;
  c->header_bytes = 0;
  c->started = c->headers_done = c->ready = c->cont = 0;
  c->target = H_NONE;
}

void pw_http_conn_free(pw_http_conn *c) {
  if (!c) return;
  req_clear(c);
  free(c);
}

int pw_http_feed(pw_http_conn *c, const char *data, size_t len, size_t *used) {
  *used = 0;
  if (c->status) return PW_HTTP_ERROR;
  if (c->ready) return PW_HTTP_READY;
  llhttp_errno_t e = llhttp_execute(&c->parser, data, len);
  if (e == HPE_OK) { *used = len; return PW_HTTP_MORE; }
  if (e == HPE_PAUSED && c->ready) {
    const char *pos = llhttp_get_error_pos(&c->parser);
    *used = pos ? (size_t)(pos - data) : len;
    return PW_HTTP_READY;
  }
  if (!c->status) {
    c->status = 400;
    snprintf(c->msg, sizeof c->msg, "malformed request: %s", llhttp_get_error_reason(&c->parser));
  }
  if (c->req.path.failed || c->req.body.failed) { c->status = 503; snprintf(c->msg, sizeof c->msg, "out of memory"); }
  return PW_HTTP_ERROR;
}

const pw_http_request *pw_http_request_get(const pw_http_conn *c) { return c->ready ? &c->req : NULL; }

void pw_http_next(pw_http_conn *c) {
  req_clear(c);
  llhttp_resume(&c->parser);
}

int pw_http_error_status(const pw_http_conn *c) { return c->status; }
const char *pw_http_error_message(const pw_http_conn *c) { return c->msg; }
int pw_http_in_request(const pw_http_conn *c) { return c->started && !c->ready; }

int pw_http_phase(const pw_http_conn *c) {
  if (!c->started || c->ready) return PW_HTTP_AT_IDLE;
  return c->headers_done ? PW_HTTP_AT_BODY : PW_HTTP_AT_HEADERS;
}

/* Expect: 100-continue was asked for this request: 1 once. */
int pw_http_take_continue(pw_http_conn *c) {
  int r = c->cont == 1;
  if (r) c->cont = 2;
  return r;
}

const char *pw_http_reason(int status) {
  switch (status) {
  case 100: return "Continue";
  case 200: return "OK";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 408: return "Request Timeout";
  case 412: return "Precondition Failed";
  case 413: return "Content Too Large";
  case 414: return "URI Too Long";
  case 415: return "Unsupported Media Type";
  case 417: return "Expectation Failed";
  case 422: return "Unprocessable Content";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 503: return "Service Unavailable";
  case 505: return "HTTP Version Not Supported";
  default: return "Unknown";
  }
}

void pw_http_response(pw_buf *out, int status, const char *ctype, const char *extra,
                      const char *body, size_t len, int keep_alive) {
  pw_buf_addf(out, "HTTP/1.1 %d %s\r\n", status, pw_http_reason(status));
  if (ctype) pw_buf_addf(out, "Content-Type: %s\r\n", ctype);
  pw_buf_addf(out, "Content-Length: %zu\r\nConnection: %s\r\n", len, keep_alive ? "keep-alive" : "close");
  if (extra) pw_buf_adds(out, extra);
  pw_buf_add(out, "\r\n", 2);
  if (len) pw_buf_add(out, body, len);
}
