/*
** buf.c: a growable byte buffer and a JSON string writer.
** lua-cjson parses every byte of JSON pathwise reads; output is written
** here because cjson 2.1.0 writes empty lists as {} and integers as floats.
*/
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "engine.h"

static void buf_grow(pw_buf *b, size_t need) {
  if (b->len + need + 1 <= b->cap) return;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + need + 1) cap *= 2;
  char *p = realloc(b->data, cap);
  if (!p) abort();   /* out of host memory: nothing sane to do */
  b->data = p;
  b->cap = cap;
}

void pw_buf_add(pw_buf *b, const char *s, size_t n) {
  buf_grow(b, n);
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
}

void pw_buf_adds(pw_buf *b, const char *s) { pw_buf_add(b, s, strlen(s)); }

void pw_buf_addf(pw_buf *b, const char *fmt, ...) {
  va_list ap;
  buf_grow(b, 64);
  va_start(ap, fmt);
  int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
  va_end(ap);
  if (n < 0) { b->data[b->len] = '\0'; return; }
  if ((size_t)n >= b->cap - b->len) {   /* did not fit: grow, format again */
    buf_grow(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
  }
  b->len += (size_t)n;
}

void pw_buf_add_int(pw_buf *b, long long v) {
  char tmp[24], *p = tmp + sizeof tmp;
  unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
  do { *--p = (char)('0' + u % 10); u /= 10; } while (u);
  if (v < 0) *--p = '-';
  pw_buf_add(b, p, (size_t)(tmp + sizeof tmp - p));
}

void pw_buf_json_str(pw_buf *b, const char *s) {
  static const char hex[] = "0123456789abcdef";
  if (!s) { pw_buf_add(b, "null", 4); return; }
  size_t n = strlen(s);
  buf_grow(b, n * 6 + 2);
  char *o = b->data + b->len;
  *o++ = '"';
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    unsigned char c = *p;
    if (c == '"' || c == '\\') { *o++ = '\\'; *o++ = (char)c; }
    else if (c >= 0x20) *o++ = (char)c;
    else if (c == '\n') { *o++ = '\\'; *o++ = 'n'; }
    else if (c == '\t') { *o++ = '\\'; *o++ = 't'; }
    else if (c == '\r') { *o++ = '\\'; *o++ = 'r'; }
    else { memcpy(o, "\\u00", 4); o += 4; *o++ = hex[c >> 4]; *o++ = hex[c & 15]; }
  }
  *o++ = '"';
  b->len = (size_t)(o - b->data);
  b->data[b->len] = '\0';
}

void pw_buf_reset(pw_buf *b) {
  b->len = 0;
  if (b->data) b->data[0] = '\0';
}

void pw_buf_free(pw_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}
