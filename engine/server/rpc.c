/*
** rpc.c: JSON-RPC 2.0 text helpers: the method table, error kinds and
** error lines, and the bounded scanner the supervisor runs on every line.
** (The worker's handler of evaluate and check_orders is handler.c.)
**
** The scanner only delimits: strings are skipped to their closing quote,
** containers by counting brackets outside strings, scalars as a run of
** [A-Za-z0-9+-.]. Every index is checked against n, so any bytes are safe.
** Whether the text is valid JSON is the gate's business (pw_engine_decode
** runs it in the worker before cjson sees a byte).
*/
#include "rpc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "file.h"

/* ==================================================================== */
/* {====== method table and error kinds                                 */

static const char *const rpc_methods[PW_M__COUNT] = {
  NULL, "evaluate", "check_orders", "protocols", "rules", "reload", "health", "stats",
  "evaluate_fhir", "cds"
};

int pw_rpc_method_num(const char *s, size_t n) {
  for (int m = 1; m < PW_M__COUNT; m++)
    if (strlen(rpc_methods[m]) == n && memcmp(rpc_methods[m], s, n) == 0) return m;
  return PW_M_NONE;
}

const char *pw_rpc_method_name(int m) {
  return (m > 0 && m < PW_M__COUNT) ? rpc_methods[m] : "unknown";
}

const char *pw_rpc_code_kind(int code) {
  switch (code) {
    case PW_RPC_PARSE_ERROR: return "parse";
    case PW_RPC_INVALID_REQUEST: return "invalid_request";
    case PW_RPC_METHOD_NOT_FOUND: return "method_not_found";
    case PW_RPC_INVALID_PARAMS: return "invalid_params";
    case PW_RPC_VALIDATION: return "validation";
    case PW_RPC_PROTOCOL: return "protocol";
    case PW_RPC_BUDGET: return "budget";
    case PW_RPC_MEMORY: return "memory";
    case PW_RPC_DEADLINE: return "deadline";
    case PW_RPC_WORKER_CRASH: return "worker_crash";
    case PW_RPC_LOG_FAILED: return "decision_log";
    case PW_RPC_TOO_LARGE: return "too_large";
    case PW_RPC_BUSY: return "busy";
    case PW_RPC_UNKNOWN_PROTOCOL: return "unknown_protocol";
    case PW_RPC_FORBIDDEN: return "forbidden";
    case PW_RPC_RELOAD_FAILED: return "reload";
    default: return "internal";
  }
}

void pw_rpc_error_line(pw_buf *out, const char *id, size_t idlen, int code,
                       const char *msg) {
  /* a client's reply never shows where the server's files live */
  char *clean = pw_file_cut_paths(msg ? msg : "");
  pw_buf_adds(out, "{\"jsonrpc\":\"2.0\",\"id\":");
  if (id && idlen) pw_buf_add(out, id, idlen);
  else pw_buf_add(out, "null", 4);
  pw_buf_addf(out, ",\"error\":{\"code\":%d,\"message\":", code);
  pw_buf_json_str(out, clean ? clean : "(error message lost: out of memory)");
  free(clean);
  pw_buf_adds(out, ",\"data\":{\"kind\":\"");
  pw_buf_adds(out, pw_rpc_code_kind(code));
  pw_buf_add(out, "\"}}}\n", 5);
}

/* }====== */

/* ==================================================================== */
/* {====== the scanner                                                  */

static size_t scan_ws(const char *s, size_t i, size_t n) {
  while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
  return i;
}

/* s[i] is '"'; returns the index after the closing quote, 0 if none. */
static size_t scan_string(const char *s, size_t i, size_t n) {
  i++;
  while (i < n) {
    const char *q = memchr(s + i, '"', n - i);
    if (!q) return 0;
    size_t j = (size_t)(q - s);
    /* count the backslashes just before the quote */
    size_t k = j;
    while (k > i && s[k - 1] == '\\') k--;
    if (((j - k) & 1) == 0) return j + 1;
    i = j + 1;
  }
  return 0;
}

static int scalar_char(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         c == '-' || c == '+' || c == '.';
}

/* Returns the index after the value starting at s[i], 0 if malformed. */
static size_t scan_value(const char *s, size_t i, size_t n) {
  if (i >= n) return 0;
  char c = s[i];
  if (c == '"') return scan_string(s, i, n);
  if (c == '{' || c == '[') {
    size_t depth = 0;
    while (i < n) {
      c = s[i];
      if (c == '"') {
        i = scan_string(s, i, n);
        if (!i) return 0;
        continue;
      }
      if (c == '{' || c == '[') depth++;
      else if (c == '}' || c == ']') {
        if (--depth == 0) return i + 1;
      }
      i++;
    }
    return 0;
  }
  size_t j = i;
  while (j < n && scalar_char(s[j])) j++;
  return j > i ? j : 0;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static int hex4(const char *s, size_t i, size_t n) {
  if (i + 4 > n) return -1;
  int v = 0;
  for (int k = 0; k < 4; k++) {
    int h = hexval(s[i + (size_t)k]);
    if (h < 0) return -1;
    v = v * 16 + h;
  }
  return v;
}

/* The UTF-8 bytes of code point cp (< 0x110000) into u; their count. */
static size_t utf8_put(unsigned long cp, char *u) {
  if (cp < 0x80) {
    u[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    u[0] = (char)(0xC0 | (cp >> 6));
    u[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    u[0] = (char)(0xE0 | (cp >> 12));
    u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    u[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  u[0] = (char)(0xF0 | (cp >> 18));
  u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  u[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

int pw_rpc_string(const char *s, size_t n, char *out, size_t cap) {
  if (n < 2 || s[0] != '"' || s[n - 1] != '"' || cap == 0) return -1;
  size_t o = 0;
  for (size_t i = 1; i < n - 1; i++) {
    unsigned char c = (unsigned char)s[i];
    unsigned long cp;
    if (c < 0x20) return -1;
    if (c != '\\') {
      if (o + 1 >= cap) return -1;
      out[o++] = (char)c;
      continue;
    }
    if (++i >= n - 1) return -1;
    switch (s[i]) {
      case '"': cp = '"'; break;
      case '\\': cp = '\\'; break;
      case '/': cp = '/'; break;
      case 'b': cp = '\b'; break;
      case 'f': cp = '\f'; break;
      case 'n': cp = '\n'; break;
      case 'r': cp = '\r'; break;
      case 't': cp = '\t'; break;
      case 'u': {
        int h = hex4(s, i + 1, n - 1);
        if (h < 0) return -1;
        i += 4;
        cp = (unsigned long)h;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          if (i + 2 >= n - 1 || s[i + 1] != '\\' || s[i + 2] != 'u') return -1;
          int lo = hex4(s, i + 3, n - 1);
          if (lo < 0xDC00 || lo > 0xDFFF) return -1;
          i += 6;
          cp = 0x10000 + ((cp - 0xD800) << 10) + ((unsigned long)lo - 0xDC00);
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          return -1;
        }
        if (cp == 0) return -1;
        break;
      }
      default: return -1;
    }
    char u[4];
    size_t k = utf8_put(cp, u);
    if (o + k >= cap) return -1;
    memcpy(out + o, u, k);
    o += k;
  }
  out[o] = '\0';
  return (int)o;
}

pw_span pw_rpc_param(const char *line, size_t len, const char *key) {
  static const char *const top[] = {"params"};
  const char *const par[] = {key};
  pw_span sp[1], kp[1], none = {0, 0};
  if (pw_rpc_members(line, len, top, 1, sp, PW_RPC_FIRST) != 0 || !sp[0].len) return none;
  if (pw_rpc_members(line + sp[0].off, sp[0].len, par, 1, kp, PW_RPC_FIRST) != 0 || !kp[0].len)
    return none;
  kp[0].off += sp[0].off;
  return kp[0];
}

int pw_rpc_param_string(const char *line, size_t len, const char *key, char *out, size_t cap) {
  pw_span v = pw_rpc_param(line, len, key);
  if (!v.len || (v.len == 4 && !memcmp(line + v.off, "null", 4))) return 0;
  return pw_rpc_string(line + v.off, v.len, out, cap) < 0 ? -1 : 1;
}

int pw_rpc_members(const char *s, size_t n, const char *const *keys, int nkeys,
                   pw_span *spans, int flags) {
  int found = 0;
  for (int k = 0; k < nkeys; k++) spans[k].off = spans[k].len = 0;
  size_t i = scan_ws(s, 0, n);
  if (i >= n || s[i] != '{') return -1;
  i = scan_ws(s, i + 1, n);
  if (i < n && s[i] == '}') {
    i = scan_ws(s, i + 1, n);
    return i == n ? 0 : -1;
  }
  for (;;) {
    if (i >= n || s[i] != '"') return -1;
    size_t kend = scan_string(s, i, n);
    if (!kend) return -1;
    const char *key = s + i + 1;
    size_t klen = kend - i - 2;
    i = scan_ws(s, kend, n);
    if (i >= n || s[i] != ':') return -1;
    i = scan_ws(s, i + 1, n);
    size_t vend = scan_value(s, i, n);
    if (!vend) return -1;
    char dec[64];
    if (memchr(key, '\\', klen)) {
      int dl = pw_rpc_string(s + (key - s) - 1, klen + 2, dec, sizeof dec);
      if (dl < 0) { dec[0] = '\0'; dl = 0; }
      key = dec;
      klen = (size_t)dl;
    }
    for (int k = 0; k < nkeys; k++) {
      if (strlen(keys[k]) == klen && memcmp(keys[k], key, klen) == 0) {
        if (spans[k].len) return -1;   /* duplicate */
        spans[k].off = i;
        spans[k].len = vend - i;
        found++;
        break;
      }
    }
    if ((flags & PW_RPC_FIRST) && found == nkeys) return 0;
    i = scan_ws(s, vend, n);
    if (i < n && s[i] == ',') {
      i = scan_ws(s, i + 1, n);
      continue;
    }
    if (i < n && s[i] == '}') {
      i = scan_ws(s, i + 1, n);
      return i == n ? 0 : -1;
    }
    return -1;
  }
}

/* }====== */

/* ==================================================================== */
/* {====== an id still readable in a line the gate refused              */

static size_t digits(const char *p, size_t i, size_t n) {
  while (i < n && p[i] >= '0' && p[i] <= '9') i++;
  return i;
}

/* a JSON number (the grammar, not strtod's) that a client reads back exactly */
static int id_number(const char *p, size_t n) {
  size_t i = p[0] == '-' ? 1 : 0, d;
  if (n > 40 || i >= n || p[i] < '0' || p[i] > '9') return 0;
  i = p[i] == '0' ? i + 1 : digits(p, i, n);
  if (i < n && p[i] == '.') {
    if ((d = digits(p, i + 1, n)) == i + 1) return 0;
    i = d;
  }
  if (i < n && (p[i] == 'e' || p[i] == 'E')) {
    i++;
    if (i < n && (p[i] == '+' || p[i] == '-')) i++;
    if ((d = digits(p, i, n)) == i) return 0;
    i = d;
  }
  if (i != n) return 0;
  char t[41];
  memcpy(t, p, n);
  t[n] = '\0';
  double v = strtod(t, NULL);
  return isfinite(v) && fabs(v) <= 9007199254740991.0;
}

/* a string of printable ASCII whose escapes are all one character */
static int id_string(const char *p, size_t n) {
  if (n < 2 || n > 258 || p[0] != '"' || p[n - 1] != '"') return 0;
  for (size_t i = 1; i < n - 1; i++) {
    unsigned char ch = (unsigned char)p[i];
    if (ch < 0x20 || ch > 0x7e || ch == '"') return 0;
    if (ch == '\\') {
      if (++i >= n - 1 || !p[i] || !strchr("\"\\/bfnrt", p[i])) return 0;
    }
  }
  return 1;
}

int pw_rpc_readable_id(const char *s, size_t n, pw_span *id) {
  static const char *const keys[] = {"id"};
  pw_span sp[1];
  if (pw_rpc_members(s, n, keys, 1, sp, 0) != 0 || !sp[0].len) return -1;
  const char *v = s + sp[0].off;
  size_t len = sp[0].len;
  if (!(len == 4 && memcmp(v, "null", 4) == 0) && !id_number(v, len) && !id_string(v, len))
    return -1;
  *id = sp[0];
  return 0;
}

/* }====== */
