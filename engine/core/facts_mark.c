/*
** facts_mark.c: {} and [] kept apart. lua-cjson 2.1.0 decodes both as the
** same empty table (and Debian's build has no decode_array_with_array_mt),
** so after decoding, pw_facts_mark_empty walks the JSON text once and
** gives each empty table a metatable that says which it was; validation
** (facts.c) reads the mark. See facts.h.
*/
#include <lauxlib.h>
#include <string.h>
#include "facts.h"

/* The walk of pw_facts_mark_empty: the JSON text (which passed the gate,
** so it is well formed) beside the value cjson decoded from it. A key
** spelled with escapes is decoded as cjson does; if a lookup still misses,
** that part is not marked and reads as before (an empty table). */
typedef struct jwalk { const char *s, *end; } jwalk;

static unsigned jw_hex4(const char *p) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char ch = p[i];
    v = v * 16 + (unsigned)(ch <= '9' ? ch - '0' : (ch | 0x20) - 'a' + 10);
  }
  return v;
}

/* Push the string at w->s (at its opening quote), decoded; w->s after it. */
static void jw_string(lua_State *L, jwalk *w) {
  luaL_Buffer b;
  const char *p = ++w->s, *q = p;
  while (q < w->end && *q != '"' && *q != '\\') q++;
  if (q < w->end && *q == '"') {   /* no escapes: the common case */
    lua_pushlstring(L, p, (size_t)(q - p));
    w->s = q + 1;
    return;
  }
  luaL_buffinit(L, &b);
  while (p < w->end && *p != '"') {
    q = p;
    while (q < w->end && *q != '"' && *q != '\\') q++;
    luaL_addlstring(&b, p, (size_t)(q - p));
    p = q;
    if (p >= w->end || *p == '"') break;
    char e = p[1], out = e;
    p += 2;
    if (e == 'u' && p + 4 <= w->end) {
      unsigned cp = jw_hex4(p);
      p += 4;
      if (cp >= 0xd800 && cp < 0xdc00 && p + 6 <= w->end && p[0] == '\\' && p[1] == 'u') {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (jw_hex4(p + 2) - 0xdc00);
        p += 6;
      }
      static const unsigned char lead[] = {0, 0, 0xc0, 0xe0, 0xf0};
      char u[4];
      int n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
      for (int i = n - 1; i > 0; i--) { u[i] = (char)(0x80 | (cp & 0x3f)); cp >>= 6; }
      u[0] = (char)(n == 1 ? cp : (lead[n] | cp));
      luaL_addlstring(&b, u, (size_t)n);
      continue;
    }
    switch (e) {
    case 'b': out = '\b'; break;
    case 'f': out = '\f'; break;
    case 'n': out = '\n'; break;
    case 'r': out = '\r'; break;
    case 't': out = '\t'; break;
    default: break;   /* " \\ / */
    }
    luaL_addchar(&b, out);
  }
  w->s = p < w->end ? p + 1 : p;
  luaL_pushresult(&b);
}

static void jw_mark(lua_State *L, int idx, const char *mt) {
  if (lua_type(L, idx) != LUA_TTABLE) return;
  if (lua_getmetatable(L, idx)) { lua_pop(L, 1); return; }
  luaL_newmetatable(L, mt);   /* made once per state, then found */
  lua_setmetatable(L, idx);
}

/* One open container on the way down: its current member's key (objects)
** or position (arrays). */
typedef struct jframe { const char *key; lua_Integer i; char object, want_key; } jframe;

/* Push the value at the path frames[0..n) leads to from the table at
** idx (nil where the path does not lead). */
static void jw_push_path(lua_State *L, int idx, const jframe *fr, int n, const char *end) {
  lua_pushvalue(L, idx);
  for (int d = 0; d < n; d++) {
    if (lua_type(L, -1) != LUA_TTABLE) return;
    if (fr[d].object) {
      jwalk k = {fr[d].key, end};
      jw_string(L, &k);
      lua_rawget(L, -2);
    } else
      lua_rawgeti(L, -1, fr[d].i);
    lua_remove(L, -2);
  }
}

static const unsigned char jw_special[256] = {
  ['"'] = 1, ['{'] = 1, ['['] = 1, ['}'] = 1, [']'] = 1, [','] = 1, [':'] = 1};

/* One pass over the text, keeping the path to where it is; each empty {}
** or [] is looked up by its path and marked. Facts without an empty
** container cost this pass and no Lua call. */
void pw_facts_mark_empty(lua_State *L, int idx, const char *json, size_t len) {
  jframe fr[40];
  int depth = 0;
  const char *p = json, *end = json + len;
  idx = lua_absindex(L, idx);
  if (!lua_checkstack(L, 4)) return;
  while (p < end) {
    char ch = *p;
    if (ch == '"') {
      if (depth && fr[depth - 1].want_key) fr[depth - 1].key = p;
      for (p++; p < end && *p != '"'; p++) {
        const char *q = memchr(p, '"', (size_t)(end - p));   /* most strings have no escapes */
        const char *e = q ? memchr(p, '\\', (size_t)(q - p)) : NULL;
        if (q && !e) { p = q; break; }
        if (e) p = e + 1;   /* skip the escaped byte; the loop steps past it */
        else { p = end; break; }
      }
      p++;
    } else if (ch == '{' || ch == '[') {
      const char *q = p + 1;
      while (q < end && (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')) q++;
      if (q < end && *q == (ch == '{' ? '}' : ']')) {   /* empty: mark it */
        jw_push_path(L, idx, fr, depth, end);
        jw_mark(L, lua_gettop(L), ch == '{' ? PW_FACTS_EMPTY_OBJECT_MT : PW_FACTS_EMPTY_ARRAY_MT);
        lua_pop(L, 1);
        p = q + 1;
        continue;
      }
      if (depth == (int)(sizeof fr / sizeof fr[0])) return;   /* deeper than the gate allows */
      fr[depth++] = (jframe){NULL, 1, ch == '{', ch == '{'};
      p++;
    } else if (ch == '}' || ch == ']') {
      if (depth) depth--;
      p++;
    } else if (ch == ',') {
      if (depth) { fr[depth - 1].i++; fr[depth - 1].want_key = fr[depth - 1].object; }
      p++;
    } else if (ch == ':') {
      if (depth) fr[depth - 1].want_key = 0;
      p++;
    } else {   /* white space, numbers, literals: to the next byte that matters */
      p++;
      while (p < end && !jw_special[(unsigned char)*p]) p++;
    }
  }
}
