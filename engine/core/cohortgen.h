/*
** cohortgen.h: a reproducible synthetic cohort, one facts object (JSON) per
** line. The same seed gives the same lines everywhere. invalid_pct spoils
** that share of lines (one field made invalid). No I/O, no globals.
*/
#ifndef PW_COHORTGEN_H
#define PW_COHORTGEN_H

#include <stdint.h>
#include "pathwise.h"

typedef struct pw_cohort {
  uint64_t r[4], r2[4];   /* the two generator streams */
  uint64_t seed;
  uint32_t p_invalid;     /* per million */
  uint64_t i;             /* cases written */
} pw_cohort;

void pw_cohort_init(pw_cohort *c, uint64_t seed, double invalid_pct);
/* Append the next case and its newline to out. */
void pw_cohort_next(pw_cohort *c, pw_buf *out);

#endif
