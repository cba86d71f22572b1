/*
** fuzz_rpc.c: libFuzzer target for the server's request-line scanner
** (pw_rpc_members, pw_rpc_string in engine/server/rpc.c), which the
** supervisor runs on every line before any full check. Not part of the
** default build; see tests/fuzz/README.md.
**
** The first input byte is the option byte (bit 0: PW_RPC_FIRST); the rest
** is the line. Besides memory safety on any bytes, it aborts when:
**  - a span found lies outside the text, or starts or ends on white space;
**  - the line passes the gate (the full strict check) but the scanner
**    refuses it, or finds an "id" other than the gate's: the supervisor
**    echoes the id it scanned once a worker's full check passed;
**  - a string member of a line that passed the gate does not decode, or
**    decodes to text that is not valid UTF-8;
**  - an error reply with that id and any message is not one valid JSON
**    object (pw_rpc_error_line) by the gate's rules;
**  - an id pw_rpc_readable_id reads in any line (the gate may refuse it)
**    lies outside the text or makes an error reply that is not valid JSON.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "engine.h"
#include "gate.h"
#include "rpc.h"
#include "sandbox.h"

static int fuzz_ws(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *const keys[] = {"jsonrpc", "method", "id", "params"};
  pw_span sp[4];
  pw_gate_info gi;
  char out[256];
  const char *s;
  size_t n;
  int flags, rc, gate_ok;
  if (size < 1) return 0;
  flags = (data[0] & 1) ? PW_RPC_FIRST : 0;
  s = (const char *)data + 1;
  n = size - 1;
  rc = pw_rpc_members(s, n, keys, 4, sp, flags);
  for (int k = 0; k < 4 && rc == 0; k++) {
    if (!sp[k].len) continue;
    if (sp[k].off > n || sp[k].len > n - sp[k].off) abort();
    if (fuzz_ws(s[sp[k].off]) || fuzz_ws(s[sp[k].off + sp[k].len - 1])) abort();
  }
  {   /* an id read from a line the gate may refuse: within the text, and
      ** an error reply echoing it is one valid JSON object */
    pw_span id;
    if (pw_rpc_readable_id(s, n, &id) == 0) {
      pw_buf reply = {0};
      if (!id.len || id.off > n || id.len > n - id.off) abort();
      pw_rpc_error_line(&reply, s + id.off, id.len, PW_RPC_PARSE_ERROR, "x");
      if (pw_gate_check(reply.data, reply.len - 1, NULL, NULL, NULL, 0) != 0) abort();
      pw_buf_free(&reply);
    }
  }
  gate_ok = pw_gate_check(s, n, NULL, &gi, NULL, 0) == 0;
  if (!gate_ok) return 0;
  if (rc != 0) abort();
  if (gi.has_id != (sp[2].len != 0)) abort();
  if (gi.has_id && (gi.id_off != sp[2].off || gi.id_len != sp[2].len)) abort();
  for (int k = 0; k < 4; k++) {
    int len;
    if (!sp[k].len || s[sp[k].off] != '"') continue;
    len = pw_rpc_string(s + sp[k].off, sp[k].len, out, sizeof out);
    if (len < 0 && sp[k].len < sizeof out / 6) abort();   /* short enough to fit */
    if (len >= 0 && (out[len] != '\0' || !pw_utf8_valid(out, (size_t)len))) abort();
  }
  {
    pw_buf reply = {0};
    char *msg = malloc(n + 1);   /* any bytes as the message */
    if (!msg) return 0;
    memcpy(msg, s, n);
    msg[n] = '\0';
    pw_rpc_error_line(&reply, gi.has_id ? s + gi.id_off : NULL, gi.id_len, PW_RPC_PARSE_ERROR, msg);
    if (reply.len < 2 || reply.data[reply.len - 1] != '\n') abort();
    if (pw_gate_check(reply.data, reply.len - 1, NULL, NULL, NULL, 0) != 0) abort();
    pw_buf_free(&reply);
    free(msg);
  }
  return 0;
}
