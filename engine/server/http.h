/*
** http.h: HTTP/1.1 requests, parsed with llhttp, for `pathwise serve --http`.
**
** Transport-free: the connection code feeds the bytes it reads with
** pw_http_feed, which stops after each complete request (pipelined requests
** come out one at a time, in order) or at the first error. A request keeps
** its method, path (query removed), the headers the service reads
** (Authorization, Content-Type) and its body. Limits (URL, header bytes and
** count, body) are checked as bytes arrive; a broken limit or a malformed
** request is an error carrying the 4xx status to answer before closing.
** pw_http_response writes one response with Content-Length. Never prints.
*/
#ifndef PW_HTTP_H
#define PW_HTTP_H

#include <stddef.h>
#include "pathwise.h"

#define PW_HTTP_MAX_URL 2048
#define PW_HTTP_MAX_HEADER_BYTES 16384
#define PW_HTTP_MAX_HEADERS 64
#define PW_HTTP_MAX_BODY ((size_t)16 << 20)   /* the FHIR adapter's limit */

typedef struct pw_http_limits {
  size_t max_url, max_header_bytes, max_body;   /* 0 = the defaults above */
  int max_headers;
} pw_http_limits;

enum { PW_HTTP_OTHER = 0, PW_HTTP_GET, PW_HTTP_POST, PW_HTTP_HEAD };

typedef struct pw_http_request {
  int method;            /* PW_HTTP_GET, ... */
  const char *method_name;
  pw_buf path;           /* NUL-terminated, without "?query" */
  pw_buf authorization;  /* NUL-terminated; empty when absent */
  pw_buf content_type;   /* NUL-terminated; empty when absent */
  pw_buf body;
  int keep_alive;        /* the connection may carry another request */
} pw_http_request;

typedef struct pw_http_conn pw_http_conn;

enum { PW_HTTP_MORE = 0, PW_HTTP_READY = 1, PW_HTTP_ERROR = -1 };

pw_http_conn *pw_http_conn_new(const pw_http_limits *lim);
void pw_http_conn_free(pw_http_conn *c);

/* Parse data[0..len). Returns PW_HTTP_READY with *used = bytes consumed
** when a request is complete (read it with pw_http_request_get, then call
** pw_http_next and feed the rest), PW_HTTP_MORE when every byte was
** consumed and the request is not complete, PW_HTTP_ERROR when the input is
** refused (pw_http_error_status/-message say why; the connection is then
** answered and closed). */
int pw_http_feed(pw_http_conn *c, const char *data, size_t len, size_t *used);
const pw_http_request *pw_http_request_get(const pw_http_conn *c);
void pw_http_next(pw_http_conn *c);
int pw_http_error_status(const pw_http_conn *c);
const char *pw_http_error_message(const pw_http_conn *c);
/* Expect: 100-continue was asked: returns 1 once per request (write
** "HTTP/1.1 100 Continue\r\n\r\n" then). */
int pw_http_take_continue(pw_http_conn *c);
/* Is a request partly received (for the idle/request timeout)? */
int pw_http_in_request(const pw_http_conn *c);
/* Where the request being received is: no request begun (or one complete),
** its request line and headers, or its body (for the timeouts). */
enum { PW_HTTP_AT_IDLE = 0, PW_HTTP_AT_HEADERS, PW_HTTP_AT_BODY };
int pw_http_phase(const pw_http_conn *c);

/* One response: status line, Content-Type (if ctype), Content-Length,
** Connection: keep-alive|close, extra header lines (each ending CRLF, may be
** NULL), then the body. */
void pw_http_response(pw_buf *out, int status, const char *ctype, const char *extra,
                      const char *body, size_t len, int keep_alive);
const char *pw_http_reason(int status);

#endif
