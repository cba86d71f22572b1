/*
** jsonw.c: the JSON writer; see jsonw.h.
*/
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "jsonw.h"

void pw_jsonw_init(pw_jsonw *w, pw_buf *b) {
  memset(w, 0, sizeof *w);
  w->b = b;
}

void pw_jsonw_init_in(pw_jsonw *w, pw_buf *b) {
  pw_jsonw_init(w, b);
  w->depth = 1;
  w->nonempty = 1;
}

/* Before a value or a key: a comma unless it is the first in its container. */
static int sep_comma(pw_jsonw *w) {
  if (w->after_key) { w->after_key = 0; return 0; }
  if (w->depth <= 0) return 0;
  uint64_t bit = 1ull << ((w->depth - 1) & 63);
  if (w->nonempty & bit) return 1;
  w->nonempty |= bit;
  return 0;
}

static void sep(pw_jsonw *w) {
  if (sep_comma(w)) pw_buf_add(w->b, ",", 1);
}

static void open_(pw_jsonw *w, const char *c) {
  sep(w);
  pw_buf_add(w->b, c, 1);
  w->depth++;
  if (w->depth <= PW_JSONW_MAX_DEPTH) w->nonempty &= ~(1ull << ((w->depth - 1) & 63));
}

static void close_(pw_jsonw *w, const char *c) {
  pw_buf_add(w->b, c, 1);
  if (w->depth > 0) w->depth--;
}

void pw_jsonw_begin_object(pw_jsonw *w) { open_(w, "{"); }
void pw_jsonw_end_object(pw_jsonw *w) { close_(w, "}"); }
void pw_jsonw_begin_array(pw_jsonw *w) { open_(w, "["); }
void pw_jsonw_end_array(pw_jsonw *w) { close_(w, "]"); }

void pw_jsonw_key(pw_jsonw *w, const char *key) {
  pw_buf_json_key(w->b, key, sep_comma(w));
  w->after_key = 1;
}

void pw_jsonw_str(pw_jsonw *w, const char *s) { sep(w); pw_buf_json_str(w->b, s); }
void pw_jsonw_int(pw_jsonw *w, long long v) { sep(w); pw_buf_add_int(w->b, v); }
void pw_jsonw_null(pw_jsonw *w) { sep(w); pw_buf_add(w->b, "null", 4); }

void pw_jsonw_bool(pw_jsonw *w, int v) {
  sep(w);
  if (v) pw_buf_add(w->b, "true", 4);
  else pw_buf_add(w->b, "false", 5);
}

void pw_jsonw_raw(pw_jsonw *w, const char *json, size_t len) { sep(w); pw_buf_add(w->b, json, len); }

void pw_jsonw_rawf(pw_jsonw *w, const char *fmt, ...) {
  char tmp[128];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n >= sizeof tmp) n = (int)sizeof tmp - 1;   /* numbers never are this long */
  pw_jsonw_raw(w, tmp, (size_t)n);
}

pw_buf *pw_jsonw_value(pw_jsonw *w) { sep(w); return w->b; }

void pw_jsonw_field_str(pw_jsonw *w, const char *key, const char *s) { pw_jsonw_key(w, key); pw_jsonw_str(w, s); }
void pw_jsonw_field_int(pw_jsonw *w, const char *key, long long v) { pw_jsonw_key(w, key); pw_jsonw_int(w, v); }
void pw_jsonw_field_bool(pw_jsonw *w, const char *key, int v) { pw_jsonw_key(w, key); pw_jsonw_bool(w, v); }
