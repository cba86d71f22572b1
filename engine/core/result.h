/*
** result.h: one evaluation's result, as C data.
**
** Filled by the protocol builder (protocol items), the safety kernel
** (blocks, missing facts) and plugins; written out by pw_result_json and
** pw_result_text. All strings live in the result's arena and stay valid
** until the next evaluation on the same engine.
*/
#ifndef PW_RESULT_H
#define PW_RESULT_H

#include <stddef.h>
#include <stdint.h>
#include "pathwise.h"
#include "arena.h"

#define PW_MAX_CITES 8

typedef enum { PW_SRC_PROTOCOL = 0, PW_SRC_ORDER, PW_SRC_PLUGIN, PW_SRC_ENGINE } pw_source;

typedef struct pw_cites {
  uint8_t n;
  uint8_t v[PW_MAX_CITES];
} pw_cites;

typedef struct pw_item {
  const char *id;        /* knowledge id or a '+' combination */
  const char *kind;      /* "agent", "regimen", "action", "combination" */
  uint32_t agents;       /* bit set of pw_agent (knowledge.h) */
  int action;            /* pw_action or -1 */
  const char *strength;  /* "recommended", "consider", ... */
  const char *text, *rationale, *group, *evidence;
  const char **facts;    /* fact paths it rests on; nfacts entries */
  int nfacts;
  int preferred;
  int target;            /* 1-based metastasis index, 0 = none */
  pw_cites cites;
  pw_source source;
  int line;              /* script line, 0 if none */
  /* set by the kernel */
  int blocked;
  const char *rule, *reason;   /* first rule that blocked it */
  pw_cites rule_cites;
  const char *rule_evidence;   /* the guideline sentence the rule enforces */
  const char *rule_beyond;     /* a rule beyond the guideline: its source; else NULL */
} pw_item;

typedef struct pw_missing {
  const char *fact, *why, *order, *test;
  pw_cites cites;
  pw_source source;
} pw_missing;

/* How a warning ranks in the report: urgent first (same-day action), then
** what is specific to this patient, then the standing "do not" reminders
** the guideline repeats for everyone. */
typedef enum { PW_LEVEL_PATIENT = 0, PW_LEVEL_URGENT, PW_LEVEL_STANDING } pw_level;

typedef struct pw_note {      /* warning, follow-up, outcome, trace line */
  const char *id, *text;
  pw_cites cites;
  pw_source source;
  int line;
  pw_level level;             /* warnings only */
  const char *beyond;         /* beyond the guideline: its source (trial, label, body); else NULL */
} pw_note;

const char *pw_level_name(pw_level l);   /* "patient", "urgent", "standing" */

#define PW_VEC(T) struct { T *v; int n, cap; }

struct pw_result {
  pw_arena arena;
  const char *patient_id;       /* NULL if absent */
  int applicable;               /* 1, 0, or -1 (cannot tell) */
  const char *applicability;    /* why */
  const char *pathway;          /* NULL until set */
  const char *pathway_rationale;
  pw_cites pathway_cites;
  PW_VEC(pw_item) items;        /* protocol items, then proposed orders */
  PW_VEC(pw_missing) missing;
  PW_VEC(pw_note) warnings, followup, outcomes, trace;
  int tracing;
  size_t text_bytes;            /* text the scripts gave (the bound on output) */
  int nnotes;                   /* out.note calls, traced or not */
  char facts_sha256[65];        /* of the canonical validated facts: "" until
                                   pw_engine_facts_sha256 computes it */
};

void pw_result_reset(pw_result *r);
void pw_result_free(pw_result *r);

pw_item *pw_result_add_item(pw_result *r);
pw_missing *pw_result_add_missing(pw_result *r, const char *fact);  /* dedup by fact */
pw_note *pw_result_add_note(pw_result *r, int which);
enum { PW_NOTE_WARN, PW_NOTE_FOLLOWUP, PW_NOTE_OUTCOME, PW_NOTE_TRACE };

/* What a result is written with: the protocol's identity and references. */
#define PW_MAX_REFS 32
typedef struct pw_protocol_info {
  char *id, *version, *title;
  char sha256[65];
  char *refs[PW_MAX_REFS + 1];   /* refs[n] is the text of citation n */
  /* A protocol that `extends` another: the base's identity (NULL if none). */
  char *base_id, *base_version;
  char base_sha256[65];
  char *plugins_json;            /* [{"id","version","sha256","file"}...] of the loaded plugins, or NULL */
  /* The same provenance as C data, in load order (gates.c keeps both). */
  struct pw_plugin_prov { char *id, *version, *file; char sha256[65]; } plugins[PW_MAX_PLUGINS];
  int nplugins;
} pw_protocol_info;

void pw_result_clear_plan(pw_result *r);   /* a second pass: arena and patient id kept */
void pw_result_json(const pw_result *r, const pw_protocol_info *p, pw_buf *out);
void pw_result_text(const pw_result *r, const pw_protocol_info *p, pw_buf *out);
void pw_protocol_info_json(const pw_protocol_info *p, pw_buf *out);
/* The same object, the title only when with_title, and "file" (file's name,
** never its directories) after sha256 when file is not NULL: the identity
** a decision-log record or a server reply carries. */
void pw_protocol_info_json_ex(const pw_protocol_info *p, int with_title, const char *file, pw_buf *out);

/* Is the item a recommendation in force: the protocol's, not blocked by
** the kernel or a plugin (proposed orders and blocks are not). */
static inline int pw_item_recommended(const pw_item *it) {
  return it->source == PW_SRC_PROTOCOL && !it->blocked;
}

/* Counting helpers for logs and summaries. */
int pw_result_n_recommended(const pw_result *r);
int pw_result_n_blocked(const pw_result *r);

#endif
