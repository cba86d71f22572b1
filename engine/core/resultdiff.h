/*
** resultdiff.h: what differs between two results of the engine, item by
** item. One implementation, shared by `pathwise diff` (two protocols, one
** case) and the what-if exploration (one protocol, two versions of a
** case's facts).
**
** Items are matched by a key: the id, "@target" for palliative
** radiotherapy, "order:" for proposed orders, "#n" for the n-th repeat of
** the same key. Each difference is a change of one category; the pointers
** it holds point into the two results compared (and the key array), so
** they live as long as those do. No allocation, no output.
*/
#ifndef PW_RESULTDIFF_H
#define PW_RESULTDIFF_H

#include <stddef.h>
#include "result.h"

#define PW_RDIFF_MAX_KEYS 256

enum {
  PW_RDIFF_APPLICABILITY,   /* applies true / false / cannot tell */
  PW_RDIFF_PATHWAY,         /* the pathway name */
  PW_RDIFF_ADDED,           /* a recommendation of B that A does not make */
  PW_RDIFF_REMOVED,         /* a recommendation of A that B neither makes nor blocks */
  PW_RDIFF_MODIFIED,        /* strength, text, rationale, citations, group, preference; or blocking rule */
  PW_RDIFF_BLOCKED,         /* B blocks an item A recommends, allows or does not propose */
  PW_RDIFF_UNBLOCKED,       /* A blocks an item B does not */
  PW_RDIFF_NCATS
};

typedef struct pw_rdiff_key {
  char key[112];
  const pw_item *it;
  int matched;
} pw_rdiff_key;

typedef struct pw_rdiff_change {
  int cat;
  const char *key;            /* the matching key ("id", "id@2", "order:id") */
  const pw_item *a, *b;       /* the item on each side, NULL where absent */
  char what[80];              /* MODIFIED: the fields that differ, comma separated */
} pw_rdiff_change;

/* Where pw_rdiff_compare writes: ch has room for 2 * PW_RDIFF_MAX_KEYS
** changes (nch of them used), cats[c] is set to 1 for each category seen
** (PW_RDIFF_NCATS entries; a caller may keep more categories after them). */
typedef struct pw_rdiff {
  pw_rdiff_change *ch;
  int nch;
  int *cats;
} pw_rdiff;

/* The keys of r's items (at most PW_RDIFF_MAX_KEYS); returns how many. */
int pw_rdiff_keys(const pw_result *r, pw_rdiff_key *k);

/* Compare a (keys ka[0..na)) with b (keys kb[0..nb)); appends to d. */
void pw_rdiff_compare(pw_rdiff *d, const pw_result *a, pw_rdiff_key *ka, int na,
                      const pw_result *b, pw_rdiff_key *kb, int nb);

/* The fields of two recommendations that differ, comma separated ("" if none). */
void pw_rdiff_fields(const pw_item *x, const pw_item *y, char *out, size_t n);

/* Key of an item without the "order:" prefix: "id" or "id@target". */
void pw_rdiff_item_key(const pw_item *it, char *buf, size_t n);

#endif
