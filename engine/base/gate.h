/*
** gate.h: a strict lexical check of JSON text before lua-cjson decodes it.
**
** lua-cjson 2.1.0 accepts NaN, Infinity and hex numbers, lets the last of two
** duplicate keys win, stops at a NUL byte and accepts invalid UTF-8. The gate
** refuses all of that, so cjson only ever sees text that means one thing.
** It builds no values. It also reports where the top-level "id" member's raw
** text is, so a JSON-RPC reply can echo an id exactly.
*/
#ifndef PW_GATE_H
#define PW_GATE_H

#include <stddef.h>

typedef struct pw_gate_limits {
  size_t max_bytes;    /* 0 = 1 MiB */
  int max_depth;       /* 0 = 32; nesting of objects and arrays */
  int max_members;     /* 0 = 1024; members in one object, items in one array */
} pw_gate_limits;

typedef struct pw_gate_info {
  int has_id;          /* top-level object had an "id" member */
  size_t id_off, id_len;   /* raw text of its value */
} pw_gate_info;

/* Returns 0 when s[0..n) is one JSON object (surrounding white space
** allowed) that passes every check; otherwise -1 and a message such as
** "molecular: duplicate key 'kras' (byte 57)" in err. info may be NULL. */
int pw_gate_check(const char *s, size_t n, const pw_gate_limits *lim,
                  pw_gate_info *info, char *err, size_t errlen);

/* The length of the longest prefix of s[0..n) that does not end inside a
** UTF-8 sequence (s is valid UTF-8, or was cut from valid UTF-8): where to
** cut text that passed the gate so that what is shown stays valid. */
size_t pw_utf8_cut(const char *s, size_t n);

#endif
