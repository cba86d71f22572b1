/*
** fuzz_gate.c: libFuzzer target for the JSON gate (engine/base/gate.c).
** Not part of the default build; see tests/fuzz/README.md.
**
** The first input byte picks small limits (so depth and member limits are
** reached often); the rest is the text. Besides "no crash, no leak, no
** undefined behaviour" under the sanitizers, it checks properties that
** must hold for every input:
**  - the result and message are the same on a second call (no hidden state);
**  - a failure always leaves a NUL-terminated message naming a byte offset
**    or the size limit;
**  - a pass means: no NUL byte, the text trimmed of white space starts with
**    '{' and ends with '}', and any id span lies inside the text, starts on
**    a non-space byte and, wrapped as {"v":<id>}, passes the gate again.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "gate.h"

static int fuzz_ws(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void fuzz_check_pass(const char *s, size_t n, const pw_gate_info *info) {
  size_t a = 0, b = n;
  if (memchr(s, 0, n)) abort();
  while (a < b && fuzz_ws(s[a])) a++;
  while (b > a && fuzz_ws(s[b - 1])) b--;
  if (b - a < 2 || s[a] != '{' || s[b - 1] != '}') abort();
  if (info->has_id) {
    char *w;
    size_t len = info->id_len;
    if (info->id_off > n || len == 0 || len > n - info->id_off) abort();
    if (fuzz_ws(s[info->id_off]) || fuzz_ws(s[info->id_off + len - 1])) abort();
    w = malloc(len + 6);
    if (!w) return;
    memcpy(w, "{\"v\":", 5);
    memcpy(w + 5, s + info->id_off, len);
    w[len + 5] = '}';
    if (pw_gate_check(w, len + 6, NULL, NULL, NULL, 0) != 0) abort();
    free(w);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  pw_gate_limits lim;
  pw_gate_info i1, i2;
  char e1[128], e2[128];
  const char *s;
  size_t n;
  int r1, r2;
  if (size < 1) return 0;
  lim.max_bytes = 0;
  lim.max_depth = 1 + (data[0] & 7);          /* 1..8 */
  lim.max_members = 1 + ((data[0] >> 3) & 15); /* 1..16 */
  s = (const char *)data + 1;
  n = size - 1;
  memset(e1, 'Z', sizeof e1);
  r1 = pw_gate_check(s, n, &lim, &i1, e1, sizeof e1);
  r2 = pw_gate_check(s, n, &lim, &i2, e2, sizeof e2);
  if (r1 != r2 || strcmp(e1, e2) != 0) abort();
  if (r1 != 0 && r1 != -1) abort();
  if (memchr(e1, 0, sizeof e1) == NULL) abort();
  if (r1 == -1) {
    if (i1.has_id) abort();
    if (!strstr(e1, "(byte ") && !strstr(e1, "input is ")) abort();
    return 0;
  }
  if (e1[0] != '\0') abort();
  if (i1.has_id != i2.has_id || i1.id_off != i2.id_off || i1.id_len != i2.id_len) abort();
  fuzz_check_pass(s, n, &i1);
  return 0;
}
