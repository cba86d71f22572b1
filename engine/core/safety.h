/*
** safety.h: the guideline's hard "never" rules, in C.
**
** pw_safety_apply checks every item in a result (protocol recommendations
** and proposed orders) against every rule, deciding only on the validated
** C facts. An item that breaks a rule is marked blocked with the rule id,
** a reason and the rule's citations. A rule whose deciding fact is unknown
** fails safe: it blocks and reports the fact missing. Nothing a protocol
** or plugin does can switch a rule off: they never see this table.
**
** Most rules enforce a guideline sentence (citations 1-5). A few are
** well-established rules beyond the guideline; each names its source
** (trial, label or guideline body) in `beyond`, has no citations, and is
** labelled so in every output. The kernel also adds warnings of its own
** (urgent ones first: possible spinal cord compression), contradictions
** in the facts, and the beyond-guideline warnings.
**
** Conflicts between items (two biologics, two PD-1 inhibitors, two bone
** agents not offered as alternatives) block every item of the conflict,
** so the outcome never depends on the order the items were added in.
*/
#ifndef PW_SAFETY_H
#define PW_SAFETY_H

#include "facts.h"
#include "result.h"

typedef struct pw_rule_info {
  const char *id, *statement, *applies_to;
  pw_cites cites;
  const char *guideline;   /* the guideline sentence(s) it enforces, verbatim; NULL beyond it */
  const char *beyond;      /* a rule beyond the institution's guideline: its source; else NULL */
} pw_rule_info;

/* The rules in order, for listing them (pathwise rules, coverage). */
const pw_rule_info *pw_safety_rule(int i);   /* NULL past the end */
int pw_safety_count(void);
/* A rule by its id (NULL if none): how code refers to one rule, never by
** its position in the table. */
const pw_rule_info *pw_safety_rule_by_id(const char *id);

void pw_safety_apply(const pw_facts *f, pw_result *r);

/* The test or assessment that settles an unknown fact (NULL if none). */
void pw_safety_missing(pw_result *r, const char *fact, const char *why, pw_source src);

#endif
