/*
** resultdiff.c: item-by-item comparison of two results (see resultdiff.h).
** Moved out of experiments/diff.c unchanged, so `pathwise diff` and the
** what-if exploration compare results the same way.
*/
#include <stdio.h>
#include <string.h>
#include "resultdiff.h"

void pw_rdiff_item_key(const pw_item *it, char *buf, size_t n) {
  if (it->target) snprintf(buf, n, "%s@%d", it->id, it->target);
  else snprintf(buf, n, "%s", it->id);
}

int pw_rdiff_keys(const pw_result *r, pw_rdiff_key *k) {
  int n = 0;
  for (int i = 0; i < r->items.n && n < PW_RDIFF_MAX_KEYS; i++) {
    const pw_item *it = &r->items.v[i];
    char base[100];
    pw_rdiff_item_key(it, base, sizeof base);
    int rep = 1;
    for (int j = 0; j < n; j++)
      if (k[j].it->source == it->source && !strcmp(k[j].it->id, it->id) && k[j].it->target == it->target) rep++;
    snprintf(k[n].key, sizeof k[n].key, "%s%s", it->source == PW_SRC_ORDER ? "order:" : "", base);
    if (rep > 1) {
      size_t l = strlen(k[n].key);
      snprintf(k[n].key + l, sizeof k[n].key - l, "#%d", rep);
    }
    k[n].it = it;
    k[n].matched = 0;
    n++;
  }
  return n;
}

static int str_differs(const char *x, const char *y) {
  if (!x || !y) return x != y;
  return strcmp(x, y) != 0;
}

void pw_rdiff_fields(const pw_item *x, const pw_item *y, char *out, size_t n) {
  size_t k = 0;
  out[0] = '\0';
#define DIFF(cond, name) \
  if ((cond) && k < n) k += (size_t)snprintf(out + k, n - k, "%s%s", k ? ", " : "", name)
  DIFF(str_differs(x->strength, y->strength), "strength");
  DIFF(str_differs(x->text, y->text), "text");
  DIFF(str_differs(x->rationale, y->rationale), "rationale");
  DIFF(x->cites.n != y->cites.n || memcmp(x->cites.v, y->cites.v, x->cites.n), "citations");
  DIFF(str_differs(x->group, y->group), "group");
  DIFF(x->preferred != y->preferred, "preferred");
#undef DIFF
}

static void add_change(pw_rdiff *d, int cat, const char *key, const pw_item *a, const pw_item *b, const char *what) {
  pw_rdiff_change *c = &d->ch[d->nch++];
  c->cat = cat;
  c->key = key;
  c->a = a;
  c->b = b;
  snprintf(c->what, sizeof c->what, "%s", what ? what : "");
  d->cats[cat] = 1;
}

void pw_rdiff_compare(pw_rdiff *d, const pw_result *a, pw_rdiff_key *ka, int na,
                      const pw_result *b, pw_rdiff_key *kb, int nb) {
  if (a->applicable != b->applicable) d->cats[PW_RDIFF_APPLICABILITY] = 1;
  if (str_differs(a->pathway, b->pathway)) d->cats[PW_RDIFF_PATHWAY] = 1;
  for (int i = 0; i < na; i++) {
    const pw_item *x = ka[i].it, *y = NULL;
    const char *key = ka[i].key;
    for (int j = 0; j < nb; j++)
      if (!kb[j].matched && !strcmp(kb[j].key, key)) { kb[j].matched = 1; y = kb[j].it; break; }
    int a_rec = pw_item_recommended(x);
    if (!y) {
      if (x->blocked) add_change(d, PW_RDIFF_UNBLOCKED, key, x, NULL, NULL);
      else if (a_rec) add_change(d, PW_RDIFF_REMOVED, key, x, NULL, NULL);
      continue;
    }
    if (!x->blocked && y->blocked) add_change(d, PW_RDIFF_BLOCKED, key, x, y, NULL);
    else if (x->blocked && !y->blocked) add_change(d, PW_RDIFF_UNBLOCKED, key, x, y, NULL);
    else if (x->blocked && y->blocked) {
      if (str_differs(x->rule, y->rule)) add_change(d, PW_RDIFF_MODIFIED, key, x, y, "rule");
    } else if (a_rec) {
      char what[80];
      pw_rdiff_fields(x, y, what, sizeof what);
      if (what[0]) add_change(d, PW_RDIFF_MODIFIED, key, x, y, what);
    }
  }
  for (int j = 0; j < nb; j++) {
    if (kb[j].matched) continue;
    const pw_item *y = kb[j].it;
    if (y->blocked) add_change(d, PW_RDIFF_BLOCKED, kb[j].key, NULL, y, NULL);
    else if (y->source == PW_SRC_PROTOCOL) add_change(d, PW_RDIFF_ADDED, kb[j].key, NULL, y, NULL);
  }
}
