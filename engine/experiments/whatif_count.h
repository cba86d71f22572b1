/*
** whatif_count.h: counting what-if answers over a cohort (`batch
** --what-if`): for each fact or panel, in how many cases it was missing or
** unknown, and in how many of those some value would change the plan (by
** impact: pathway, regimen, option). Per worker, merged at the end.
*/
#ifndef PW_WHATIF_COUNT_H
#define PW_WHATIF_COUNT_H

#include "exp.h"
#include "whatif.h"

typedef struct exp_wicount {
  exp_counter explored, changes, by_impact;   /* by_impact keys: "id|pathway" ... */
  uint64_t cases, evaluations, microseconds;
  uint64_t cases_tried, cases_changing;        /* cases with a fact to try; where one changes the plan */
} exp_wicount;

void exp_wicount_add(exp_wicount *c, const pw_whatif *w);
void exp_wicount_merge(exp_wicount *dst, const exp_wicount *src);
void exp_wicount_free(exp_wicount *c);
void exp_wicount_text(pw_buf *b, const exp_wicount *c);
void exp_wicount_json(pw_buf *b, const exp_wicount *c);

#endif
