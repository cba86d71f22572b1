/*
** whatif_count.c: what-if counts over a cohort (see whatif_count.h).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "jsonw.h"
#include "whatif_count.h"

/* "metastases[2].symptoms" -> "metastases[].symptoms": a cohort counts by field. */
static void field_of(const char *id, char *out, size_t n) {
  size_t k = 0;
  for (const char *p = id; *p && k + 1 < n; p++) {
    out[k++] = *p;
    if (*p == '[') while (p[1] >= '0' && p[1] <= '9') p++;
  }
  out[k] = '\0';
}

void exp_wicount_add(exp_wicount *c, const pw_whatif *w) {
  char key[160], ids[64][64];
  int impact[64], n = 0;
  c->cases++;
  c->evaluations += (uint64_t)pw_whatif_evaluations(w);
  c->microseconds += pw_whatif_elapsed_us(w);
  for (int i = 0; i < pw_whatif_count(w); i++) {   /* once per case and field, its largest impact */
    char id[64];
    int j = 0;
    field_of(pw_whatif_id(w, i), id, sizeof id);
    while (j < n && strcmp(ids[j], id)) j++;
    if (j == n) {
      if (n == 64) continue;
      snprintf(ids[n], sizeof ids[n], "%s", id);
      impact[n++] = PW_WI_NONE;
    }
    if (pw_whatif_impact(w, i) > impact[j]) impact[j] = pw_whatif_impact(w, i);
  }
  int changing = 0;
  for (int j = 0; j < n; j++) changing |= impact[j] != PW_WI_NONE;
  c->cases_tried += n > 0;
  c->cases_changing += (uint64_t)changing;
  for (int j = 0; j < n; j++) {
    exp_count_add(&c->explored, ids[j], 1);
    if (impact[j] == PW_WI_NONE) continue;
    exp_count_add(&c->changes, ids[j], 1);
    snprintf(key, sizeof key, "%.63s|%s", ids[j], pw_whatif_impact_name(impact[j]));
    exp_count_add(&c->by_impact, key, 1);
  }
}

void exp_wicount_merge(exp_wicount *dst, const exp_wicount *src) {
  exp_count_merge(&dst->explored, &src->explored);
  exp_count_merge(&dst->changes, &src->changes);
  exp_count_merge(&dst->by_impact, &src->by_impact);
  dst->cases += src->cases;
  dst->evaluations += src->evaluations;
  dst->microseconds += src->microseconds;
  dst->cases_tried += src->cases_tried;
  dst->cases_changing += src->cases_changing;
}

void exp_wicount_free(exp_wicount *c) {
  exp_count_free(&c->explored);
  exp_count_free(&c->changes);
  exp_count_free(&c->by_impact);
}

static uint64_t impact_count(const exp_wicount *c, const char *id, int impact) {
  char key[160];
  snprintf(key, sizeof key, "%s|%s", id, pw_whatif_impact_name(impact));
  return exp_count_get(&c->by_impact, key);
}

void exp_wicount_text(pw_buf *b, const exp_wicount *c) {
  size_t n;
  exp_count_entry *v = exp_count_sorted(&c->explored, &n);
  double per = c->cases ? (double)c->evaluations / (double)c->cases : 0.0;
  double us = c->cases ? (double)c->microseconds / (double)c->cases : 0.0;
  pw_buf_addf(b, "what would change the plan (--what-if: %llu evaluations; per case %.1f evaluations, %.0f us):\n",
              (unsigned long long)c->evaluations, per, us);
  pw_buf_addf(b, "  %-30s %9s %9s %7s %9s %9s %9s\n", "fact or panel", "unknown", "changes", "%", "pathway", "regimen", "option");
  if (n == 0) pw_buf_adds(b, "  (no case had a missing or unknown fact to try)\n");
  for (size_t i = 0; i < n; i++) {
    uint64_t ch = exp_count_get(&c->changes, v[i].key);
    pw_buf_addf(b, "  %-30s %9llu %9llu %6.1f%% %9llu %9llu %9llu\n", v[i].key, (unsigned long long)v[i].n,
                (unsigned long long)ch, exp_pct(ch, v[i].n),
                (unsigned long long)impact_count(c, v[i].key, PW_WI_PATHWAY),
                (unsigned long long)impact_count(c, v[i].key, PW_WI_REGIMEN),
                (unsigned long long)impact_count(c, v[i].key, PW_WI_OPTION));
  }
  if (n) pw_buf_adds(b, "  (unknown: cases where it was missing or unknown; changes: of those, the cases where\n"
                        "   some value would change the plan, counted under its largest impact)\n");
  pw_buf_addf(b, "  cases with a missing fact to try %llu (%.1f%%); where one would change the plan %llu (%.1f%%)\n",
              (unsigned long long)c->cases_tried, exp_pct(c->cases_tried, c->cases),
              (unsigned long long)c->cases_changing, exp_pct(c->cases_changing, c->cases));
  free(v);
}

void exp_wicount_json(pw_buf *b, const exp_wicount *c) {
  size_t n;
  exp_count_entry *v = exp_count_sorted(&c->explored, &n);
  pw_jsonw j;
  pw_jsonw_init(&j, b);
  pw_jsonw_begin_object(&j);
  pw_jsonw_field_int(&j, "cases", (long long)c->cases);
  pw_jsonw_field_int(&j, "evaluations", (long long)c->evaluations);
  pw_jsonw_field_int(&j, "microseconds", (long long)c->microseconds);
  pw_jsonw_field_int(&j, "cases_tried", (long long)c->cases_tried);
  pw_jsonw_field_int(&j, "cases_changing", (long long)c->cases_changing);
  pw_jsonw_key(&j, "facts");
  pw_jsonw_begin_object(&j);
  for (size_t i = 0; i < n; i++) {
    pw_jsonw_key(&j, v[i].key);
    pw_jsonw_begin_object(&j);
    pw_jsonw_field_int(&j, "unknown", (long long)v[i].n);
    pw_jsonw_field_int(&j, "changes", (long long)exp_count_get(&c->changes, v[i].key));
    pw_jsonw_field_int(&j, "pathway", (long long)impact_count(c, v[i].key, PW_WI_PATHWAY));
    pw_jsonw_field_int(&j, "regimen", (long long)impact_count(c, v[i].key, PW_WI_REGIMEN));
    pw_jsonw_field_int(&j, "option", (long long)impact_count(c, v[i].key, PW_WI_OPTION));
    pw_jsonw_end_object(&j);
  }
  pw_jsonw_end_object(&j);
  pw_jsonw_end_object(&j);
  free(v);
}
