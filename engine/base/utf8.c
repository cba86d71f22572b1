/*
** utf8.c: UTF-8 well-formedness (RFC 3629: no overlongs, no surrogates,
** nothing above U+10FFFF). Used by validation, the builder API and the
** JSON writer, so every text pathwise emits is valid UTF-8.
*/
#include <stdint.h>
#include <string.h>
#include "buf.h"

size_t pw_utf8_seq(const unsigned char *p, size_t n) {
  unsigned c = p[0];
  size_t k;
  unsigned lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) k = 2;
  else if (c >= 0xE0 && c <= 0xEF) {
    k = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    k = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else return 0;
  if (n < k || p[1] < lo || p[1] > hi) return 0;
  for (size_t i = 2; i < k; i++)
    if ((p[i] & 0xC0) != 0x80) return 0;
  return k;
}

int pw_utf8_valid(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s, *e = p + n;
  while (p < e) {
    if (e - p >= 8) {   /* skip ASCII 8 bytes at a time */
      uint64_t w;
      memcpy(&w, p, 8);
      if (!(w & 0x8080808080808080ull)) { p += 8; continue; }
    }
    if (*p < 0x80) { p++; continue; }
    size_t k = pw_utf8_seq(p, (size_t)(e - p));
    if (!k) return 0;
    p += k;
  }
  return 1;
}
