/*
** buf.h: the base layer's text helpers: a growable byte buffer (pw_buf,
** declared in pathwise.h), a JSON string writer that never emits invalid
** UTF-8, and the UTF-8 checks behind it. No Lua, no libuv.
*/
#ifndef PW_BUF_H
#define PW_BUF_H

#include <stddef.h>
#include <string.h>
#include "pathwise.h"

void pw_buf_add(pw_buf *b, const char *s, size_t n);
void pw_buf_adds(pw_buf *b, const char *s);
void pw_buf_addf(pw_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pw_buf_json_str(pw_buf *b, const char *s);   /* a quoted JSON string */
void pw_buf_json_key(pw_buf *b, const char *s, int comma);   /* [,]"key": */
void pw_buf_add_int(pw_buf *b, long long v);
void pw_buf_reset(pw_buf *b);

/* Is s[0..n) valid UTF-8? */
int pw_utf8_valid(const char *s, size_t n);
/* The length of the valid UTF-8 sequence (RFC 3629: shortest form, no
** surrogates, at most U+10FFFF) at p[0..n), whose first byte is >= 0x80;
** 0 if it is not one. */
size_t pw_utf8_seq(const unsigned char *p, size_t n);

/* The next line of a NUL-terminated list of lines ("a\nb\n", the last
** newline optional): its start, its length in *len, *q moved past it;
** NULL at the end. */
static inline const char *pw_lines_next(const char **q, size_t *len) {
  const char *s = *q, *nl;
  if (!s || !*s) return NULL;
  nl = strchr(s, '\n');
  *len = nl ? (size_t)(nl - s) : strlen(s);
  *q = s + *len + (nl != NULL);
  return s;
}

#endif
