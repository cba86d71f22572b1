/*
** fuzz_eval.c: libFuzzer target for the whole evaluation path: gate,
** lua-cjson, facts validation, the default protocol in its sandbox, the
** safety kernel and the JSON encoder. Not part of the default build; see
** tests/fuzz/README.md.
**
** The first input byte picks the flags (bit 0: --trace); the rest is the
** facts text. Besides "no crash, no leak, no undefined behaviour" under the
** sanitizers, it aborts when a property fails:
**  - the status is PW_OK or PW_EINPUT: the default protocol neither raises
**    nor runs out of its budget on any facts that pass validation;
**  - a PW_EINPUT message is non-empty and names a path ("path: ...");
**  - an accepted result is well-formed JSON by the gate's rules (an object,
**    no duplicate key, valid UTF-8);
**  - a second engine (another Lua state, so another string-hash seed and
**    another table order) gives the same status and the same bytes, or the
**    same error message: nothing depends on hash order or on what the
**    first engine evaluated before;
**  - every blocked item names its rule, a reason and citations, and every
**    recommendation the protocol made carries citations.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "engine.h"
#include "gate.h"
#include "result.h"

static pw_engine *fuzz_engine, *fuzz_twin;

static pw_engine *fuzz_new(void) {
  pw_error err;
  pw_engine *e = pw_engine_new(NULL, &err);
  if (!e || pw_engine_load(e, PW_DEFAULT_PROTOCOL, &err) != PW_OK) abort();
  return e;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fuzz_engine = fuzz_new();
  fuzz_twin = fuzz_new();
  return 0;
}

static void fuzz_check_result(const pw_result *r) {
  for (int i = 0; i < r->items.n; i++) {
    const pw_item *it = &r->items.v[i];
    /* a block cites the guideline, or names its source beyond the guideline */
    if (it->blocked && (!it->rule || !it->reason || !it->reason[0] ||
                        (it->rule_cites.n == 0) == (it->rule_beyond == NULL)))
      abort();
    if (!it->blocked && it->source == PW_SRC_PROTOCOL && it->cites.n == 0) abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  pw_buf a = {0}, b = {0};
  pw_error err, err2;
  unsigned flags;
  const char *s;
  size_t n;
  pw_status st;
  if (size < 1) return 0;
  flags = (data[0] & 1u) ? PW_EVAL_TRACE : 0u;
  s = (const char *)data + 1;
  n = size - 1;
  st = pw_engine_eval(fuzz_engine, s, n, flags, &a, &err);
  if (st == PW_EINPUT) {
    if (!err.msg[0] || !strstr(err.msg, ": ")) abort();
  } else if (st == PW_OK) {
    fuzz_check_result(pw_engine_result(fuzz_engine));
    if (pw_gate_check(a.data, a.len, NULL, NULL, NULL, 0) != 0) abort();
  } else {
    abort();
  }
  if (pw_engine_eval(fuzz_twin, s, n, flags, &b, &err2) != st) abort();
  if (st == PW_OK && (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)) abort();
  if (st != PW_OK && strcmp(err.msg, err2.msg) != 0) abort();
  pw_buf_free(&a);
  pw_buf_free(&b);
  return 0;
}
