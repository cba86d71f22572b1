/*
** fuzz_output.c: libFuzzer target for protocol output, the builder API
** (`out.recommend`, `out.consider`, `out.missing`, `out.warn`,
** `out.followup`, `out.outcome`, `out.note`, `out.pathway`, unknown
** names) and what `applies` and `evaluate` return. The input bytes are a
** program: each step picks a call and its arguments (strings of the raw
** input bytes, so invalid UTF-8 and NULs too; known and unknown ids; numbers
** including NaN and huge ones; wrong types; nested tables; long texts;
** loops of thousands of calls). The harness writes it out as a Lua
** protocol, loads it and evaluates the index case. It aborts when a
** property fails:
**  - the generated protocol loads (a bug in this generator otherwise);
**  - the status is ok, protocol, budget or memory, never internal, and an
**    error has a message;
**  - an accepted result is well-formed JSON by the gate's rules (an object,
**    no duplicate key, valid UTF-8), whatever bytes the protocol used, and
**    within the gate's default limits (the bounds on output);
**  - evaluating again on the same engine gives the same status and bytes
**    (no state carried over from the first run, nothing hash-ordered).
** Not part of the default build; see tests/fuzz/README.md.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "buf.h"
#include "engine.h"
#include "gate.h"

static pw_engine *fo_engine;
static pw_buf fo_facts;

typedef struct fo_in {
  const uint8_t *p;
  size_t n, i;
} fo_in;

static unsigned fo_byte(fo_in *in) { return in->i < in->n ? in->p[in->i++] : 0; }

static const char *const fo_ids[] = {
  "FOLFIRI", "FOLFOX", "bevacizumab", "FOLFIRI+bevacizumab", "FOLFIRI+cetuximab", "cetuximab",
  "encorafenib+cetuximab", "pembrolizumab", "palliative_rt_bone", "ras_testing", "ct_reassessment",
  "best_supportive_care", "oxaliplatin", "FOLFIRl", "", "a+b", "x_y-z.1"};
static const char *const fo_fields[] = {
  "id", "text", "citations", "rationale", "evidence", "facts", "group", "preferred", "target",
  "strength", "fact", "why", "order", "test", "name", "citation"};
static const char *const fo_calls[] = {
  "recommend", "consider", "missing", "warn", "followup", "outcome", "note", "pathway", "block", "nope"};

#define FO_COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* A Lua string literal of up to 40 raw input bytes, escaped. */
static void fo_string(fo_in *in, pw_buf *o) {
  unsigned len = fo_byte(in) % 41;
  pw_buf_adds(o, "\"");
  for (unsigned k = 0; k < len; k++) pw_buf_addf(o, "\\%u", fo_byte(in));
  pw_buf_adds(o, "\"");
}

static void fo_value(fo_in *in, pw_buf *o, int depth);

static void fo_table(fo_in *in, pw_buf *o, int depth) {
  unsigned n = fo_byte(in) % 6;
  pw_buf_adds(o, "{");
  for (unsigned k = 0; k < n; k++) {
    unsigned how = fo_byte(in) % 3;
    if (how == 0) pw_buf_addf(o, "%s = ", fo_fields[fo_byte(in) % FO_COUNT(fo_fields)]);
    else if (how == 1) { pw_buf_adds(o, "["); fo_string(in, o); pw_buf_adds(o, "] = "); }
    fo_value(in, o, depth + 1);   /* how == 2: a list element */
    pw_buf_adds(o, ", ");
  }
  pw_buf_adds(o, "}");
}

static void fo_value(fo_in *in, pw_buf *o, int depth) {
  unsigned k = fo_byte(in) % 16;
  if (depth > 3) k %= 8;
  switch (k) {
  case 0: fo_string(in, o); break;
  case 1: case 2: pw_buf_addf(o, "\"%s\"", fo_ids[fo_byte(in) % FO_COUNT(fo_ids)]); break;
  case 3: pw_buf_addf(o, "%d", (int)fo_byte(in) - 16); break;
  case 4: pw_buf_adds(o, (const char *[]){"0/0", "1e308*10", "-0.0", "2^53", "math.maxinteger", "1.5"}[fo_byte(in) % 6]); break;
  case 5: pw_buf_adds(o, fo_byte(in) & 1 ? "true" : "false"); break;
  case 6: pw_buf_adds(o, "nil"); break;
  case 7: pw_buf_addf(o, "string.rep(\"\\u{e9}x\", %u)", fo_byte(in) * 40); break;   /* long text */
  case 8: case 9: pw_buf_addf(o, "{%u}", fo_byte(in) % 5); break;                     /* citations */
  case 10: pw_buf_adds(o, "function() end"); break;
  default: fo_table(in, o, depth); break;
  }
}

/* One step of the evaluate body. */
static void fo_step(fo_in *in, pw_buf *o) {
  unsigned op = fo_byte(in) % 14;
  if (op < 10) {
    const char *fn = fo_calls[op];
    unsigned form = fo_byte(in) % 4;
    if (form == 0) { pw_buf_addf(o, "    out.%s(", fn); fo_value(in, o, 0); pw_buf_adds(o, ")\n"); }
    else if (form == 1) { pw_buf_addf(o, "    out.%s(", fn); fo_value(in, o, 0); pw_buf_adds(o, ", "); fo_value(in, o, 0); pw_buf_adds(o, ")\n"); }
    else {   /* the usual shape: a table with known fields */
      pw_buf_addf(o, "    out.%s{id = \"%s\", text = ", fn, fo_ids[fo_byte(in) % FO_COUNT(fo_ids)]);
      fo_value(in, o, 1);
      pw_buf_addf(o, ", citations = {%u}, fact = \"ecog\", why = ", 1 + fo_byte(in) % 3);
      fo_value(in, o, 1);
      pw_buf_addf(o, ", %s = ", fo_fields[fo_byte(in) % FO_COUNT(fo_fields)]);
      fo_value(in, o, 1);
      pw_buf_adds(o, "}\n");
    }
  } else if (op == 10) {   /* many calls: the bounds on items */
    pw_buf_addf(o, "    for i = 1, %u do out.warn{text = \"w\" .. i, citations = {1}} end\n", fo_byte(in) * 16 + fo_byte(in));
  } else if (op == 11) {
    pw_buf_adds(o, "    out.pathway(");
    fo_value(in, o, 0);
    pw_buf_adds(o, ", {rationale = ");
    fo_value(in, o, 1);
    pw_buf_adds(o, ", citations = {1}})\n");
  } else if (op == 12) {
    pw_buf_adds(o, "    if facts.ecog == 1 then out.note(");
    fo_value(in, o, 0);
    pw_buf_adds(o, ") end\n");
  } else {
    pw_buf_adds(o, "    do return ");
    fo_value(in, o, 0);
    pw_buf_adds(o, " end\n");
  }
}

static void fo_protocol(fo_in *in, pw_buf *o) {
  pw_buf_adds(o, "return {\n  id = \"fuzz_output\", version = \"0.1.0\", title = \"fuzz\",\n"
                 "  references = {[1] = \"one\", [2] = \"two\", [3] = \"three\"},\n"
                 "  applies = function(facts, out)\n    return ");
  unsigned a = fo_byte(in) % 8;
  if (a < 5) pw_buf_adds(o, "true");
  else fo_value(in, o, 0);
  pw_buf_adds(o, ", ");
  fo_value(in, o, 0);
  pw_buf_adds(o, "\n  end,\n  evaluate = function(facts, out)\n");
  for (int steps = 0; steps < 24 && in->i < in->n; steps++) fo_step(in, o);
  pw_buf_adds(o, "  end,\n}\n");
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  pw_error err;
  fo_engine = pw_engine_new(NULL, &err);
  if (!fo_engine) abort();
  pw_buf_adds(&fo_facts, "{\"patient_id\":\"fuzz\",\"ecog\":1,\"metastatic\":true,"
                         "\"metastases\":[{\"site\":\"bone\",\"symptoms\":[\"pain\"]}]}");
  return 0;
}

/* Well-formed whatever its size, and within the gate's default limits
** (1 MiB, 1024 entries per list), so a client using the same limits can
** read it: the builder bounds a protocol's output (256 entries per list,
** 128 KiB of text). Before the bounds the fuzzer found 2,804 warnings in
** one result (corpus/output/warn-loop-2804-items). */
static void fo_check_json(const pw_buf *a) {
  pw_gate_limits wide = {1u << 30, 64, 1 << 24};
  char msg[256];
  if (pw_gate_check(a->data, a->len, &wide, NULL, msg, sizeof msg) != 0) {
    fprintf(stderr, "result is not well-formed JSON: %s\n%.300s\n", msg, a->data);
    abort();
  }
  if (pw_gate_check(a->data, a->len, NULL, NULL, msg, sizeof msg) != 0) {
    fprintf(stderr, "result beyond the gate's default limits: %s\n", msg);
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fo_in in = {data, size, 0};
  pw_buf src = {0}, a = {0}, b = {0};
  pw_error err, err2;
  fo_protocol(&in, &src);
  if (src.failed) abort();
  if (pw_engine_load_buffer(fo_engine, "fuzz_output.lua", src.data, src.len, &err) != PW_OK) {
    fprintf(stderr, "generated protocol did not load: %s\n%s", err.msg, src.data);
    abort();
  }
  unsigned flags = size && (data[0] & 0x80) ? PW_EVAL_TRACE : 0;
  pw_status st = pw_engine_eval(fo_engine, fo_facts.data, fo_facts.len, flags, &a, &err);
  if (st != PW_OK && st != PW_EPROTOCOL && st != PW_EBUDGET && st != PW_EMEMORY) abort();
  if (st != PW_OK && !err.msg[0]) abort();
  if (st == PW_OK) fo_check_json(&a);
  pw_status st2 = pw_engine_eval(fo_engine, fo_facts.data, fo_facts.len, flags, &b, &err2);
  if (st2 != st) abort();
  if (st == PW_OK && (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)) abort();
  if (st != PW_OK && st != PW_EBUDGET && strcmp(err.msg, err2.msg) != 0) abort();
  pw_buf_free(&src);
  pw_buf_free(&a);
  pw_buf_free(&b);
  return 0;
}
