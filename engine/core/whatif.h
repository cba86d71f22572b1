/*
** whatif.h: what would change the plan.
**
** For every fact the patient's record leaves absent or "unknown" (among
** those pathwise can enumerate: ECOG, molecular results, planned surgery,
** the primary, neuropathy, ...), the same engine (protocol and plugins)
** evaluates the patient again with each possible value of that fact, and
** with each combination of the tests a clinician orders together (the RAS
** panel: KRAS and NRAS; the molecular panel: KRAS, NRAS, BRAF V600E, MSI).
** Each variant is compared with the patient's own result by resultdiff.c
** (the comparison `pathwise diff` makes) and ranked by impact: pathway >
** regimen > option > none. Values are set in the decoded facts table on
** the engine's Lua state and restored afterwards; the order of facts and
** values is fixed, so the answer is deterministic. At most
** PW_WHATIF_MAX_EVALS variant evaluations are made per patient.
**
** Core only (no CLI, no threads): the server worker, batch and eval call it.
*/
#ifndef PW_WHATIF_H
#define PW_WHATIF_H

#include <stdint.h>
#include "engine.h"

#define PW_WHATIF_MAX_EVALS 256

enum { PW_WI_NONE, PW_WI_OPTION, PW_WI_REGIMEN, PW_WI_PATHWAY };
const char *pw_whatif_impact_name(int impact);   /* "none", "option", "regimen", "pathway" */

typedef struct pw_whatif pw_whatif;

pw_whatif *pw_whatif_new(void);
void pw_whatif_free(pw_whatif *w);

/* Evaluate the facts table at facts_idx (flags as for pw_engine_eval_table)
** and every variant. On PW_OK the engine's result (pw_engine_result) is the
** patient's own again, its JSON is appended to result_json (may be NULL),
** and w holds the differences. An error of the patient's own evaluation,
** or a memory error anywhere, is returned; a variant that fails otherwise
** is recorded with its error. The table is left as it was. */
pw_status pw_whatif_run(pw_whatif *w, pw_engine *e, int facts_idx, unsigned flags,
                        pw_buf *result_json, pw_error *err);

/* The `what_if` object (JSON) and the text section. */
void pw_whatif_json(const pw_whatif *w, pw_buf *out);
void pw_whatif_text(const pw_whatif *w, pw_buf *out);

/* What was explored, in rank order: the fact path or panel id and its
** impact (for counting over a cohort). */
int pw_whatif_count(const pw_whatif *w);
const char *pw_whatif_id(const pw_whatif *w, int i);
int pw_whatif_impact(const pw_whatif *w, int i);
int pw_whatif_evaluations(const pw_whatif *w);
uint64_t pw_whatif_elapsed_us(const pw_whatif *w);

/* eval with --what-if: the result JSON with a "what_if" member added, or
** (text) the text report with the section after MISSING FACTS. w may be
** NULL (one is made for the call). Appends to out only on PW_OK. */
pw_status pw_whatif_eval_table(pw_engine *e, int facts_idx, unsigned flags, int text,
                               pw_whatif *w, pw_buf *out, pw_error *err);
pw_status pw_whatif_eval(pw_engine *e, const char *json, size_t len, unsigned flags, int text,
                         pw_whatif *w, pw_buf *out, pw_error *err);

/* Insert a text section after the MISSING FACTS section of a text report
** (at the end when there is none). */
void pw_whatif_insert_section(pw_buf *report, const char *section, size_t len);

#endif
