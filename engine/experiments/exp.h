/*
** exp.h: machinery shared by the experiment commands (batch, diff,
** check --coverage, cohort): their common options, an ordered parallel
** line pipeline, string counters, error records and output helpers.
**
** The pipeline reads JSON Lines from a file or stdin on the calling
** thread, hands chunks of lines to `jobs` worker threads and writes each
** chunk's output in input order. Each worker owns its state (its own
** pw_engine, hence its own lua_State): no Lua state is ever shared
** between threads.
*/
#ifndef PW_EXP_H
#define PW_EXP_H

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include "command.h"
#include "engine.h"
#include "jsonw.h"

#define EXP_MAX_LINE (16u << 20)   /* longer lines are cut here (and then refused) */

/* ---- options shared by batch, diff and check --coverage ---- */

typedef struct exp_opts {
  pw_cmd_opts cmd;   /* the shared flags (command.h): plugins, limits, jobs, ... */
  int progress;      /* -1 = when stderr is a terminal, 0 = never, 1 = always */
} exp_opts;

enum { EXP_OPT_PROGRESS = PW_OPT_FIRST_FREE, EXP_OPT_NO_PROGRESS, EXP_OPT_FIRST_FREE };

/* getopt_long entries of the options every experiment takes; -j, --jobs
** is 'j'. --protocol and --format are the command's choice (PW_OPT_LONG_*). */
#define EXP_LONG_OPTIONS                                                    \
  PW_OPT_LONG_PLUGIN, PW_OPT_LONG_MEMORY, PW_OPT_LONG_INSTRUCTIONS,         \
  PW_OPT_LONG_JOBS,                                                         \
  {"progress", no_argument, 0, EXP_OPT_PROGRESS},                           \
  {"no-progress", no_argument, 0, EXP_OPT_NO_PROGRESS}

/* Usage text of the shared options, for each command's --help. */
#define EXP_USAGE_SHARED                                                                 \
  "  -j, --jobs N            worker threads, each with its own engine\n"                 \
  "                          (default: one per available core)\n"                        \
  "      --plugin FILE       add a local-rules plugin (repeatable; may only tighten)\n"  \
  "      --memory BYTES      memory cap of each Lua state (default 64 MiB)\n"            \
  "      --instructions N    instruction budget per evaluation (default 5000000)\n"      \
  "      --progress          progress bar on stderr even when it is not a terminal\n"    \
  "      --no-progress       no progress bar (default: shown when stderr is a terminal)\n"

void exp_opts_init(exp_opts *o);

/* Handle one shared option (pw_cmd_option's, or --progress). Returns -1
** when handled, an exit code after a usage error (printed as
** "pathwise: <cmd>: ..."), or -2 when c is not a shared option. */
int exp_shared_opt(int c, const char *arg, exp_opts *o, const char *cmd, const char *usage);

/* Print "pathwise: <cmd>: <message>" and the usage to stderr; PW_EX_USAGE. */
int exp_usage(const char *cmd, const char *usage, const char *fmt, ...)
  __attribute__((format(printf, 3, 4)));

/* The number of worker threads to run (--jobs, else pw_cmd_cores). */
int exp_jobs(const exp_opts *o);
int exp_show_progress(const exp_opts *o);

/* An engine with protocol and plugins (extra, then o's) loaded; prints
** the error and sets *code on failure. */
pw_engine *exp_engine(const char *protocol, const exp_opts *o, const char *const *extra,
                      int nextra, int *code);

/* ---- the ordered parallel line pipeline ---- */

typedef struct exp_pipeline {
  const char *input;     /* a file, or "-" for stdin */
  int jobs;              /* threads; 1 runs everything on the calling thread */
  int progress;          /* draw a progress bar on stderr */
  void **workers;        /* jobs worker states, each used by one thread only */
  /* Handle one non-blank line (no newline; 1-based line number). */
  void (*process)(void *worker, const char *line, size_t len, long lineno, pw_buf *out);
  /* Output of each chunk of lines, in input order, on the calling thread.
  ** NULL writes to stdout. Returns 0, or -1 to stop (errno set). */
  int (*emit)(void *ud, const char *data, size_t len);
  void *ud;
  /* filled in by the run */
  long lines, blank, processed;
  double seconds;
} exp_pipeline;

/* Run the pipeline. Returns PW_EX_OK, PW_EX_NOINPUT (input cannot be
** opened), PW_EX_IOERR (read or write error; message printed) or
** PW_EX_SOFTWARE (threads could not start). */
int exp_pipeline_run(exp_pipeline *p);

/* ---- counting strings ---- */

typedef struct exp_count_entry {
  char *key;
  uint64_t n;
} exp_count_entry;

typedef struct exp_counter {
  exp_count_entry *v;
  size_t cap, used;
  int failed;   /* sticky: out of memory, some counts are missing */
} exp_counter;

void exp_count_add(exp_counter *c, const char *key, uint64_t n);
uint64_t exp_count_get(const exp_counter *c, const char *key);
void exp_count_merge(exp_counter *dst, const exp_counter *src);
/* Entries sorted by count (descending), then key; free() the array only. */
exp_count_entry *exp_count_sorted(const exp_counter *c, size_t *n);
void exp_count_free(exp_counter *c);

/* Text table of the top entries: "  key  count  pct%" (pct of denom). */
void exp_text_top(pw_buf *b, const char *title, const exp_counter *c, size_t top, uint64_t denom);
/* The same with each key shown as label(out, kind, key) writes it. */
typedef void (*exp_label_fn)(pw_buf *out, int kind, const char *key);
void exp_text_top_labelled(pw_buf *b, const char *title, const exp_counter *c, size_t top, uint64_t denom,
                           exp_label_fn label, int kind);
/* A JSON object {"key": count, ...}, largest first, as the next value. */
void exp_json_counts(pw_jsonw *w, const exp_counter *c);
/* key, then exp_json_counts */
void exp_json_field_counts(pw_jsonw *w, const char *key, const exp_counter *c);

/* ---- results, errors and output ---- */

/* The fact path an error message starts with ("ecog", "metastases[0].site");
** "$" when it concerns the whole line. */
void exp_error_field(const char *msg, char *field, size_t n);

/* One JSON line: {"line":N,"error":{"status":..,"field":..,"message":..}};
** field is the exp_error_field of an input error, NULL (null) otherwise. */
void exp_error_record(pw_buf *out, long lineno, const pw_error *err, const char *field);

/* Key of an item for counting and matching: "id" or "id@target". */
void exp_item_key(const pw_item *it, char *buf, size_t n);

/* HTML-escaped text. */
void exp_html(pw_buf *b, const char *s);

/* Write a whole buffer to f; prints the error. Returns PW_EX_OK or PW_EX_IOERR. */
int exp_write(FILE *f, const char *what, const pw_buf *b);

double exp_now(void);
double exp_pct(uint64_t part, uint64_t whole);

#endif
