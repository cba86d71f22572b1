/*
** rpc.h: JSON-RPC 2.0 framing helpers for the server.
**
** Two halves. The supervisor half (rpc.c) is a bounded scanner that finds
** the raw text of a few top-level members of one request line without
** building anything (the full strict check is pw_gate_check, run by the
** worker's decode); it is safe on any bytes. The worker half (handler.c) answers
** evaluate and check_orders with an engine per loaded protocol: it decodes
** with pw_engine_decode, reads params with raw Lua access only, and writes
** the response line and the decision-log fragment.
*/
#ifndef PW_RPC_H
#define PW_RPC_H

#include <stddef.h>
#include <stdint.h>
#include "pathwise.h"

/* Standard JSON-RPC 2.0 codes. */
#define PW_RPC_PARSE_ERROR      (-32700)
#define PW_RPC_INVALID_REQUEST  (-32600)
#define PW_RPC_METHOD_NOT_FOUND (-32601)
#define PW_RPC_INVALID_PARAMS   (-32602)
#define PW_RPC_INTERNAL         (-32603)
/* pathwise's own, in the implementation-defined server range. */
#define PW_RPC_VALIDATION       (-32001)  /* facts invalid (names the field) */
#define PW_RPC_PROTOCOL         (-32002)  /* protocol raised an error (names the line) */
#define PW_RPC_BUDGET           (-32003)  /* instruction budget exhausted */
#define PW_RPC_MEMORY           (-32004)  /* memory cap of the Lua state reached */
#define PW_RPC_DEADLINE         (-32005)  /* no answer within the deadline */
#define PW_RPC_WORKER_CRASH     (-32006)  /* the evaluating worker died */
#define PW_RPC_LOG_FAILED       (-32007)  /* decision log unwritable: fail closed */
#define PW_RPC_TOO_LARGE        (-32008)  /* request line over --max-line */
#define PW_RPC_BUSY             (-32009)  /* too many connections / shutting down */
#define PW_RPC_UNKNOWN_PROTOCOL (-32010)
#define PW_RPC_FORBIDDEN        (-32011)  /* peer uid/gid not allowed */
#define PW_RPC_RELOAD_FAILED    (-32012)

/* Method numbers (sent to workers in the frame header). */
enum {
  PW_M_NONE = 0, PW_M_EVALUATE, PW_M_CHECK_ORDERS, PW_M_PROTOCOLS, PW_M_RULES,
  PW_M_RELOAD, PW_M_HEALTH, PW_M_STATS, PW_M_EVALUATE_FHIR,
  PW_M_CDS,   /* CDS Hooks over HTTP (cds.h): params {op, service?, request?} */
  PW_M__COUNT
};
int pw_rpc_method_num(const char *s, size_t n);   /* PW_M_NONE if unknown */
const char *pw_rpc_method_name(int m);
const char *pw_rpc_code_kind(int code);           /* "validation", ... */

/* A raw value inside a text: len 0 = absent. */
typedef struct pw_span { size_t off, len; } pw_span;

/* Scan the JSON object that s[0..n) holds (surrounding white space
** allowed) and set spans[i] to the raw text of the member named keys[i]
** (escaped names are decoded before comparing). Offsets are relative to s.
** Returns 0, or -1 when the text is not an object of well-formed shape or a
** wanted key appears twice. Not a validator: values are only delimited.
** With PW_RPC_FIRST the scan stops once every key was found (the rest of
** the text is then not looked at). */
#define PW_RPC_FIRST 1
int pw_rpc_members(const char *s, size_t n, const char *const *keys, int nkeys,
                   pw_span *spans, int flags);

/* Decode the JSON string whose raw text (quotes included) is s[0..n) into
** out (NUL-terminated). Returns its length, or -1 if it is not a string,
** has a bad escape or does not fit in cap-1 bytes. */
int pw_rpc_string(const char *s, size_t n, char *out, size_t cap);

/* The raw text of params.<key> in the request line (offset relative to
** line); len 0 when params or the key is absent. */
pw_span pw_rpc_param(const char *line, size_t len, const char *key);
/* params.<key> decoded into out: 1; absent or null: 0; not a string (or
** longer than cap-1 bytes): -1. */
int pw_rpc_param_string(const char *line, size_t len, const char *key, char *out, size_t cap);

/* The id of a line the gate refused, when it can still be read beyond
** doubt (issue 12: every error reply echoes an id that could be read): the
** line is an object of well-formed shape with exactly one "id" member,
** whose value is null, a JSON number of at most 2^53-1 in magnitude, or a
** string of at most 256 bytes of printable ASCII with simple escapes.
** 0 with its raw text in *id, else -1. */
int pw_rpc_readable_id(const char *s, size_t n, pw_span *id);

/* Append a whole error response line (with '\n'). id is raw JSON text
** (NULL = null). msg is plain text; it is escaped here. */
void pw_rpc_error_line(pw_buf *out, const char *id, size_t idlen, int code,
                       const char *msg);

/* ---- the worker half ------------------------------------------------ */

typedef struct pw_rpc pw_rpc;

typedef struct pw_rpc_protocol {
  const char *name;       /* file name, for messages */
  const char *src;
  size_t len;
} pw_rpc_protocol;

typedef struct pw_rpc_config {
  const pw_rpc_protocol *protocols;
  int nprotocols;
  const char *const *plugins;
  int nplugins;
  pw_limits limits;
  int log;                /* write the decision-log fragment (a log is open) */
  int log_facts;          /* put the facts text into the log fragment */
  int check_examples;     /* run each protocol's examples at load */
} pw_rpc_config;

/* Room for the reason a load failed (every failing example and cohort case). */
#define PW_RPC_LOAD_ERR_MAX (512u << 10)

/* Build one engine per protocol. On failure returns NULL with a message. */
pw_rpc *pw_rpc_new(const pw_rpc_config *cfg, char *err, size_t errlen);
void pw_rpc_free(pw_rpc *r);

/* Protocol identities: a JSON array line, then one id per line. */
void pw_rpc_ready_payload(pw_rpc *r, pw_buf *out);

typedef struct pw_rpc_outcome {
  int code;               /* 0, or a JSON-RPC error code */
  int engine;             /* index of the engine used, -1 if none */
  size_t resp_len;        /* bytes of the response line at the start */
  int fatal;              /* an engine could not be rebuilt: end the worker */
  uint64_t state_bytes;   /* bytes the worker's Lua states hold after the call */
  uint64_t rebuilds;      /* states rebuilt so far (memory, or an internal error) */
} pw_rpc_outcome;

/* Answer one request line whose method the supervisor already identified.
** Appends the response line (ending in '\n') to out and, on success, the
** decision-log fragment right after it (no braces: "engine":...,...). */
void pw_rpc_handle(pw_rpc *r, int method, const char *line, size_t len,
                   pw_buf *out, pw_rpc_outcome *oc);

#endif
