/*
** gate.c: the strict lexical check of JSON text that runs before lua-cjson.
**
** One forward pass over the bytes, driven by a small state machine with an
** explicit stack of open containers (no recursion), so the C stack use is
** fixed whatever the input. Every byte is looked at once; nothing is built.
**
** Checks, in the order the text reaches them: size cap; exactly one object
** at top level; RFC 8259 grammar (no comments, no trailing commas, no
** NaN/Infinity/hex/+1/01/5./.5); no NUL byte anywhere; valid UTF-8 only
** (no overlong forms, no encoded surrogates, nothing above U+10FFFF);
** in strings no raw control characters, only the eight short escapes and
** \uXXXX, no \u0000, no unpaired UTF-16 surrogates; integer literals within
** +-2^53 (cjson turns every number into a double); nesting depth; members
** per object and items per array; duplicate keys, compared after decoding
** escapes.
**
** Duplicate keys: each key's raw span and a hash of its decoded bytes go on
** a key stack (one contiguous segment per open object). When an object
** closes, its segment is sorted by (hash, decoded bytes, position) and
** neighbours are compared: O(m log m) per object even for keys crafted to
** collide, with no allocation below GATE_STACK_KEYS live keys. The error
** names the second occurrence that comes first in the text. As a result an
** object's duplicate key is reported when the object closes, so another
** error later inside the same object is reported first.
**
** Messages: "<path>: <reason> (byte <offset>)", the offset 0-based. The path
** is dotted for keys and [i] (0-based) for array items, "$" for the top
** level; keys are shown raw (escapes undecoded), cut at GATE_KEY_SHOW bytes;
** a path deeper than 8 shows its first 3 and last 5 steps around "...".
**
** info: set only when the check passes. On failure has_id is 0, as JSON-RPC
** wants a null id after a parse error.
**
** Memory: no heap use with the default limits unless more than
** GATE_STACK_KEYS keys are open at once (the key stack then moves to the
** heap and doubles). A max_depth above GATE_STACK_FRAMES allocates the frame
** stack (min(max_depth, n) frames) up front. Both are freed before
** pw_gate_check returns, on every path.
** No globals and no static mutable state: reentrant.
*/
#include "gate.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GATE_DEF_BYTES ((size_t)1 << 20)
#define GATE_DEF_DEPTH 32
#define GATE_DEF_MEMBERS 1024
#define GATE_STACK_FRAMES 64
#define GATE_STACK_KEYS 64
#define GATE_KEY_SHOW 32     /* bytes of a key shown in a message */
#define GATE_PATH_HEAD 3     /* path components shown before "..." */
#define GATE_PATH_TAIL 5     /* and after it */
#define GATE_PATH_MAX 400    /* holds 8 components of GATE_KEY_SHOW bytes */
#define GATE_WHY_MAX 160     /* reason and byte offset */
#define GATE_SMALL_SORT 16   /* insertion sort up to this many keys */
#define GATE_MAX_EXACT "9007199254740992"   /* 2^53, 16 digits */

#if defined(__GNUC__)
#define GATE_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define GATE_PRINTF(f, a)
#endif

typedef struct gate_key {
  const char *p;     /* first byte after the opening quote */
  size_t len;        /* raw length, escapes undecoded */
  uint32_t hash;     /* of the decoded bytes (gate_key_hash) */
  uint32_t esc;      /* raw text holds a backslash */
} gate_key;

typedef struct gate_frame {
  size_t base;       /* objects: key stack index of the first key */
  size_t key;        /* objects: key stack index of the current key */
  int count;         /* members or items begun */
  unsigned char obj; /* 1 object, 0 array */
  unsigned char in;  /* inside a member's value (path shows key/index) */
} gate_frame;

typedef struct gate {
  const char *s;
  size_t n, i;
  int max_depth, max_members;
  gate_frame *fr;
  int depth;
  gate_key *keys;
  size_t nkeys, capkeys;
  int keys_heap;
  int id_pending, id_found;
  size_t id_off, id_len;
  char *err;
  size_t errlen;
} gate;

enum { ST_ERR = -1, ST_DONE = 1, ST_OBJ_FIRST, ST_KEY, ST_ARR_FIRST, ST_ITEM,
       ST_VALUE, ST_AFTER };

/* ---- message buffer: always NUL-terminated, never overruns ------------ */

typedef struct gate_buf {
  char *p;
  size_t cap, len;
} gate_buf;

static void gate_vputf(gate_buf *b, const char *fmt, va_list ap) {
  int k;
  if (b->len + 1 >= b->cap) return;
  k = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
  if (k < 0) return;
  b->len += (size_t)k;
  if (b->len > b->cap - 1) b->len = b->cap - 1;
}

GATE_PRINTF(2, 3)
static void gate_putf(gate_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  gate_vputf(b, fmt, ap);
  va_end(ap);
}

static void gate_putn(gate_buf *b, const char *s, size_t n) {
  size_t room;
  if (b->len + 1 >= b->cap) return;
  room = b->cap - 1 - b->len;
  if (n > room) n = room;
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

size_t pw_utf8_cut(const char *s, size_t n) {
  size_t j = n, lead;
  unsigned c;
  while (j > 0 && ((unsigned char)s[j - 1] & 0xC0) == 0x80) j--;
  if (j == 0) return n;
  c = (unsigned char)s[j - 1];
  lead = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
  return n - (j - 1) >= lead ? n : j - 1;
}

/* ---- error reporting --------------------------------------------------- */

static void gate_put_key(gate_buf *b, const gate_key *k) {
  size_t n = k->len;
  if (n == 0) { gate_putn(b, "\"\"", 2); return; }
  if (n > GATE_KEY_SHOW) n = pw_utf8_cut(k->p, GATE_KEY_SHOW);
  gate_putn(b, k->p, n);
  if (n < k->len) gate_putn(b, "...", 3);
}

/* Path components shown: the first GATE_PATH_HEAD and the last
** GATE_PATH_TAIL, with "..." between when deeper, so that the reason
** always fits in a message. */
static int gate_path_len(const gate *g) {
  int d = 0;
  while (d < g->depth && g->fr[d].in) d++;
  return d;
}

static void gate_component(const gate *g, gate_buf *b, int d, int dot) {
  const gate_frame *f = &g->fr[d];
  if (!f->obj) { gate_putf(b, "[%d]", f->count - 1); return; }
  if (dot) gate_putn(b, ".", 1);
  gate_put_key(b, &g->keys[f->key]);
}

static void gate_path(const gate *g, gate_buf *b) {
  int len = gate_path_len(g), d;
  if (len == 0) { gate_putn(b, "$", 1); return; }
  for (d = 0; d < len; d++) {
    if (len > GATE_PATH_HEAD + GATE_PATH_TAIL && d == GATE_PATH_HEAD) {
      gate_putn(b, "...", 3);
      d = len - GATE_PATH_TAIL;
      gate_component(g, b, d, 0);
      continue;
    }
    gate_component(g, b, d, d > 0);
  }
}

/* Path, ": ", reason. When err is too small for all of it, the path loses
** its head ("...b[2].site") so that the reason and the byte survive. */
static void gate_compose(gate_buf *b, const char *path, size_t plen,
                         const char *why, size_t wlen) {
  size_t room = b->cap - 1, skip = 0;
  if (plen + 2 + wlen > room && room > wlen + 2 + 3 + 8) {
    skip = plen - (room - wlen - 2 - 3);
    while (skip < plen && ((unsigned char)path[skip] & 0xC0) == 0x80) skip++;
    gate_putn(b, "...", 3);
  }
  gate_putn(b, path + skip, plen - skip);
  gate_putn(b, ": ", 2);
  gate_putn(b, why, wlen);
  b->p[pw_utf8_cut(b->p, b->len)] = '\0';
}

GATE_PRINTF(3, 4)
static int gate_fail(const gate *g, size_t off, const char *fmt, ...) {
  char path[GATE_PATH_MAX], why[GATE_WHY_MAX];
  gate_buf pb, wb, b;
  va_list ap;
  if (!g->err || g->errlen == 0) return ST_ERR;
  pb.p = path; pb.cap = sizeof path; pb.len = 0; path[0] = '\0';
  wb.p = why; wb.cap = sizeof why; wb.len = 0; why[0] = '\0';
  b.p = g->err; b.cap = g->errlen; b.len = 0; b.p[0] = '\0';
  gate_path(g, &pb);
  va_start(ap, fmt);
  gate_vputf(&wb, fmt, ap);
  va_end(ap);
  gate_putf(&wb, " (byte %zu)", off);
  gate_compose(&b, path, pw_utf8_cut(path, pb.len), why, pw_utf8_cut(why, wb.len));
  return ST_ERR;
}

/* A byte as shown in a message: 'x' when printable ASCII, else 0xNN. */
static int gate_unexpected(const gate *g, size_t off, const char *expected) {
  unsigned c = (unsigned char)g->s[off];
  if (c == 0) return gate_fail(g, off, "NUL byte");
  if (c > 0x20 && c < 0x7F)
    return gate_fail(g, off, "%s, found '%c'", expected, (int)c);
  return gate_fail(g, off, "%s, found byte 0x%02X", expected, c);
}

/* ---- character classes ------------------------------------------------- */

static int gate_is_ws(unsigned c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

static int gate_is_digit(unsigned c) {
  return c - '0' < 10u;
}

/* Could continue a number or literal token: 1x, 0x10, truex, 1.2.3. */
static int gate_is_tok(unsigned c) {
  return gate_is_digit(c) || (c | 0x20) - 'a' < 26u || c == '_' ||
         c == '.' || c == '+' || c == '-';
}

static int gate_hexval(unsigned c) {
  if (gate_is_digit(c)) return (int)(c - '0');
  c |= 0x20;
  if (c - 'a' < 6u) return (int)(c - 'a' + 10);
  return -1;
}

static void gate_ws(gate *g) {
  while (g->i < g->n && gate_is_ws((unsigned char)g->s[g->i])) g->i++;
}

/* ---- strings ------------------------------------------------------------- */

/* Four hex digits at s[i..i+4) into *u; -1 if short or not hex. */
static int gate_hex4(const gate *g, size_t i, unsigned *u) {
  unsigned v = 0;
  size_t k;
  int h;
  if (i > g->n || g->n - i < 4) return -1;
  for (k = 0; k < 4; k++) {
    h = gate_hexval((unsigned char)g->s[i + k]);
    if (h < 0) return -1;
    v = v << 4 | (unsigned)h;
  }
  *u = v;
  return 0;
}

/* \uXXXX at s[i] (the backslash); advances past it and its low half. */
static int gate_escape_u(gate *g, size_t i, size_t *next) {
  unsigned u, lo;
  if (gate_hex4(g, i + 2, &u)) return gate_fail(g, i, "invalid \\u escape");
  if (u == 0) return gate_fail(g, i, "\\u0000 is not allowed");
  if (u >= 0xDC00 && u <= 0xDFFF)
    return gate_fail(g, i, "unpaired low surrogate \\u%04X", u);
  if (u < 0xD800 || u > 0xDBFF) { *next = i + 6; return 0; }
  if (g->n - i < 12 || g->s[i + 6] != '\\' || g->s[i + 7] != 'u' ||
      gate_hex4(g, i + 8, &lo) || lo < 0xDC00 || lo > 0xDFFF)
    return gate_fail(g, i, "unpaired high surrogate \\u%04X", u);
  *next = i + 12;
  return 0;
}

static int gate_escape(gate *g, size_t i, size_t *next) {
  unsigned c;
  if (i + 1 >= g->n) return gate_fail(g, g->n, "unterminated string");
  c = (unsigned char)g->s[i + 1];
  switch (c) {
    case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r':
    case 't':
      *next = i + 2;
      return 0;
    case 'u':
      return gate_escape_u(g, i, next);
    default:
      if (c > 0x20 && c < 0x7F)
        return gate_fail(g, i, "invalid escape '\\%c'", (int)c);
      return gate_fail(g, i, "invalid escape");
  }
}

/* One multi-byte UTF-8 sequence at s[i] (a byte >= 0x80), RFC 3629. */
static int gate_utf8(gate *g, size_t i, size_t *next) {
  const unsigned char *u = (const unsigned char *)g->s;
  unsigned c = u[i], lo = 0x80, hi = 0xBF;
  size_t need, k;
  if (c < 0xC0) return gate_fail(g, i, "invalid UTF-8: stray continuation byte");
  if (c < 0xC2) return gate_fail(g, i, "invalid UTF-8: overlong encoding");
  if (c > 0xF7) return gate_fail(g, i, "invalid UTF-8: bad byte 0x%02X", c);
  if (c > 0xF4) return gate_fail(g, i, "invalid UTF-8: code point above U+10FFFF");
  need = c < 0xE0 ? 1 : c < 0xF0 ? 2 : 3;
  for (k = 1; k <= need; k++)
    if (i + k >= g->n || (u[i + k] & 0xC0) != 0x80)
      return gate_fail(g, i, "invalid UTF-8: truncated sequence");
  if (c == 0xE0) lo = 0xA0;
  else if (c == 0xF0) lo = 0x90;
  else if (c == 0xED) hi = 0x9F;
  else if (c == 0xF4) hi = 0x8F;
  if (u[i + 1] < lo) return gate_fail(g, i, "invalid UTF-8: overlong encoding");
  if (u[i + 1] > hi)
    return gate_fail(g, i, c == 0xED ? "invalid UTF-8: encoded surrogate"
                                     : "invalid UTF-8: code point above U+10FFFF");
  *next = i + need + 1;
  return 0;
}

/* Printable ASCII other than '"' and '\\': the common case, no checks. */
static int gate_is_plain(unsigned c) {
  return c - 0x20u < 0x60u && c != '"' && c != '\\';
}

/* Nonzero if any of the 8 bytes in w is a quote, a backslash, below 0x20
** or above 0x7F (exact for presence: never misses one). */
static uint64_t gate_swar_special(uint64_t w) {
  const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
  uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
  return (((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((b - ones) & ~b) | w) & high;
}

/* Index of the first byte at or after i that is not plain. */
static size_t gate_plain_run(const unsigned char *u, size_t i, size_t n) {
  uint64_t w;
  while (n - i >= 8) {
    memcpy(&w, u + i, 8);
    if (gate_swar_special(w)) break;
    i += 8;
  }
  while (i < n && gate_is_plain(u[i])) i++;
  return i;
}

/* The string at s[g->i] (the opening quote). Leaves g->i after the closing
** quote; *esc says whether it held a backslash. */
static int gate_string(gate *g, int *esc) {
  const unsigned char *u = (const unsigned char *)g->s;
  size_t i = g->i + 1, n = g->n;
  *esc = 0;
  for (;;) {
    unsigned c;
    i = gate_plain_run(u, i, n);
    if (i >= n) return gate_fail(g, n, "unterminated string");
    c = u[i];
    if (c == '"') break;
    if (c == '\\') {
      *esc = 1;
      if (gate_escape(g, i, &i)) return ST_ERR;
    } else if (c < 0x20) {
      if (c == 0) return gate_fail(g, i, "NUL byte in string");
      return gate_fail(g, i, "raw control character 0x%02X in string", c);
    } else if (c >= 0x80) {
      if (gate_utf8(g, i, &i)) return ST_ERR;
    } else {
      i++;   /* 0x7F (DEL) is allowed by RFC 8259 */
    }
  }
  g->i = i + 1;
  return 0;
}

/* ---- keys: decoding, hashing, comparing -------------------------------- */

/* Decoded bytes of a validated key, one at a time; -1 at the end. */
typedef struct gate_it {
  const unsigned char *p, *end;
  unsigned char buf[4];
  int nb, ib;
} gate_it;

static unsigned gate_hex_ok(const unsigned char *p) {
  unsigned v = 0;
  int k;
  for (k = 0; k < 4; k++) v = v << 4 | (unsigned)gate_hexval(p[k]);
  return v;
}

static int gate_utf8_enc(unsigned cp, unsigned char *b) {
  if (cp < 0x80) { b[0] = (unsigned char)cp; return 1; }
  if (cp < 0x800) {
    b[0] = (unsigned char)(0xC0 | cp >> 6);
    b[1] = (unsigned char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    b[0] = (unsigned char)(0xE0 | cp >> 12);
    b[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    b[2] = (unsigned char)(0x80 | (cp & 0x3F));
    return 3;
  }
  b[0] = (unsigned char)(0xF0 | cp >> 18);
  b[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
  b[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
  b[3] = (unsigned char)(0x80 | (cp & 0x3F));
  return 4;
}

static int gate_it_escape(gate_it *it) {
  unsigned c = *it->p++, cp;
  switch (c) {
    case 'b': return '\b';
    case 'f': return '\f';
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    case 'u': break;
    default: return (int)c;   /* " \ / */
  }
  cp = gate_hex_ok(it->p);
  it->p += 4;
  if (cp >= 0xD800 && cp <= 0xDBFF) {
    cp = 0x10000 + ((cp - 0xD800) << 10) + (gate_hex_ok(it->p + 2) - 0xDC00);
    it->p += 6;
  }
  it->nb = gate_utf8_enc(cp, it->buf);
  it->ib = 1;
  return it->buf[0];
}

static int gate_it_next(gate_it *it) {
  unsigned c;
  if (it->ib < it->nb) return it->buf[it->ib++];
  if (it->p >= it->end) return -1;
  c = *it->p++;
  if (c != '\\') return (int)c;
  return gate_it_escape(it);
}

static void gate_it_init(gate_it *it, const gate_key *k) {
  it->p = (const unsigned char *)k->p;
  it->end = it->p + k->len;
  it->nb = it->ib = 0;
}

/* Hash of the decoded bytes taken as 8-byte words plus the length: the
** raw and the escaped path must agree. Whole words are loaded natively;
** the last partial word is assembled with shifts (no store-forwarding
** stall) in the same order by both paths. */
static uint64_t gate_mix(uint64_t h, uint64_t w) {
  h = (h ^ w) * 0x9E3779B97F4A7C15u;
  return h ^ (h >> 29);
}

static uint32_t gate_hash_end(uint64_t h, size_t len) {
  h = gate_mix(h, (uint64_t)len);
  return (uint32_t)(h ^ (h >> 32));
}

static uint64_t gate_tail_word(const unsigned char *p, size_t m) {
  uint64_t w = 0;
  size_t j;
  for (j = 0; j < m; j++) w |= (uint64_t)p[j] << (8 * j);
  return w;
}

static uint32_t gate_hash_raw(const char *p, size_t len) {
  uint64_t h = 0, w;
  size_t j = 0;
  for (; len - j >= 8; j += 8) {
    memcpy(&w, p + j, 8);
    h = gate_mix(h, w);
  }
  if (j < len) h = gate_mix(h, gate_tail_word((const unsigned char *)p + j, len - j));
  return gate_hash_end(h, len);
}

static uint32_t gate_hash_escaped(const gate_key *k) {
  unsigned char chunk[8];
  uint64_t h = 0, w;
  size_t len = 0;
  gate_it it;
  int c;
  gate_it_init(&it, k);
  while ((c = gate_it_next(&it)) >= 0) {
    chunk[len++ % 8] = (unsigned char)c;
    if (len % 8 == 0) {
      memcpy(&w, chunk, 8);
      h = gate_mix(h, w);
    }
  }
  if (len % 8) h = gate_mix(h, gate_tail_word(chunk, len % 8));
  return gate_hash_end(h, len);
}

static uint32_t gate_key_hash(const gate_key *k) {
  return k->esc ? gate_hash_escaped(k) : gate_hash_raw(k->p, k->len);
}

/* Order of decoded bytes (unsigned, shorter first on a common prefix). */
static int gate_key_dcmp(const gate_key *a, const gate_key *b) {
  gate_it ia, ib;
  int ca, cb;
  if (!a->esc && !b->esc) {
    int r = memcmp(a->p, b->p, a->len < b->len ? a->len : b->len);
    if (r) return r;
    return (a->len > b->len) - (a->len < b->len);
  }
  gate_it_init(&ia, a);
  gate_it_init(&ib, b);
  do {
    ca = gate_it_next(&ia);
    cb = gate_it_next(&ib);
  } while (ca == cb && ca >= 0);
  return (ca > cb) - (ca < cb);
}

static int gate_key_same(const gate_key *a, const gate_key *b) {
  return a->hash == b->hash && gate_key_dcmp(a, b) == 0;
}

/* Sort order: hash, decoded bytes, position in the text. */
static int gate_key_cmp(const gate_key *a, const gate_key *b) {
  int r;
  if (a->hash != b->hash) return a->hash < b->hash ? -1 : 1;
  r = gate_key_dcmp(a, b);
  if (r) return r;
  return (a->p > b->p) - (a->p < b->p);
}

static void gate_isort(gate_key *k, size_t m) {
  size_t j, q;
  for (j = 1; j < m; j++) {
    gate_key t = k[j];
    for (q = j; q > 0 && gate_key_cmp(&k[q - 1], &t) > 0; q--) k[q] = k[q - 1];
    k[q] = t;
  }
}

static void gate_sift(gate_key *k, size_t root, size_t m) {
  for (;;) {
    size_t c = 2 * root + 1;
    gate_key t;
    if (c >= m) return;
    if (c + 1 < m && gate_key_cmp(&k[c], &k[c + 1]) < 0) c++;
    if (gate_key_cmp(&k[root], &k[c]) >= 0) return;
    t = k[root]; k[root] = k[c]; k[c] = t;
    root = c;
  }
}

/* Heap sort: O(m log m) worst case, no allocation. */
static void gate_sort(gate_key *k, size_t m) {
  size_t j;
  if (m <= GATE_SMALL_SORT) { gate_isort(k, m); return; }
  for (j = m / 2; j-- > 0;) gate_sift(k, j, m);
  for (j = m - 1; j > 0; j--) {
    gate_key t = k[0]; k[0] = k[j]; k[j] = t;
    gate_sift(k, 0, j);
  }
}

/* ---- key stack ----------------------------------------------------------- */

static int gate_keys_grow(gate *g) {
  size_t cap = g->capkeys * 2;
  gate_key *p;
  if (cap > SIZE_MAX / sizeof *p) return -1;
  if (g->keys_heap) {
    p = realloc(g->keys, cap * sizeof *p);
  } else {
    p = malloc(cap * sizeof *p);
    if (p) memcpy(p, g->keys, g->nkeys * sizeof *p);
  }
  if (!p) return -1;
  g->keys = p;
  g->capkeys = cap;
  g->keys_heap = 1;
  return 0;
}

/* The second occurrence, earliest in the text, of a key appearing twice
** among the m keys at k (sorted in place); NULL if none. */
static const gate_key *gate_find_dup(gate_key *k, size_t m) {
  const gate_key *dup = NULL;
  size_t j;
  if (m < 2) return NULL;
  gate_sort(k, m);
  for (j = 1; j < m; j++)
    if (gate_key_same(&k[j - 1], &k[j]) && (!dup || k[j].p < dup->p))
      dup = &k[j];
  return dup;
}

static int gate_dups(gate *g, const gate_frame *f) {
  const gate_key *d = gate_find_dup(g->keys + f->base, g->nkeys - f->base);
  gate_buf b;
  char shown[GATE_KEY_SHOW + 8];
  if (!d) return 0;
  b.p = shown; b.cap = sizeof shown; b.len = 0;
  shown[0] = '\0';
  gate_put_key(&b, d);
  return gate_fail(g, (size_t)(d->p - g->s) - 1, "duplicate key '%s'", shown);
}

/* ---- structure ----------------------------------------------------------- */

static int gate_open(gate *g, int obj) {
  gate_frame *f;
  if (g->depth >= g->max_depth)
    return gate_fail(g, g->i, "nesting deeper than %d", g->max_depth);
  f = &g->fr[g->depth++];
  f->base = f->key = g->nkeys;
  f->count = 0;
  f->obj = (unsigned char)obj;
  f->in = 0;
  g->i++;
  return obj ? ST_OBJ_FIRST : ST_ARR_FIRST;
}

/* A value ended at g->i in the innermost open container. */
static int gate_done(gate *g) {
  g->fr[g->depth - 1].in = 0;
  if (g->depth == 1 && g->id_pending) {
    g->id_pending = 0;
    g->id_found = 1;
    g->id_len = g->i - g->id_off;
  }
  return ST_AFTER;
}

static int gate_close(gate *g) {
  gate_frame *f = &g->fr[g->depth - 1];
  if (f->obj) {
    if (gate_dups(g, f)) return ST_ERR;
    g->nkeys = f->base;
  }
  g->depth--;
  g->i++;
  return g->depth == 0 ? ST_DONE : gate_done(g);
}

static int gate_is_id(const gate_key *k) {
  gate_key id;
  id.p = "id"; id.len = 2; id.esc = 0; id.hash = 0;
  return gate_key_dcmp(k, &id) == 0;
}

static int gate_expect_colon(gate *g) {
  gate_ws(g);
  if (g->i >= g->n) return gate_fail(g, g->n, "unexpected end of input");
  if (g->s[g->i] != ':') return gate_unexpected(g, g->i, "expected ':' after key");
  g->i++;
  return 0;
}

/* A member's key and colon, at g->i (after white space). */
static int gate_member(gate *g) {
  gate_frame *f = &g->fr[g->depth - 1];
  gate_key *k;
  size_t q = g->i;
  int esc;
  if (g->s[q] == '}') return gate_fail(g, q, "trailing comma");
  if (g->s[q] != '"') return gate_unexpected(g, q, "expected a string key");
  if (f->count >= g->max_members)
    return gate_fail(g, q, "more than %d members", g->max_members);
  if (gate_string(g, &esc)) return ST_ERR;
  if (g->nkeys == g->capkeys && gate_keys_grow(g))
    return gate_fail(g, q, "out of memory");
  k = &g->keys[g->nkeys];
  k->p = g->s + q + 1;
  k->len = g->i - q - 2;
  k->esc = (uint32_t)esc;
  k->hash = gate_key_hash(k);
  f->key = g->nkeys++;
  f->count++;
  f->in = 1;
  if (g->depth == 1 && gate_is_id(k)) g->id_pending = 1;
  if (gate_expect_colon(g)) return ST_ERR;
  return ST_VALUE;
}

/* ---- scalars ------------------------------------------------------------- */

static void gate_digits(gate *g) {
  while (g->i < g->n && gate_is_digit((unsigned char)g->s[g->i])) g->i++;
}

static int gate_at(const gate *g, char c) {
  return g->i < g->n && g->s[g->i] == c;
}

static int gate_at_digit(const gate *g) {
  return g->i < g->n && gate_is_digit((unsigned char)g->s[g->i]);
}

/* Fraction and exponent; *is_int cleared if either is present. */
static int gate_number_tail(gate *g, size_t st, int *is_int) {
  if (gate_at(g, '.')) {
    g->i++;
    if (!gate_at_digit(g))
      return gate_fail(g, st, "invalid number: digit expected after '.'");
    gate_digits(g);
    *is_int = 0;
  }
  if (g->i < g->n && (g->s[g->i] | 0x20) == 'e') {
    g->i++;
    if (gate_at(g, '+') || gate_at(g, '-')) g->i++;
    if (!gate_at_digit(g))
      return gate_fail(g, st, "invalid number: exponent needs digits");
    gate_digits(g);
    *is_int = 0;
  }
  return 0;
}

static int gate_number(gate *g) {
  size_t st = g->i, d0, nd;
  int is_int = 1;
  if (gate_at(g, '-')) g->i++;
  if (gate_at(g, 'I')) return gate_fail(g, st, "Infinity is not JSON");
  if (!gate_at_digit(g))
    return gate_fail(g, st, "invalid number: digit expected after '-'");
  d0 = g->i;
  if (g->s[g->i] == '0') {
    g->i++;
    if (gate_at_digit(g)) return gate_fail(g, st, "invalid number: leading zero");
  } else {
    gate_digits(g);
  }
  nd = g->i - d0;
  if (gate_number_tail(g, st, &is_int)) return ST_ERR;
  if (g->i < g->n && gate_is_tok((unsigned char)g->s[g->i]))
    return gate_fail(g, st, "invalid number");
  if (is_int && (nd > 16 || (nd == 16 && memcmp(g->s + d0, GATE_MAX_EXACT, 16) > 0)))
    return gate_fail(g, st, "integer literal beyond exact range (2^53)");
  return 0;
}

static int gate_literal(gate *g, const char *w, size_t len) {
  size_t st = g->i;
  if (g->n - st < len || memcmp(g->s + st, w, len) != 0 ||
      (st + len < g->n && gate_is_tok((unsigned char)g->s[st + len])))
    return gate_fail(g, st, "invalid literal");
  g->i += len;
  return 0;
}

static int gate_starts(const gate *g, const char *w) {
  size_t len = strlen(w);
  return g->n - g->i >= len && memcmp(g->s + g->i, w, len) == 0;
}

/* Something that cannot begin a value, with a specific reason if known. */
static int gate_bad_value(gate *g, unsigned c) {
  size_t i = g->i;
  switch (c) {
    case '+': return gate_fail(g, i, "invalid number: leading '+'");
    case '.': return gate_fail(g, i, "invalid number: leading '.'");
    case '/': return gate_fail(g, i, "comments are not JSON");
    case '\'': return gate_fail(g, i, "strings need double quotes");
    case ',': case ':': case '}': case ']': return gate_fail(g, i, "missing value");
    default: break;
  }
  if (gate_starts(g, "NaN")) return gate_fail(g, i, "NaN is not JSON");
  if (gate_starts(g, "Infinity")) return gate_fail(g, i, "Infinity is not JSON");
  return gate_unexpected(g, i, "expected a value");
}

static int gate_scalar(gate *g, unsigned c) {
  int esc, r;
  if (c == '"') r = gate_string(g, &esc);
  else if (c == '-' || gate_is_digit(c)) r = gate_number(g);
  else if (c == 't') r = gate_literal(g, "true", 4);
  else if (c == 'f') r = gate_literal(g, "false", 5);
  else if (c == 'n') r = gate_literal(g, "null", 4);
  else r = gate_bad_value(g, c);
  return r ? ST_ERR : gate_done(g);
}

/* A value at g->i (after white space) in the innermost container. */
static int gate_value(gate *g) {
  unsigned c = (unsigned char)g->s[g->i];
  if (g->depth == 1 && g->id_pending) g->id_off = g->i;
  if (c == '{') return gate_open(g, 1);
  if (c == '[') return gate_open(g, 0);
  return gate_scalar(g, c);
}

/* An array item at g->i (after white space, not the first one's ']'). */
static int gate_item(gate *g) {
  gate_frame *f = &g->fr[g->depth - 1];
  if (g->s[g->i] == ']') return gate_fail(g, g->i, "trailing comma");
  if (f->count >= g->max_members)
    return gate_fail(g, g->i, "more than %d items", g->max_members);
  f->count++;
  f->in = 1;
  return gate_value(g);
}

static int gate_after(gate *g) {
  const gate_frame *f = &g->fr[g->depth - 1];
  char c = g->s[g->i];
  if (c == ',') {
    g->i++;
    return f->obj ? ST_KEY : ST_ITEM;
  }
  if (c == (f->obj ? '}' : ']')) return gate_close(g);
  return gate_unexpected(g, g->i, f->obj ? "expected ',' or '}'" : "expected ',' or ']'");
}

static int gate_step(gate *g, int st) {
  char c = g->s[g->i];
  switch (st) {
    case ST_OBJ_FIRST: return c == '}' ? gate_close(g) : gate_member(g);
    case ST_KEY: return gate_member(g);
    case ST_ARR_FIRST: return c == ']' ? gate_close(g) : gate_item(g);
    case ST_ITEM: return gate_item(g);
    case ST_VALUE: return gate_value(g);
    default: return gate_after(g);
  }
}

static int gate_tail(gate *g) {
  gate_ws(g);
  if (g->i == g->n) return 0;
  if (g->s[g->i] == '\0') return gate_fail(g, g->i, "NUL byte after the object");
  return gate_fail(g, g->i, "trailing characters after the object");
}

static int gate_run(gate *g) {
  int st;
  gate_ws(g);
  if (g->i >= g->n || g->s[g->i] != '{')
    return gate_fail(g, g->i, "expected a JSON object at top level");
  st = gate_open(g, 1);
  for (;;) {
    gate_ws(g);
    if (g->i >= g->n) return gate_fail(g, g->n, "unexpected end of input");
    if (g->s[g->i] == '\0') return gate_fail(g, g->i, "NUL byte");
    st = gate_step(g, st);
    if (st == ST_ERR) return -1;
    if (st == ST_DONE) return gate_tail(g);
  }
}

/* ---- entry point --------------------------------------------------------- */

static void gate_limits(gate *g, const pw_gate_limits *lim, size_t *max_bytes) {
  *max_bytes = lim && lim->max_bytes ? lim->max_bytes : GATE_DEF_BYTES;
  g->max_depth = lim && lim->max_depth > 0 ? lim->max_depth : GATE_DEF_DEPTH;
  g->max_members = lim && lim->max_members > 0 ? lim->max_members : GATE_DEF_MEMBERS;
}

int pw_gate_check(const char *s, size_t n, const pw_gate_limits *lim,
                  pw_gate_info *info, char *err, size_t errlen) {
  gate g;
  gate_frame fr_stack[GATE_STACK_FRAMES];
  gate_key keys_stack[GATE_STACK_KEYS];
  size_t max_bytes, frames;
  int rc;

  memset(&g, 0, sizeof g);
  if (info) { info->has_id = 0; info->id_off = info->id_len = 0; }
  if (err && errlen) err[0] = '\0';
  gate_limits(&g, lim, &max_bytes);
  if (n > max_bytes) {
    if (err && errlen)
      snprintf(err, errlen, "input is %zu bytes, over the limit of %zu", n, max_bytes);
    return -1;
  }
  g.s = s ? s : "";
  g.n = s ? n : 0;
  g.err = err;
  g.errlen = errlen;
  g.keys = keys_stack;
  g.capkeys = GATE_STACK_KEYS;

  /* Depth can never exceed the byte count, so that bounds the frames. */
  frames = (size_t)g.max_depth < g.n ? (size_t)g.max_depth : g.n;
  g.fr = fr_stack;
  if (frames > GATE_STACK_FRAMES) {
    g.fr = malloc(frames * sizeof *g.fr);
    if (!g.fr) {
      if (err && errlen) snprintf(err, errlen, "$: out of memory (byte 0)");
      return -1;
    }
  }

  rc = gate_run(&g);

  if (g.fr != fr_stack) free(g.fr);
  if (g.keys_heap) free(g.keys);
  if (rc == 0 && info && g.id_found) {
    info->has_id = 1;
    info->id_off = g.id_off;
    info->id_len = g.id_len;
  }
  return rc == 0 ? 0 : -1;
}
