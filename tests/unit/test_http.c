/* test_http.c: the HTTP/1.1 request parser of `serve --http` (http.h). */
#include <stdlib.h>
#include <string.h>
#include "pwtest.h"
#include "http.h"
#include "buf.h"

/* Feed all of s (in pieces of step bytes); collect "METHOD path body|" per request. */
static int run(pw_http_conn *c, const char *s, size_t step, char *got, size_t cap) {
  size_t n = strlen(s), off = 0, fed = 0;
  got[0] = 0;
  while (off < n) {
    size_t end = fed > off ? fed : off + step;
    if (end > n) end = n;
    size_t used;
    int r = pw_http_feed(c, s + off, end - off, &used);
    if (r == PW_HTTP_ERROR) return pw_http_error_status(c);
    off += used;
    if (r == PW_HTTP_READY) {
      const pw_http_request *q = pw_http_request_get(c);
      size_t k = strlen(got);
      snprintf(got + k, cap - k, "%s %s %.*s%s%s|", q->method_name, q->path.data, (int)q->body.len,
               q->body.data ? q->body.data : "", q->keep_alive ? "" : " close", q->authorization.len ? " auth" : "");
      pw_http_next(c);
      fed = end;
    } else fed = 0;
  }
  return 0;
}

static void pipelined(size_t step) {
  pw_http_conn *c = pw_http_conn_new(NULL);
  char got[512];
  const char *in =
      "GET /cds-services?x=1 HTTP/1.1\r\nHost: a\r\n\r\n"
      "POST /cds-services/p HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer t\r\nContent-Length: 4\r\n\r\n{\"a\"junk"
      "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
  CHECK(run(c, in, step, got, sizeof got) == 400);   /* "junkPOST" is no method */
  pw_http_conn_free(c);
  c = pw_http_conn_new(NULL);
  in = "GET /cds-services?x=1 HTTP/1.1\r\nHost: a\r\n\r\n"
       "POST /cds-services/p HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer t\r\nContent-Length: 4\r\n\r\n{\"a\""
       "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
  CHECK(run(c, in, step, got, sizeof got) == 0);
  CHECK_STR(got, "GET /cds-services |POST /cds-services/p {\"a\" auth|POST /x {} close|");
  pw_http_conn_free(c);
}

static int status_of(const char *in, const pw_http_limits *lim) {
  pw_http_conn *c = pw_http_conn_new(lim);
  char got[256];
  int st = run(c, in, 1 << 20, got, sizeof got);
  pw_http_conn_free(c);
  return st;
}

static void limits(void) {
  pw_http_limits lim = {.max_url = 16, .max_header_bytes = 64, .max_body = 8, .max_headers = 3};
  CHECK(status_of("GET /aaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\n\r\n", &lim) == 414);
  CHECK(status_of("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", &lim) == 431);
  CHECK(status_of("GET / HTTP/1.1\r\nA: 0123456789012345678901234567890123456789012345678901234567890123\r\n\r\n", &lim) == 431);
  CHECK(status_of("POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\n", &lim) == 413);
  CHECK(status_of("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n9\r\n123456789\r\n0\r\n\r\n", &lim) == 413);
  CHECK(status_of("POST / HTTP/1.1\r\nContent-Length: 8\r\n\r\n12345678", &lim) == 0);
  CHECK(status_of("GARBAGE\r\n\r\n", NULL) == 400);
  CHECK(status_of("GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", NULL) == 400);
  CHECK(status_of("GET / HTTP/1.1\r\nAuthorization: a\r\nAuthorization: b\r\n\r\n", NULL) == 400);
  CHECK(status_of("POST / HTTP/1.1\r\nExpect: something\r\nContent-Length: 1\r\n\r\nx", NULL) == 417);
}

static void keep_alive_and_continue(void) {
  pw_http_conn *c = pw_http_conn_new(NULL);
  char got[256];
  CHECK(run(c, "GET / HTTP/1.0\r\n\r\n", 3, got, sizeof got) == 0);
  CHECK_STR(got, "GET /  close|");
  pw_http_conn_free(c);
  c = pw_http_conn_new(NULL);
  size_t used;
  const char *h = "POST /a HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
  CHECK(pw_http_feed(c, h, strlen(h), &used) == PW_HTTP_MORE);
  CHECK(pw_http_in_request(c));
  CHECK(pw_http_take_continue(c) == 1);
  CHECK(pw_http_take_continue(c) == 0);
  CHECK(pw_http_feed(c, "{}", 2, &used) == PW_HTTP_READY && used == 2);
  CHECK(!pw_http_in_request(c));
  CHECK_STR(pw_http_request_get(c)->path.data, "/a");
  pw_http_next(c);
  pw_http_conn_free(c);
}

static void response(void) {
  pw_buf b = {0};
  pw_http_response(&b, 412, "application/json", NULL, "{}", 2, 0);
  pw_buf_add(&b, "", 1);
  CHECK_STR(b.data, "HTTP/1.1 412 Precondition Failed\r\nContent-Type: application/json\r\n"
                    "Content-Length: 2\r\nConnection: close\r\n\r\n{}");
  pw_buf_free(&b);
}

PW_TEST_MAIN({
  pipelined(1 << 20);
  pipelined(1);
  pipelined(7);
  limits();
  keep_alive_and_continue();
  response();
})
