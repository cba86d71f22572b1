/*
** runtime.h: the engine's private state, shared by the files of the
** protocol runtime in engine/core and by nothing else:
**   engine.c    an engine's life, decoding, one evaluation (pathwise.h)
**   builder.c   what scripts see: the `out` builder, the plugin builder,
**               the read-only item list handed to plugins
**   protocol.c  loading a protocol (and checking its table) or a plugin
**   examples.c  `pathwise check`: a protocol's example cases, the rules
**   coverage.c  line coverage of the loaded protocol
** One pw_engine owns one lua_State; none of this is thread-safe.
*/
#ifndef PW_RUNTIME_H
#define PW_RUNTIME_H

#include <lua.h>
#include "engine.h"
#include "facts.h"
#include "sandbox.h"

#define PW_MAX_TEXT 4096                 /* bytes of one text field a script gives */
#define PW_MAX_OUTPUT_ITEMS 256          /* entries of one output list a script adds to */
#define PW_MAX_OUTPUT_TEXT (128u << 10)  /* bytes of text a script gives in one evaluation */
#define PW_MAX_SOURCE (16u << 20)        /* bytes of a protocol or plugin file */

typedef struct pw_plugin {
  char *id, *name;
  int check_ref;
} pw_plugin;

#define PW_MAX_WITHHELD 16

struct pw_engine {
  pw_sandbox sb;
  pw_limits lim;
  pw_protocol_info info;
  char *path;
  char *src, *src_name;          /* the loaded protocol's source and chunk name (the lint reads it) */
  size_t src_len;
  char *base_files;              /* the bases `extends` loaded, one host path a line, or NULL */
  int loaded, proto_ref, applies_ref, evaluate_ref, out_ref, pout_ref, decode_ref;
  int in_eval, in_plugin;
  const char *field_text[24];   /* builder.c: the interned field names (check_fields) */
  int facts_ok;   /* e->facts are the last successful evaluation's (for the facts sha256) */
  const pw_plugin *cur_plugin;
  uint32_t gen;
  pw_facts facts;
  pw_result res;
  pw_buf scratch;
  pw_plugin plugins[PW_MAX_PLUGINS];
  int nplugins;
  /* Protocol items a plugin blocked on an evaluation's first pass: id and
  ** "plugin/rule", answered by out.withheld(id) on the second pass; both
  ** point into e->res.arena, which lives through the two passes. */
  const char *withheld[PW_MAX_WITHHELD][2];
  int nwithheld;
};

/* builder.c: create the protocol's `out` (e->out_ref) and the plugins'
** `out` (e->pout_ref) in the engine's state. Raises a Lua error. */
void pw_builder_open(lua_State *L, pw_engine *e);
/* Push the current items as a sealed (read-only, recursively) list. */
void pw_builder_push_items(lua_State *L, const pw_result *r);
/* Add a trace line (when tracing): fmt takes up to two strings. */
void pw_builder_trace(pw_engine *e, int line, const char *id, const char *fmt, const char *a, const char *b);
/* Is s a non-empty [a-z0-9_.-]+ identifier? */
int pw_builder_ident(const char *s);

/* protocol.c */
void pw_protocol_info_free(pw_protocol_info *p);

/* engine.c: evaluate the facts table at facts_idx (orders_idx: a list of
** order ids replacing facts.proposed_orders, or 0) into e->res. */
pw_status pw_engine_evaluate(pw_engine *e, int facts_idx, int orders_idx, unsigned flags, pw_error *err);

/* gates.c: the release gates check and reload run after the examples.
** Each appends FAIL lines (all of them) and returns how many failed. */
int pw_gate_cohort(pw_engine *e, pw_buf *out);
int pw_gate_lint(pw_engine *e, pw_buf *out);
/* Record a loaded plugin's provenance in p->plugins_json; -1 out of memory. */
int pw_plugin_provenance(pw_protocol_info *p, const char *id, const char *version, const char *sha256,
                         const char *file);

#endif
