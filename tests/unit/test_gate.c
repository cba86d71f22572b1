/*
** test_gate.c: the JSON gate (engine/base/gate.c) accepts strict JSON
** objects and refuses everything lua-cjson would misread, with messages
** that name the path, the reason and the byte.
*/
#include <stdint.h>
#include <stdlib.h>
#include "gate.h"
#include "pwtest.h"

static char E[512];   /* the last error message */

static int gate_n(const char *s, size_t n, const pw_gate_limits *lim) {
  return pw_gate_check(s, n, lim, NULL, E, sizeof E);
}

static int gate(const char *s) {
  return gate_n(s, strlen(s), NULL);
}

static int gate_lim(const char *s, size_t bytes, int depth, int members) {
  pw_gate_limits lim;
  lim.max_bytes = bytes;
  lim.max_depth = depth;
  lim.max_members = members;
  return gate_n(s, strlen(s), &lim);
}

/* Offset of the k-th (0-based) occurrence of needle in s. */
static size_t nth(const char *s, const char *needle, int k) {
  const char *p = strstr(s, needle);
  while (p && k-- > 0) p = strstr(p + 1, needle);
  return p ? (size_t)(p - s) : (size_t)-1;
}

/* Expected message: "<path>: <reason> (byte <off>)". */
static const char *msg(const char *path, const char *reason, size_t off) {
  static char m[512];
  snprintf(m, sizeof m, "%s: %s (byte %zu)", path, reason, off);
  return m;
}

/* Rejected, and the message holds both fragments. */
#define REJECT(json, frag1, frag2) do { \
  CHECK(gate(json) == -1); CHECK_CONTAINS(E, frag1); CHECK_CONTAINS(E, frag2); } while (0)

/* A growable string for generated inputs. */
typedef struct sb { char *p; size_t n, cap; } sb;

static void sb_add(sb *b, const char *s) {
  size_t k = strlen(s);
  if (b->n + k + 1 > b->cap) {
    b->cap = (b->n + k + 1) * 2;
    b->p = realloc(b->p, b->cap);
    if (!b->p) abort();
  }
  memcpy(b->p + b->n, s, k + 1);
  b->n += k;
}

/* ---- accepted ------------------------------------------------------------ */

static void test_valid(void) {
  CHECK(gate("{}") == 0);
  CHECK_STR(E, "");
  CHECK(gate(" \t\r\n{ \n}\r\n\t ") == 0);
  CHECK(gate("{\"a\":1}") == 0);
  CHECK(gate("{\"\":\"\"}") == 0);
  CHECK(gate("{\"a\":[],\"b\":{},\"c\":[[]],\"d\":[{}],\"e\":[1,[2,[3]]]}") == 0);
  CHECK(gate("{\"t\":true,\"f\":false,\"n\":null,\"s\":\"x\"}") == 0);
  CHECK(gate("{\"n\":[0,-0,1,-1,0.5,-0.5,1e5,1E5,1e+5,1e-5,1.25e-300,-0.0e0,"
             "123456789,9007199254740992,-9007199254740992]}") == 0);
  CHECK(gate("{\"s\":\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u0041 \\u00e9 \\u20AC "
             "\\ud83d\\ude00 \\uFFFF\"}") == 0);
  CHECK(gate("{\"utf8\":\"\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbf "
             "\xf4\x8f\xbf\xbf \xed\x9f\xbf \xee\x80\x80\"}") == 0);
  CHECK(gate("{\"del\":\"\x7f\"}") == 0);
  CHECK(gate("{\"a\":{\"a\":{\"a\":1}}}") == 0);          /* same name, other objects */
  CHECK(gate("{\"l\":[{\"a\":1},{\"a\":2}],\"a\":3}") == 0); /* siblings may share keys */
  CHECK(gate("{\"kras\":1,\"KRAS\":2,\"kras \":3,\"kra\":4}") == 0);
  CHECK(gate("{\n  \"jsonrpc\": \"2.0\",\n  \"id\": 7,\n  \"method\": \"evaluate\",\n"
             "  \"params\": {\n    \"patient\": {\"age\": 64, \"ecog\": 1},\n"
             "    \"molecular\": {\"kras\": \"G12C\", \"nras\": \"wt\", \"braf\": null,\n"
             "                  \"msi\": \"MSS\", \"her2\": false},\n"
             "    \"metastases\": [{\"site\": \"liver\", \"resectable\": true},\n"
             "                     {\"site\": \"lung\", \"count\": 3}],\n"
             "    \"lines\": [[\"FOLFOX\", \"bevacizumab\"]]\n  }\n}\n") == 0);
  CHECK(pw_gate_check("{}", 2, NULL, NULL, NULL, 0) == 0);   /* everything optional */
}

/* ---- top level, size, NUL ---------------------------------------------------- */

static void test_top_level(void) {
  REJECT("[1,2]", "$: expected a JSON object at top level", "(byte 0)");
  REJECT("\"x\"", "$: expected a JSON object at top level", "(byte 0)");
  REJECT("  42", "expected a JSON object at top level", "(byte 2)");
  REJECT("null", "expected a JSON object at top level", "(byte 0)");
  REJECT("", "expected a JSON object at top level", "(byte 0)");
  REJECT(" \n ", "expected a JSON object at top level", "(byte 3)");
  REJECT("\xef\xbb\xbf{}", "expected a JSON object at top level", "(byte 0)"); /* BOM */
  REJECT("{\"a\":1}{\"b\":2}", "$: trailing characters after the object", "(byte 7)");
  REJECT("{\"a\":1} x", "$: trailing characters after the object", "(byte 8)");
  REJECT("{\"a\":1", "$: unexpected end of input", "(byte 6)");
  REJECT("{\"a\":", "a: unexpected end of input", "(byte 5)");
  REJECT("{", "$: unexpected end of input", "(byte 1)");
  CHECK(pw_gate_check(NULL, 0, NULL, NULL, E, sizeof E) == -1);
  CHECK_CONTAINS(E, "expected a JSON object at top level");
}

static void test_size(void) {
  pw_gate_limits lim = {10, 0, 0};
  const char *ten = "{\"a\":\"12\"}", *eleven = "{\"a\":\"123\"}";
  size_t big = (size_t)1 << 20, j;
  char *s;
  CHECK(strlen(ten) == 10);
  CHECK(gate_n(ten, 10, &lim) == 0);
  CHECK(gate_n(eleven, 11, &lim) == -1);
  CHECK_STR(E, "input is 11 bytes, over the limit of 10");
  /* 0 means 1 MiB */
  s = malloc(big + 1);
  if (!s) abort();
  s[0] = '{'; s[1] = '"'; s[2] = 'a'; s[3] = '"'; s[4] = ':'; s[5] = '"';
  for (j = 6; j < big - 2; j++) s[j] = 'x';
  s[big - 2] = '"'; s[big - 1] = '}';
  CHECK(gate_n(s, big, NULL) == 0);
  s[big] = ' ';
  CHECK(gate_n(s, big + 1, NULL) == -1);
  CHECK_STR(E, "input is 1048577 bytes, over the limit of 1048576");
  free(s);
}

static void test_nul(void) {
  static const char two[] = "{\"a\":1}\0{\"b\":2}";
  static const char in_str[] = "{\"a\":\"x\0y\"}";
  static const char between[] = "{\"a\":1,\0\"b\":2}";
  static const char after_colon[] = "{\"a\":\0}";
  static const char in_key[] = "{\"a\":{\"b\0\":1}}";
  CHECK(gate_n(two, sizeof two - 1, NULL) == -1);
  CHECK_STR(E, "$: NUL byte after the object (byte 7)");
  CHECK(gate_n(in_str, sizeof in_str - 1, NULL) == -1);
  CHECK_STR(E, "a: NUL byte in string (byte 7)");
  CHECK(gate_n(between, sizeof between - 1, NULL) == -1);
  CHECK_STR(E, "$: NUL byte (byte 7)");
  CHECK(gate_n(after_colon, sizeof after_colon - 1, NULL) == -1);
  CHECK_STR(E, "a: NUL byte (byte 5)");
  CHECK(gate_n(in_key, sizeof in_key - 1, NULL) == -1);
  CHECK_STR(E, "a: NUL byte in string (byte 8)");
  /* the same text without the NUL passes: the length, not the NUL, ends it */
  CHECK(gate_n(two, 7, NULL) == 0);
}

/* ---- strings --------------------------------------------------------------- */

static void test_utf8(void) {
  const char *doc = "{\"metastases\":[{\"site\":\"liver\"},{\"site\":\"lu\xffng\"}]}";
  CHECK(gate(doc) == -1);
  CHECK_STR(E, msg("metastases[1].site", "invalid UTF-8: bad byte 0xFF", nth(doc, "\xff", 0)));
  REJECT("{\"s\":\"\xc0\x80\"}", "s: invalid UTF-8: overlong encoding", "(byte 6)");
  REJECT("{\"s\":\"\xc1\xbf\"}", "s: invalid UTF-8: overlong encoding", "(byte 6)");
  REJECT("{\"s\":\"\xe0\x80\xaf\"}", "s: invalid UTF-8: overlong encoding", "(byte 6)");
  REJECT("{\"s\":\"\xe0\x9f\xbf\"}", "s: invalid UTF-8: overlong encoding", "(byte 6)");
  REJECT("{\"s\":\"\xf0\x80\x80\xaf\"}", "s: invalid UTF-8: overlong encoding", "(byte 6)");
  REJECT("{\"s\":\"\xf0\x8f\xbf\xbf\"}", "s: invalid UTF-8: overlong encoding", "(byte 6)");
  REJECT("{\"s\":\"\xed\xa0\x80\"}", "s: invalid UTF-8: encoded surrogate", "(byte 6)");
  REJECT("{\"s\":\"\xed\xbf\xbf\"}", "s: invalid UTF-8: encoded surrogate", "(byte 6)");
  REJECT("{\"s\":\"\xf4\x90\x80\x80\"}", "s: invalid UTF-8: code point above U+10FFFF", "(byte 6)");
  REJECT("{\"s\":\"\xf5\x80\x80\x80\"}", "s: invalid UTF-8: code point above U+10FFFF", "(byte 6)");
  REJECT("{\"s\":\"\xf8\x88\x80\x80\x80\"}", "s: invalid UTF-8: bad byte 0xF8", "(byte 6)");
  REJECT("{\"s\":\"\x80\"}", "s: invalid UTF-8: stray continuation byte", "(byte 6)");
  REJECT("{\"s\":\"\xc3\"}", "s: invalid UTF-8: truncated sequence", "(byte 6)");
  REJECT("{\"s\":\"\xe2\x82\"}", "s: invalid UTF-8: truncated sequence", "(byte 6)");
  REJECT("{\"s\":\"\xf0\x9f\x98\"}", "s: invalid UTF-8: truncated sequence", "(byte 6)");
  REJECT("{\"s\":\"\xe2\x82" "A\"}", "s: invalid UTF-8: truncated sequence", "(byte 6)");
  {
    const char cut[] = "{\"s\":\"\xe2\x82";   /* input ends inside the sequence */
    CHECK(gate_n(cut, sizeof cut - 1, NULL) == -1);
    CHECK_CONTAINS(E, "s: invalid UTF-8: truncated sequence (byte 6)");
  }
  /* in a key: the path is the object holding it */
  REJECT("{\"m\":{\"k\xff\":1}}", "m: invalid UTF-8", "(byte 8)");
  /* outside strings: not a token */
  REJECT("{\"a\":1,\xc3\xa9:2}", "$: expected a string key, found byte 0xC3", "(byte 7)");
}

static void test_control_chars(void) {
  REJECT("{\"s\":\"a\nb\"}", "s: raw control character 0x0A in string", "(byte 7)");
  REJECT("{\"s\":\"\t\"}", "s: raw control character 0x09 in string", "(byte 6)");
  REJECT("{\"s\":\"\x1f\"}", "s: raw control character 0x1F in string", "(byte 6)");
  REJECT("{\"s\":\"abc", "s: unterminated string", "(byte 9)");
  REJECT("{\"s\":\"abc\\", "s: unterminated string", "(byte 10)");
}

static void test_escapes(void) {
  REJECT("{\"s\":\"\\x41\"}", "s: invalid escape '\\x'", "(byte 6)");
  REJECT("{\"s\":\"\\'\"}", "s: invalid escape '\\''", "(byte 6)");
  REJECT("{\"s\":\"\\a\"}", "s: invalid escape '\\a'", "(byte 6)");
  REJECT("{\"s\":\"\\U0041\"}", "s: invalid escape '\\U'", "(byte 6)");
  REJECT("{\"s\":\"\\u12\"}", "s: invalid \\u escape", "(byte 6)");
  REJECT("{\"s\":\"\\u12G4\"}", "s: invalid \\u escape", "(byte 6)");
  REJECT("{\"s\":\"\\u123", "s: invalid \\u escape", "(byte 6)");
  REJECT("{\"s\":\"\\u0000\"}", "s: \\u0000 is not allowed", "(byte 6)");
  REJECT("{\"s\":\"ab\\u0000\"}", "s: \\u0000 is not allowed", "(byte 8)");
  REJECT("{\"s\":\"\\uD800\"}", "s: unpaired high surrogate \\uD800", "(byte 6)");
  REJECT("{\"s\":\"\\ud83dx\"}", "s: unpaired high surrogate \\uD83D", "(byte 6)");
  REJECT("{\"s\":\"\\ud83d\\u0041\"}", "s: unpaired high surrogate \\uD83D", "(byte 6)");
  REJECT("{\"s\":\"\\ud83d\\ud83d\"}", "s: unpaired high surrogate \\uD83D", "(byte 6)");
  REJECT("{\"s\":\"\\ud83d\\n\"}", "s: unpaired high surrogate", "(byte 6)");
  REJECT("{\"s\":\"\\uDC00\"}", "s: unpaired low surrogate \\uDC00", "(byte 6)");
  REJECT("{\"s\":\"\\ude00\\ud83d\"}", "s: unpaired low surrogate \\uDE00", "(byte 6)");
  REJECT("{\"s\":\"\\ud83d", "s: unpaired high surrogate", "(byte 6)");
}

/* ---- numbers and literals ------------------------------------------------------ */

static void test_numbers(void) {
  REJECT("{\"x\":NaN}", "x: NaN is not JSON", "(byte 5)");
  REJECT("{\"x\":Infinity}", "x: Infinity is not JSON", "(byte 5)");
  REJECT("{\"x\":-Infinity}", "x: Infinity is not JSON", "(byte 5)");
  REJECT("{\"x\":0x10}", "x: invalid number", "(byte 5)");
  REJECT("{\"x\":+1}", "x: invalid number: leading '+'", "(byte 5)");
  REJECT("{\"x\":01}", "x: invalid number: leading zero", "(byte 5)");
  REJECT("{\"x\":-01}", "x: invalid number: leading zero", "(byte 5)");
  REJECT("{\"x\":00}", "x: invalid number: leading zero", "(byte 5)");
  REJECT("{\"x\":5.}", "x: invalid number: digit expected after '.'", "(byte 5)");
  REJECT("{\"x\":.5}", "x: invalid number: leading '.'", "(byte 5)");
  REJECT("{\"x\":-.5}", "x: invalid number: digit expected after '-'", "(byte 5)");
  REJECT("{\"x\":-}", "x: invalid number: digit expected after '-'", "(byte 5)");
  REJECT("{\"x\":1e}", "x: invalid number: exponent needs digits", "(byte 5)");
  REJECT("{\"x\":1e+}", "x: invalid number: exponent needs digits", "(byte 5)");
  REJECT("{\"x\":1.5e-}", "x: invalid number: exponent needs digits", "(byte 5)");
  REJECT("{\"x\":1.e5}", "x: invalid number: digit expected after '.'", "(byte 5)");
  REJECT("{\"x\":1.5.3}", "x: invalid number", "(byte 5)");
  REJECT("{\"x\":1e5e5}", "x: invalid number", "(byte 5)");
  REJECT("{\"x\":12abc}", "x: invalid number", "(byte 5)");
  REJECT("{\"x\":1-2}", "x: invalid number", "(byte 5)");
  REJECT("{\"x\":[1,2,3,0x10]}", "x[3]: invalid number", "(byte 12)");
}

static void test_exact_range(void) {
  CHECK(gate("{\"x\":9007199254740992}") == 0);
  CHECK(gate("{\"x\":-9007199254740992}") == 0);
  CHECK(gate("{\"x\":9007199254740991}") == 0);
  CHECK(gate("{\"x\":999999999999999}") == 0);
  CHECK(gate("{\"x\":1000000000000000}") == 0);
  REJECT("{\"x\":9007199254740993}", "x: integer literal beyond exact range", "(byte 5)");
  REJECT("{\"x\":-9007199254740993}", "x: integer literal beyond exact range", "(byte 5)");
  REJECT("{\"x\":9007199254740999}", "x: integer literal beyond exact range", "(byte 5)");
  REJECT("{\"x\":9100000000000000}", "x: integer literal beyond exact range", "(byte 5)");
  REJECT("{\"x\":10000000000000000}", "x: integer literal beyond exact range", "(byte 5)");
  REJECT("{\"id\":12345678901234567890}", "id: integer literal beyond exact range", "(byte 6)");
  /* only integer literals: with a fraction or an exponent cjson's rounding is expected */
  CHECK(gate("{\"x\":9007199254740993.0}") == 0);
  CHECK(gate("{\"x\":9007199254740993e0}") == 0);
  CHECK(gate("{\"x\":1e300}") == 0);
}

static void test_literals(void) {
  REJECT("{\"x\":tru}", "x: invalid literal", "(byte 5)");
  REJECT("{\"x\":truex}", "x: invalid literal", "(byte 5)");
  REJECT("{\"x\":nul", "x: invalid literal", "(byte 5)");
  REJECT("{\"x\":nulL}", "x: invalid literal", "(byte 5)");
  REJECT("{\"x\":fals}", "x: invalid literal", "(byte 5)");
  REJECT("{\"x\":True}", "x: expected a value, found 'T'", "(byte 5)");
  REJECT("{\"x\":None}", "x: expected a value, found 'N'", "(byte 5)");
  REJECT("{\"x\":undefined}", "x: expected a value, found 'u'", "(byte 5)");
}

/* ---- grammar ------------------------------------------------------------------ */

static void test_grammar(void) {
  REJECT("{\"a\":1,}", "$: trailing comma", "(byte 7)");
  REJECT("{\"a\":[1,2,]}", "a: trailing comma", "(byte 10)");
  REJECT("{\"a\":[,]}", "a[0]: missing value", "(byte 6)");
  REJECT("{\"a\":[1,,2]}", "a[1]: missing value", "(byte 8)");
  REJECT("{,}", "$: expected a string key, found ','", "(byte 1)");
  REJECT("{\"a\":}", "a: missing value", "(byte 5)");
  REJECT("{\"a\" 1}", "a: expected ':' after key, found '1'", "(byte 5)");
  REJECT("{\"a\"}", "a: expected ':' after key, found '}'", "(byte 4)");
  REJECT("{\"a\":1 \"b\":2}", "$: expected ',' or '}', found '\"'", "(byte 7)");
  REJECT("{\"a\":[1 2]}", "a: expected ',' or ']', found '2'", "(byte 8)");
  REJECT("{\"a\":[1}", "a: expected ',' or ']', found '}'", "(byte 7)");
  REJECT("{\"a\":{\"b\":1]}", "a: expected ',' or '}', found ']'", "(byte 11)");
  REJECT("{a:1}", "$: expected a string key, found 'a'", "(byte 1)");
  REJECT("{'a':1}", "$: expected a string key, found '''", "(byte 1)");
  REJECT("{\"a\":'x'}", "a: strings need double quotes", "(byte 5)");
  REJECT("{\"a\":1 // note\n}", "$: expected ',' or '}', found '/'", "(byte 7)");
  REJECT("{/* c */\"a\":1}", "$: expected a string key, found '/'", "(byte 1)");
  REJECT("{\"a\":/* c */1}", "a: comments are not JSON", "(byte 5)");
  REJECT("{\"a\":1,\"b\"::2}", "b: missing value", "(byte 11)");
  REJECT("{\"a\":\x01}", "a: expected a value, found byte 0x01", "(byte 5)");
  REJECT("{\"a\"\f:1}", "a: expected ':' after key, found byte 0x0C", "(byte 4)");
  REJECT("{\"a\":[1]]}", "$: expected ',' or '}', found ']'", "(byte 8)");
  REJECT("{\"a\":1}}", "$: trailing characters after the object", "(byte 7)");
}

/* ---- limits ----------------------------------------------------------------- */

/* {"a":{"a":...{}...}} with `levels` objects in all. */
static char *nest_objects(int levels) {
  sb b = {0, 0, 0};
  int k;
  sb_add(&b, "{");
  for (k = 1; k < levels; k++) sb_add(&b, "\"a\":{");
  for (k = 0; k < levels; k++) sb_add(&b, "}");
  return b.p;
}

/* {"a":[[...[]...]]} with `levels` containers in all. */
static char *nest_arrays(int levels) {
  sb b = {0, 0, 0};
  int k;
  sb_add(&b, "{\"a\":");
  for (k = 1; k < levels; k++) sb_add(&b, "[");
  for (k = 1; k < levels; k++) sb_add(&b, "]");
  sb_add(&b, "}");
  return b.p;
}

static void test_depth(void) {
  char *s;
  CHECK(gate_lim("{\"a\":{\"b\":{}}}", 0, 3, 0) == 0);
  CHECK(gate_lim("{\"a\":{\"b\":{\"c\":{}}}}", 0, 3, 0) == -1);
  CHECK_STR(E, "a.b.c: nesting deeper than 3 (byte 15)");
  CHECK(gate_lim("{\"a\":[[]]}", 0, 3, 0) == 0);
  CHECK(gate_lim("{\"a\":[[[]]]}", 0, 3, 0) == -1);
  CHECK_STR(E, "a[0][0]: nesting deeper than 3 (byte 7)");
  CHECK(gate_lim("{\"a\":[{\"b\":1}]}", 0, 3, 0) == 0);
  CHECK(gate_lim("{\"a\":[{\"b\":[]}]}", 0, 3, 0) == -1);
  CHECK_CONTAINS(E, "a[0].b: nesting deeper than 3");
  CHECK(gate_lim("{}", 0, 1, 0) == 0);
  CHECK(gate_lim("{\"a\":[]}", 0, 1, 0) == -1);
  CHECK_CONTAINS(E, "a: nesting deeper than 1");
  /* default 32 */
  s = nest_objects(32); CHECK(gate(s) == 0); free(s);
  s = nest_objects(33); CHECK(gate(s) == -1); free(s);
  CHECK_CONTAINS(E, "nesting deeper than 32");
  CHECK_CONTAINS(E, "a.a.a...a.a.a.a.a: nesting deeper than 32 (byte ");
  s = nest_arrays(32); CHECK(gate(s) == 0); free(s);
  s = nest_arrays(33); CHECK(gate(s) == -1); free(s);
  CHECK_CONTAINS(E, "nesting deeper than 32");
  /* a larger limit than the stack frames (heap frames) */
  s = nest_arrays(1000); CHECK(gate_lim(s, 0, 1000, 0) == 0); free(s);
  s = nest_arrays(1001); CHECK(gate_lim(s, 0, 1000, 0) == -1); free(s);
  CHECK_STR(E, "a[0][0]...[0][0][0][0][0]: nesting deeper than 1000 (byte 1004)");
  /* unclosed nesting far past the limit stops at the limit */
  CHECK(gate_lim("{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", 0, 100000, 0) == -1);
  CHECK_CONTAINS(E, "unexpected end of input");
}

/* An object with n members "k0".."k(n-1)" (or an array of n items). */
static char *members(int n, int array) {
  sb b = {0, 0, 0};
  char item[64];
  int k;
  sb_add(&b, array ? "{\"a\":[" : "{");
  for (k = 0; k < n; k++) {
    if (array) snprintf(item, sizeof item, "%s%d", k ? "," : "", k);
    else snprintf(item, sizeof item, "%s\"k%d\":%d", k ? "," : "", k, k);
    sb_add(&b, item);
  }
  sb_add(&b, array ? "]}" : "}");
  return b.p;
}

static void test_members(void) {
  char *s;
  CHECK(gate_lim("{\"a\":1,\"b\":2,\"c\":3}", 0, 0, 3) == 0);
  CHECK(gate_lim("{\"a\":1,\"b\":2,\"c\":3,\"d\":4}", 0, 0, 3) == -1);
  CHECK_STR(E, "$: more than 3 members (byte 19)");
  CHECK(gate_lim("{\"x\":{\"a\":1,\"b\":2,\"c\":3,\"d\":4}}", 0, 0, 4) == 0);
  CHECK(gate_lim("{\"x\":{\"a\":1,\"b\":2,\"c\":3,\"d\":4}}", 0, 0, 3) == -1);
  CHECK_STR(E, "x: more than 3 members (byte 24)");
  CHECK(gate_lim("{\"a\":[1,2,3]}", 0, 0, 3) == 0);
  CHECK(gate_lim("{\"a\":[1,2,3,4]}", 0, 0, 3) == -1);
  CHECK_STR(E, "a: more than 3 items (byte 12)");
  /* default 1024 */
  s = members(1024, 0); CHECK(gate(s) == 0); free(s);
  s = members(1025, 0); CHECK(gate(s) == -1); free(s);
  CHECK_CONTAINS(E, "$: more than 1024 members");
  s = members(1024, 1); CHECK(gate(s) == 0); free(s);
  s = members(1025, 1); CHECK(gate(s) == -1); free(s);
  CHECK_CONTAINS(E, "a: more than 1024 items");
}

/* ---- duplicate keys ------------------------------------------------------------- */

static void test_duplicates(void) {
  const char *d1 = "{\"patient\":{\"age\":64},\"molecular\":{\"kras\":\"G12C\",\"braf\":null,"
                   "\"kras\":\"wt\"}}";
  const char *d2 = "{\"molecular\":{\"kras\":1,\"\\u006bras\":2}}";
  const char *d3 = "{\"a\":1,\"b\":2,\"a\":3,\"b\":4,\"a\":5}";
  const char *d4 = "{\"l\":[{\"x\":1},{\"y\":1,\"y\":2}]}";
  char *s;
  CHECK(gate(d1) == -1);
  CHECK_STR(E, msg("molecular", "duplicate key 'kras'", nth(d1, "\"kras\"", 1)));
  CHECK(gate(d2) == -1);
  CHECK_STR(E, msg("molecular", "duplicate key '\\u006bras'", nth(d2, "\"\\u006b", 0)));
  CHECK(gate(d3) == -1);      /* the second occurrence that comes first */
  CHECK_STR(E, msg("$", "duplicate key 'a'", nth(d3, "\"a\"", 1)));
  CHECK(gate(d4) == -1);
  CHECK_STR(E, msg("l[1]", "duplicate key 'y'", nth(d4, "\"y\"", 1)));
  /* escapes decode before comparing */
  REJECT("{\"a/b\":1,\"a\\/b\":2}", "$: duplicate key 'a\\/b'", "(byte 9)");
  REJECT("{\"\\u00e9\":1,\"\xc3\xa9\":2}", "$: duplicate key '\xc3\xa9'", "(byte 12)");
  REJECT("{\"\xf0\x9f\x98\x80\":1,\"\\ud83d\\ude00\":2}", "duplicate key '\\ud83d\\ude00'", "(byte 10)");
  REJECT("{\"\\n\":1,\"\\u000a\":2}", "duplicate key '\\u000a'", "(byte 8)");
  REJECT("{\"\\u004B\":1,\"\\u004b\":2}", "duplicate key '\\u004b'", "(byte 12)");
  REJECT("{\"\":1,\"\":2}", "$: duplicate key '\"\"'", "(byte 6)");
  REJECT("{\"id\":1,\"\\u0069d\":2}", "$: duplicate key '\\u0069d'", "(byte 8)");
  /* long keys: escaping any one character still makes a duplicate */
  {
    const char *key = "molecular_profile_kras_g12c";   /* 27 bytes: 3 words + 3 */
    size_t len = strlen(key), at, cut;
    int all = 1, none = 1;
    for (at = 0; at < len; at++) {
      char doc[160], esc[64];
      snprintf(esc, sizeof esc, "%.*s\\u%04x%s", (int)at, key, (unsigned char)key[at], key + at + 1);
      snprintf(doc, sizeof doc, "{\"%s\":1,\"%s\":2}", key, esc);
      if (gate(doc) != -1 || !strstr(E, "duplicate key")) all = 0;
      snprintf(doc, sizeof doc, "{\"%s\":1,\"%s\":2}", esc, key);
      if (gate(doc) != -1 || !strstr(E, "duplicate key")) all = 0;
    }
    CHECK(all);
    for (cut = 1; cut <= len; cut++) {   /* prefixes of every length differ */
      char doc[160];
      snprintf(doc, sizeof doc, "{\"%s\":1,\"%.*s\":2}", key, (int)(len - cut), key);
      if (gate(doc) != 0) none = 0;
    }
    CHECK(none);
  }
  /* not duplicates */
  CHECK(gate("{\"\\u00e9\":1,\"e\":2,\"\\u00e8\":3}") == 0);
  CHECK(gate("{\"a\":1,\"a \":2,\"A\":3,\"\\u0061b\":4}") == 0);
  /* many keys: heap sort and the key stack past its stack buffer */
  s = members(1000, 0); CHECK(gate(s) == 0); free(s);
  {
    sb b = {0, 0, 0};
    char item[64];
    int k;
    sb_add(&b, "{\"big\":{");
    for (k = 0; k < 1000; k++) {
      snprintf(item, sizeof item, "%s\"k%d\":%d", k ? "," : "", k == 999 ? 500 : k, k);
      sb_add(&b, item);
    }
    sb_add(&b, "}}");
    CHECK(gate(b.p) == -1);
    CHECK_STR(E, msg("big", "duplicate key 'k500'", nth(b.p, "\"k500\"", 1)));
    free(b.p);
  }
  /* keys of a closed object do not leak into its parent */
  {
    sb b = {0, 0, 0};
    char item[64];
    int k;
    sb_add(&b, "{\"inner\":{");
    for (k = 0; k < 200; k++) {
      snprintf(item, sizeof item, "%s\"k%d\":%d", k ? "," : "", k, k);
      sb_add(&b, item);
    }
    sb_add(&b, "}");
    for (k = 0; k < 200; k++) {
      snprintf(item, sizeof item, ",\"k%d\":{\"k%d\":[{\"k%d\":0}]}", k, k, k);
      sb_add(&b, item);
    }
    sb_add(&b, "}");
    CHECK(gate(b.p) == 0);
    free(b.p);
  }
}

/* ---- id span ---------------------------------------------------------------- */

static int id_of(const char *s, pw_gate_info *info) {
  info->has_id = 99; info->id_off = info->id_len = 99;
  return pw_gate_check(s, strlen(s), NULL, info, E, sizeof E);
}

#define CHECK_ID(json, text) do { pw_gate_info in_; const char *j_ = (json); \
  CHECK(id_of(j_, &in_) == 0); CHECK(in_.has_id == 1); \
  CHECK(in_.id_off == nth(j_, text, 0)); CHECK(in_.id_len == strlen(text)); } while (0)

static void test_id(void) {
  pw_gate_info info;
  CHECK_ID("{\"jsonrpc\":\"2.0\",\"id\":42,\"method\":\"m\"}", "42");
  CHECK_ID("{\"id\" : -1.5e3 }", "-1.5e3");
  CHECK_ID("{\"id\":9007199254740992}", "9007199254740992");
  CHECK_ID("{\"method\":\"m\",\"id\":\"req-\\u00e9\\\"7\"}", "\"req-\\u00e9\\\"7\"");
  CHECK_ID("{\"id\":{\"a\":[1,{\"b\":2}],\"id\":3},\"x\":1}", "{\"a\":[1,{\"b\":2}],\"id\":3}");
  CHECK_ID("{\"id\":[1,2]}", "[1,2]");
  CHECK_ID("{\"x\":{\"y\":1},\"id\":null}", "null");
  CHECK_ID("{\"id\":true}", "true");
  CHECK_ID("{\"\\u0069d\":7}", "7");
  /* absent, or only nested */
  CHECK(id_of("{\"method\":\"m\"}", &info) == 0);
  CHECK(info.has_id == 0);
  CHECK(id_of("{\"params\":{\"id\":5},\"ids\":[1],\"Id\":2,\"i\":3}", &info) == 0);
  CHECK(info.has_id == 0);
  /* on failure no id is reported (JSON-RPC wants null after a parse error) */
  CHECK(id_of("{\"id\":5,\"x\":NaN}", &info) == -1);
  CHECK(info.has_id == 0);
}

/* ---- messages ---------------------------------------------------------------- */

static void test_messages(void) {
  const char *doc = "{\"metastases\":[{\"site\":\"liver\"},{\"site\":\"lu\xffng\"}]}";
  char small[16];
  char tiny[1];
  char utf[24];
  size_t j;
  /* truncation: always NUL-terminated, never overruns */
  memset(small, 'Z', sizeof small);
  CHECK(pw_gate_check(doc, strlen(doc), NULL, NULL, small, sizeof small) == -1);
  CHECK(strlen(small) == sizeof small - 1);
  CHECK_STR(small, "metastases[1].s");
  tiny[0] = 'Z';
  CHECK(pw_gate_check(doc, strlen(doc), NULL, NULL, tiny, sizeof tiny) == -1);
  CHECK(tiny[0] == '\0');
  CHECK(pw_gate_check(doc, strlen(doc), NULL, NULL, NULL, 100) == -1);
  CHECK(pw_gate_check(doc, strlen(doc), NULL, NULL, small, 0) == -1);
  CHECK(pw_gate_check("[]", 2, NULL, NULL, NULL, 0) == -1);
  CHECK(pw_gate_check("{\"a\":1,\"a\":1}", 13, NULL, NULL, NULL, 0) == -1);
  {
    pw_gate_limits lim = {4, 0, 0};
    memset(small, 'Z', sizeof small);
    CHECK(pw_gate_check("{ } ", 5, &lim, NULL, small, sizeof small) == -1);
    CHECK_STR(small, "input is 5 byte");
  }
  /* truncation never splits a UTF-8 sequence from a key */
  for (j = 1; j <= sizeof utf; j++) {
    const char *dd = "{\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\":{\"x\":1,\"x\":2}}";
    size_t len, k;
    int ok = 1;
    CHECK(pw_gate_check(dd, strlen(dd), NULL, NULL, utf, j) == -1);
    len = strlen(utf);
    CHECK(len < j);
    for (k = 0; k < len; k++)   /* every lead byte here starts a 2-byte pair */
      if ((unsigned char)utf[k] == 0xC3 && (k + 1 >= len || (unsigned char)utf[k + 1] != 0xA9))
        ok = 0;
    CHECK(ok);
  }
  /* a message too long for err keeps its reason: the path loses its head */
  {
    const char *deep = "{\"patient_record\":{\"molecular_profile\":{\"variants\":[{\"gene\":\"KRAS\","
                       "\"protein_change\":\"G12C\",\"allele_fraction\":01}]}}}";
    char mid[64];
    CHECK(pw_gate_check(deep, strlen(deep), NULL, NULL, mid, sizeof mid) == -1);
    CHECK(strlen(mid) == sizeof mid - 1);
    CHECK(nth(deep, ":01", 0) + 1 == 109);
    CHECK_STR(mid, "...[0].allele_fraction: invalid number: leading zero (byte 109)");
    CHECK(gate(deep) == -1);
    CHECK_STR(E, "patient_record.molecular_profile.variants[0].allele_fraction: "
                 "invalid number: leading zero (byte 109)");
  }
  /* long keys are cut in messages */
  REJECT("{\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\":[1,]}",
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...: trailing comma", "(byte 57)");
  /* a full path through objects and arrays */
  REJECT("{\"a\":[{\"b\":[0,[1,{\"c\":x}]]}]}", "a[0].b[1][1].c: expected a value, found 'x'",
         "(byte 22)");
}

/* ---- robustness: mutated inputs never crash and always explain ------------------ */

static void test_mutations(void) {
  const char *seed = "{\"id\":\"r1\",\"params\":{\"molecular\":{\"kras\":\"G12C\",\"msi\":\"MSS\"},"
                     "\"metastases\":[{\"site\":\"liver\",\"n\":3},{\"site\":\"lung\"}],"
                     "\"x\":[1.5e3,-0,true,false,null,\"\\u00e9\\ud83d\\ude00\"]}}";
  static const unsigned char bytes[] = "{}[]\":,\\u0e-+.1 \x00\x80\xc3\xed\xf4\xffNaItfn";
  char buf[256];
  uint32_t r = 12345u;
  size_t n0 = strlen(seed), n;
  int k, m, bad = 0;
  CHECK(gate(seed) == 0);
  for (k = 0; k < 20000; k++) {
    memcpy(buf, seed, n0);
    n = n0;
    for (m = 0; m < 1 + k % 4; m++) {
      size_t at;
      r = r * 1103515245u + 12345u;
      at = (r >> 8) % n;
      r = r * 1103515245u + 12345u;
      if ((r >> 20) % 5 == 0 && n > 1) {               /* delete */
        memmove(buf + at, buf + at + 1, n - at - 1);
        n--;
      } else if ((r >> 20) % 5 == 1 && n < sizeof buf) { /* insert */
        memmove(buf + at + 1, buf + at, n - at);
        buf[at] = (char)bytes[(r >> 12) % (sizeof bytes - 1)];
        n++;
      } else {                                          /* replace */
        buf[at] = (char)bytes[(r >> 12) % (sizeof bytes - 1)];
      }
    }
    E[0] = 'Z';
    if (gate_n(buf, n, NULL) != 0 && (strlen(E) == 0 || !strstr(E, "(byte ")))
      bad++;
  }
  CHECK(bad == 0);
}

PW_TEST_MAIN(
  test_valid();
  test_top_level();
  test_size();
  test_nul();
  test_utf8();
  test_control_chars();
  test_escapes();
  test_numbers();
  test_exact_range();
  test_literals();
  test_grammar();
  test_depth();
  test_members();
  test_duplicates();
  test_id();
  test_messages();
  test_mutations()
)
