/*
** jsonw.h: the one JSON writer. It owns the commas between members and
** elements and the escaping of every string (through pw_buf_json_str, so
** the output is valid UTF-8 whatever the input holds); callers say only
** what to write: begin/end an object or array, a key, a value.
**
**   pw_jsonw w; pw_jsonw_init(&w, &buf);
**   pw_jsonw_begin_object(&w);
**   pw_jsonw_field_str(&w, "id", id);     // "id":"..."
**   pw_jsonw_key(&w, "n"); pw_jsonw_int(&w, 3);
**   pw_jsonw_end_object(&w);              // {"id":"...","n":3}
**
** Output is compact (no spaces), appended to the buffer as it goes, so a
** writer may start inside a document another writer or code produced
** (pw_jsonw_init_in: the first value gets a comma). Nesting is at most
** PW_JSONW_MAX_DEPTH deep. The writer does not check the grammar (a key
** inside an array is the caller's bug).
*/
#ifndef PW_JSONW_H
#define PW_JSONW_H

#include <stdint.h>
#include "buf.h"

#define PW_JSONW_MAX_DEPTH 64

typedef struct pw_jsonw {
  pw_buf *b;
  int depth;          /* open containers */
  uint64_t nonempty;  /* bit d-1: the container at depth d has a value */
  int after_key;      /* the next value follows a key: no comma */
} pw_jsonw;

void pw_jsonw_init(pw_jsonw *w, pw_buf *b);
/* Continue inside a container some other code opened and already wrote
** at least one value into (the next value gets a comma). */
void pw_jsonw_init_in(pw_jsonw *w, pw_buf *b);

void pw_jsonw_begin_object(pw_jsonw *w);
void pw_jsonw_end_object(pw_jsonw *w);
void pw_jsonw_begin_array(pw_jsonw *w);
void pw_jsonw_end_array(pw_jsonw *w);

void pw_jsonw_key(pw_jsonw *w, const char *key);
void pw_jsonw_str(pw_jsonw *w, const char *s);   /* NULL writes null */
void pw_jsonw_int(pw_jsonw *w, long long v);
void pw_jsonw_bool(pw_jsonw *w, int v);
void pw_jsonw_null(pw_jsonw *w);
/* A value that is JSON already (a number formatted by the caller, a
** document another function wrote); the writer adds only the comma. */
void pw_jsonw_raw(pw_jsonw *w, const char *json, size_t len);
void pw_jsonw_rawf(pw_jsonw *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The buffer to write one value into with other code, after the comma
** (e.g. pw_protocol_info_json(p, pw_jsonw_value(w))). */
pw_buf *pw_jsonw_value(pw_jsonw *w);

/* key then value, the usual member */
void pw_jsonw_field_str(pw_jsonw *w, const char *key, const char *s);
void pw_jsonw_field_int(pw_jsonw *w, const char *key, long long v);
void pw_jsonw_field_bool(pw_jsonw *w, const char *key, int v);

#endif
