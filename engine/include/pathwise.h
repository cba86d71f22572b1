/*
** pathwise.h: the public API of libpathwise.
**
** One pw_engine owns one lua_State and is used by one thread at a time.
** It loads one protocol (a Lua file, text only, run in a sandbox) and
** evaluates patient facts given as JSON text. Every evaluation passes
** through the C facts validator and the C safety kernel; a protocol can
** only propose. The library never prints and never exits: each call
** returns a pw_status and fills a pw_error with a message naming the
** field or the script line.
*/
#ifndef PATHWISE_H
#define PATHWISE_H

#include <stddef.h>
#include <stdint.h>

#define PW_VERSION "0.1.0"
/* Version of the result and decision-log record layouts (schemas/); bumped
** when a key is removed or changes meaning. */
#define PW_RESULT_SCHEMA 1

/* Plugins one engine can load (pw_engine_add_plugin refuses more). */
#define PW_MAX_PLUGINS 8

/* The guideline's "within 6 weeks" of planned surgery, in days: no
** bevacizumab when surgery is planned this many days ahead or fewer. */
#define PW_BEV_SURGERY_WINDOW_DAYS 42

typedef enum pw_status {
  PW_OK = 0,
  PW_EINPUT,     /* facts JSON malformed or invalid */
  PW_EPROTOCOL,  /* protocol failed to load or raised an error */
  PW_EBUDGET,    /* instruction budget exhausted */
  PW_EMEMORY,    /* memory cap reached */
  PW_EIO,        /* file could not be read or written */
  PW_EINTERNAL   /* a bug in pathwise */
} pw_status;

typedef struct pw_error {
  pw_status code;
  char msg[512];
} pw_error;

/* "ok", "input", "protocol", "budget", "memory", "io" or "internal". */
const char *pw_status_name(pw_status s);

/* A growable byte buffer; free with pw_buf_free. When an allocation
** fails, failed is set and stays set (later appends are dropped) until
** pw_buf_reset or pw_buf_free: whoever finishes a reply, record or output
** checks it and reports PW_EMEMORY ("out of memory") instead. */
typedef struct pw_buf {
  char *data;
  size_t len, cap;
  int failed;   /* sticky: an allocation failed, the content is incomplete */
} pw_buf;

typedef struct pw_limits {
  size_t memory;          /* bytes per Lua state; 0 = default (64 MiB) */
  uint64_t instructions;  /* per evaluation; 0 = default (5,000,000) */
  size_t max_input;       /* bytes of facts JSON; 0 = default (1 MiB) */
  const char *scripts_dir; /* where `extends` finds a base last (after the extending
                           ** file's directory and $PATHWISE_PATH): the default
                           ** scripts of this installation; NULL = the source tree's.
                           ** Must outlive the engine. */
} pw_limits;

/* Flags for pw_engine_eval. */
#define PW_EVAL_TRACE 1u        /* add trace[]: branches, rules, facts used */
#define PW_EVAL_ORDERS_ONLY 2u  /* skip the protocol: safety-check orders only */

typedef struct pw_engine pw_engine;
typedef struct pw_result pw_result;  /* see engine/core/result.h */

pw_engine *pw_engine_new(const pw_limits *lim, pw_error *err);
void pw_engine_free(pw_engine *e);

/* Load a protocol file (replacing any loaded one) and check its table. */
pw_status pw_engine_load(pw_engine *e, const char *path, pw_error *err);
pw_status pw_engine_load_buffer(pw_engine *e, const char *name,
                                const char *src, size_t len, pw_error *err);
/* Add a plugin (local rules that may only tighten); see plugins/README.md */
pw_status pw_engine_add_plugin(pw_engine *e, const char *path, pw_error *err);

/* Identity of the loaded protocol (NULL before a load). */
const char *pw_engine_protocol_id(const pw_engine *e);
const char *pw_engine_protocol_version(const pw_engine *e);
const char *pw_engine_protocol_title(const pw_engine *e);
const char *pw_engine_protocol_sha256(const pw_engine *e); /* hex */

/* Evaluate one facts object (JSON text). On PW_OK the result is kept in
** the engine until the next evaluation (pw_engine_result) and written as
** JSON into out (appended). On error, err says why and out is untouched. */
pw_status pw_engine_eval(pw_engine *e, const char *json, size_t len,
                         unsigned flags, pw_buf *out, pw_error *err);
const pw_result *pw_engine_result(const pw_engine *e);

/* Render the last result as text for people (appended to out). */
void pw_engine_render_text(const pw_engine *e, pw_buf *out);

/* Run the example cases the protocol declares; a report goes to out.
** Returns PW_OK when all pass, PW_EPROTOCOL when one fails or there are
** none. An example fails too when it cannot check anything: an unknown key
** in it or in its expect, an id or fact path pathwise does not know, a
** value of the wrong type (see scripts/README.md, "Example cases"). */
pw_status pw_engine_check_examples(pw_engine *e, pw_buf *out, pw_error *err);

/* The safety rules, as a JSON array, appended to out. */
void pw_rules_json(pw_buf *out);
void pw_rules_text(pw_buf *out);

void pw_buf_free(pw_buf *b);

#endif
