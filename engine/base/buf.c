/*
** buf.c: a growable byte buffer and a JSON string writer.
** lua-cjson parses every byte of JSON pathwise reads; output is written
** here because cjson 2.1.0 writes empty lists as {} and integers as floats.
*/
#include <stdarg.h>
#include <stdint.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "buf.h"

/* Room for need more bytes and a NUL. Returns 0, or -1 (and sets the
** sticky failed flag) when the memory cannot be had: a failed buffer
** takes no more bytes, so its owner sees the flag, never a half reply. */
static int __attribute__((noinline)) buf_grow_slow(pw_buf *b, size_t need) {
  if (b->failed) return -1;
  if (need < SIZE_MAX / 2 - b->len && b->len + need + 1 <= b->cap) return 0;
  if (need >= SIZE_MAX / 4 - b->len) { b->failed = 1; return -1; }
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + need + 1) cap *= 2;
  char *p = realloc(b->data, cap);
  if (!p) { b->failed = 1; return -1; }
  b->data = p;
  b->cap = cap;
  return 0;
}

/* The common case inline (some 900 calls per evaluation): a buffer that
** has not failed and already has the room (cap > len whenever cap > 0, so
** need < cap - len is len + need + 1 <= cap); anything else as above. */
static inline int buf_grow(pw_buf *b, size_t need) {
  if (!b->failed && need < b->cap - b->len) return 0;
  return buf_grow_slow(b, need);
}

void pw_buf_add(pw_buf *b, const char *s, size_t n) {
  if (buf_grow(b, n)) return;
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
}

void pw_buf_adds(pw_buf *b, const char *s) { pw_buf_add(b, s, strlen(s)); }

void pw_buf_addf(pw_buf *b, const char *fmt, ...) {
  va_list ap;
  if (buf_grow(b, 64)) return;
  va_start(ap, fmt);
  int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
  va_end(ap);
  if (n < 0) { b->data[b->len] = '\0'; return; }
  if ((size_t)n >= b->cap - b->len) {   /* did not fit: grow, format again */
    if (buf_grow(b, (size_t)n)) { b->data[b->len] = '\0'; return; }
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

/* A quoted JSON string; bytes that are not valid UTF-8 become U+FFFD, so
** the output is valid JSON whatever s holds. */
void pw_buf_json_str(pw_buf *b, const char *s) {
  static const char hex[] = "0123456789abcdef";
  if (!s) { pw_buf_add(b, "null", 4); return; }
  size_t n = strlen(s);
  if (n > SIZE_MAX / 8 || buf_grow(b, n * 6 + 2)) { b->failed = 1; return; }
  char *o = b->data + b->len;
  *o++ = '"';
  const unsigned char *p = (const unsigned char *)s, *end = p + n;
  for (; p < end; p++) {
    /* Runs of 16, then 8, ASCII bytes that need no escape (no control
    ** character, quote or backslash) are copied whole: most text is such
    ** runs. Other bytes go one at a time, UTF-8 checked. */
#ifdef __SSE2__
    while (end - p >= 16) {
      __m128i v = _mm_loadu_si128((const __m128i *)p);
      __m128i ok = _mm_cmpeq_epi8(_mm_max_epu8(v, _mm_set1_epi8(0x20)), v);   /* v >= 0x20 */
      __m128i esc = _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\')));
      if (_mm_movemask_epi8(_mm_andnot_si128(esc, ok)) != 0xFFFF || _mm_movemask_epi8(v)) break;
      _mm_storeu_si128((__m128i *)o, v);
      o += 16;
      p += 16;
    }
#endif
    while (end - p >= 8) {
      uint64_t w, q, bs;
      memcpy(&w, p, 8);
      q = w ^ 0x2222222222222222ull;
      bs = w ^ 0x5c5c5c5c5c5c5c5cull;
      if (((((w - 0x2020202020202020ull) | (q - 0x0101010101010101ull) | (bs - 0x0101010101010101ull)) &
            ~w) | w) & 0x8080808080808080ull)
        break;
      memcpy(o, p, 8);
      o += 8;
      p += 8;
    }
    if (p == end) break;
    unsigned char c = *p;
    if (c == '"' || c == '\\') { *o++ = '\\'; *o++ = (char)c; }
    else if (c >= 0x80) {
      size_t k = pw_utf8_seq(p, (size_t)(end - p));
      if (k) { memcpy(o, p, k); o += k; p += k - 1; }
      else { memcpy(o, "\\ufffd", 6); o += 6; }   /* never emit invalid UTF-8 */
    }
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

/* A comma when comma is set, then key quoted and a colon. Keys are short
** constant names: one room check and one copy when every byte is printable
** ASCII other than a quote or a backslash (what pw_buf_json_str copies
** unchanged); any other key is written by pw_buf_json_str, so the bytes
** are the same either way. */
void pw_buf_json_key(pw_buf *b, const char *s, int comma) {
  size_t n = 0;
  if (!s) goto slow;
  for (; s[n]; n++) {
    unsigned char c = (unsigned char)s[n];
    if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') goto slow;
  }
  if (buf_grow(b, n + 4)) return;
  char *o = b->data + b->len;
  if (comma) *o++ = ',';
  *o++ = '"';
  memcpy(o, s, n);
  o += n;
  *o++ = '"';
  *o++ = ':';
  b->len = (size_t)(o - b->data);
  b->data[b->len] = '\0';
  return;
slow:
  if (comma) pw_buf_add(b, ",", 1);
  pw_buf_json_str(b, s);
  pw_buf_add(b, ":", 1);
}

void pw_buf_reset(pw_buf *b) {
  b->len = 0;
  b->failed = 0;
  if (b->data) b->data[0] = '\0';
}

void pw_buf_free(pw_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
  b->failed = 0;
}
