/*
** engine.h: what the CLI, the experiments, the Lua module and the server
** may use beyond pathwise.h: the engine's own Lua state (for callers that
** decode JSON there), evaluation from a decoded table, line coverage and
** the protocol's identity as JSON. The runtime's private state is in
** runtime.h, which only engine/core includes.
*/
#ifndef PW_ENGINE_H
#define PW_ENGINE_H

#include <lua.h>
#include "pathwise.h"
#include "buf.h"
#include "gate.h"
#include "sha256.h"
#include "result.h"
#include "facts.h"

/* The engine's Lua state. Callers may push and pop on it between
** evaluations; they must leave the stack as they found it. */
lua_State *pw_engine_lua(pw_engine *e);

/* Bytes the engine's Lua state holds now (its allocator's count); *peak
** gets the most it held since the previous call, which resets it. */
size_t pw_engine_memory(pw_engine *e, size_t *peak);

/* Gate JSON text and decode it with the engine's private cjson instance;
** on PW_OK the decoded value is pushed on the engine's stack. info (may be
** NULL) receives where a top-level "id" member's raw text is. */
pw_status pw_engine_decode(pw_engine *e, const char *json, size_t len,
                           pw_gate_info *info, pw_error *err);

/* Evaluate facts from a decoded table at stack index facts_idx. If
** orders_idx is not 0 it is a list of order ids that replaces
** facts.proposed_orders. Result JSON is appended to out. */
pw_status pw_engine_eval_table(pw_engine *e, int facts_idx, int orders_idx,
                               unsigned flags, pw_buf *out, pw_error *err);

/* Line coverage of the loaded protocol file (for `pathwise check
** --coverage`). Start before evaluating; counts[line] is how often a line
** ran (index 0 unused, nlines+1 entries). active[line] is set for lines
** that hold code in any function reachable from the protocol table. */
pw_status pw_engine_coverage_start(pw_engine *e, pw_error *err);
const uint32_t *pw_engine_coverage_counts(const pw_engine *e, int *n);
void pw_engine_coverage_active(pw_engine *e, unsigned char *active, int n);
const char *pw_engine_protocol_path(const pw_engine *e);

/* Protocol identity as a JSON object ({"id":..,"version":..,..}) */
void pw_engine_protocol_json(const pw_engine *e, pw_buf *out);

/* The loaded protocol's identity, references and plugin provenance; and the
** facts of the last evaluation (valid after PW_OK, until the next one). */
const pw_protocol_info *pw_engine_info(const pw_engine *e);
const pw_facts *pw_engine_facts(const pw_engine *e);

/* The host paths of the bases the protocol's `extends` loaded, one a line
** (the direct base first), or NULL: what a file watcher must watch too. */
const char *pw_engine_base_files(const pw_engine *e);

/* The protocol's provenance for a decision-log record: {"id","version",
** "sha256","file"} (file: the name of file, without its directories),
** with "extends" {id, version, sha256} and "plugins" [...] when present. */
void pw_engine_provenance_json(const pw_engine *e, const char *file, pw_buf *out);

/* "plugins [{id, version, sha256, file}...]\n" when plugins are loaded (gates.c). */
void pw_engine_plugins_text(const pw_engine *e, pw_buf *out);

#endif
