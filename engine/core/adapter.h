/*
** adapter.h: input adapters, Lua scripts that turn a foreign document (a
** FHIR R4 Bundle, a searchset, a CDS Hooks prefetch object) into patient
** facts, with the source of every fact and a list of what they could not map.
**
** An adapter runs in its own sandbox (its own lua_State, memory cap and
** instruction budget: engine/core/sandbox.h), like a protocol. Its file
** returns {id=, version=, adapt=function(doc, ctx)}; code tables are
** separate files returning plain tables (the first is the base table, later
** ones an institution's extensions), handed to adapt as ctx.codes in order.
** adapt returns {patient=, facts=, sources=, unmapped=} or nil, "reason"
** (the document is refused: PW_EINPUT). The facts go through the same C
** validation as hand-written facts (pw_facts_from_lua) and are written as
** JSON in a fixed key order, ready for pw_engine_eval. The library never
** prints; errors come back in pw_error.
*/
#ifndef PW_ADAPTER_H
#define PW_ADAPTER_H

#include <lua.h>
#include <stdint.h>
#include "pathwise.h"
#include "gate.h"

#define PW_ADAPTER_MEMORY (512u << 20)              /* per adapter state: a 16 MiB bundle decodes to ~140 MiB */
#define PW_ADAPTER_INSTRUCTIONS 200000000ull        /* per document */
#define PW_ADAPTER_MAX_BYTES ((size_t)16 << 20)     /* JSON text: 16 MiB */
#define PW_ADAPTER_MAX_MEMBERS 100000               /* per object or array */

typedef struct pw_adapter_limits {
  size_t memory;          /* 0 = PW_ADAPTER_MEMORY */
  uint64_t instructions;  /* 0 = PW_ADAPTER_INSTRUCTIONS */
  size_t max_bytes;       /* 0 = PW_ADAPTER_MAX_BYTES */
  int max_members;        /* 0 = PW_ADAPTER_MAX_MEMBERS */
} pw_adapter_limits;

typedef struct pw_adapter_output {
  pw_buf facts;   /* the facts object, JSON */
  pw_buf meta;    /* {"from","as_of","adapter","patient","facts","sources","unmapped"} */
  pw_buf text;    /* the same for people */
  pw_buf trace;   /* trace entries {"text":...} for --trace, comma-separated */
} pw_adapter_output;

typedef struct pw_adapter pw_adapter;

pw_adapter *pw_adapter_new(const pw_adapter_limits *lim, pw_error *err);
void pw_adapter_free(pw_adapter *a);

/* Load the adapter script, then its code tables (each call adds one). */
pw_status pw_adapter_load(pw_adapter *a, const char *path, pw_error *err);
pw_status pw_adapter_add_codes(pw_adapter *a, const char *path, pw_error *err);

/* Gate and decode json (with the adapter's limits), run the adapter as of
** the date as_of (YYYY-MM-DD) and validate its facts. out is reset first. */
pw_status pw_adapter_run(pw_adapter *a, const char *json, size_t len, const char *as_of,
                         pw_adapter_output *out, pw_error *err);
void pw_adapter_output_free(pw_adapter_output *o);

/* The same in two steps, for callers that read more than the document from
** the JSON (the server's evaluate_fhir request): gate (with the adapter's
** limits) and decode, pushing the value on the adapter's stack; then run the
** adapter over the value at idx. Callers leave the stack as they found it. */
lua_State *pw_adapter_lua(pw_adapter *a);
pw_status pw_adapter_decode(pw_adapter *a, const char *json, size_t len, pw_gate_info *info, pw_error *err);
pw_status pw_adapter_run_value(pw_adapter *a, int idx, const char *as_of, pw_adapter_output *o, pw_error *err);

/* Is s a real calendar date written YYYY-MM-DD? */
int pw_adapter_date_ok(const char *s);
/* Today's date (UTC) as YYYY-MM-DD. */
void pw_adapter_today(char out[11]);

/* Add out->meta to a result JSON object (its text ends with '}' and maybe
** a newline) as the member "input"; when the result has a top-level
** "trace" array, the facts' sources open it (one entry per source). */
void pw_adapter_splice(pw_buf *result, const pw_adapter_output *o);

/* Plain facts mode: is the table at idx a FHIR document (a string member
** resourceType)? Returns 1 with a message naming it, else 0. */
int pw_adapter_is_fhir(lua_State *L, int idx, char *err, size_t errlen);

#endif
