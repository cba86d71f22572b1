/*
** test_safety.c: every safety rule on both sides of its boundary, through
** the real engine (facts validation, knowledge, kernel) with proposed
** orders and no protocol (PW_EVAL_ORDERS_ONLY).
*/
#include <stdlib.h>
#include <string.h>
#include "engine.h"
#include "pwtest.h"

static pw_engine *E;

/* The rule that blocked `order` given facts (JSON members), "" if allowed. */
static const char *verdict(const char *members, const char *order) {
  static char rule[600];
  char json[2048];
  pw_error err;
  snprintf(json, sizeof json, "{%s%s\"proposed_orders\":[\"%s\"]}", members, *members ? "," : "", order);
  if (pw_engine_eval(E, json, strlen(json), PW_EVAL_ORDERS_ONLY, NULL, &err) != PW_OK) {
    snprintf(rule, sizeof rule, "error: %s", err.msg);
    return rule;
  }
  const pw_result *r = pw_engine_result(E);
  for (int i = 0; i < r->items.n; i++)
    if (!strcmp(r->items.v[i].id, order)) {
      snprintf(rule, sizeof rule, "%s", r->items.v[i].blocked ? r->items.v[i].rule : "");
      return rule;
    }
  return "not found";
}

static int missing_has(const char *fact) {
  const pw_result *r = pw_engine_result(E);
  for (int i = 0; i < r->missing.n; i++)
    if (!strcmp(r->missing.v[i].fact, fact)) return 1;
  return 0;
}

#define OK_FACTS "\"ecog\":1,\"metastatic\":true"
#define RAS_WT "\"molecular\":{\"kras\":\"wild_type\",\"nras\":\"wild_type\"}"

static void ecog(void) {
  CHECK_STR(verdict("\"ecog\":0", "FOLFIRI"), "");
  CHECK_STR(verdict("\"ecog\":2", "FOLFIRI"), "");
  CHECK_STR(verdict("\"ecog\":3", "FOLFIRI"), "ecog_gate");
  CHECK_STR(verdict("\"ecog\":4", "irinotecan"), "ecog_gate");
  CHECK_STR(verdict("\"ecog\":3", "bevacizumab"), "ecog_gate");
  CHECK_STR(verdict("\"ecog\":3,\"molecular\":{\"msi\":\"msi_high\"}", "pembrolizumab"), "ecog_gate");
  CHECK_STR(verdict("", "FOLFIRI"), "ecog_gate");
  CHECK(missing_has("ecog"));
  /* supportive care stays allowed at ECOG 3-4 and while unknown */
  CHECK_STR(verdict("\"ecog\":4", "zoledronic_acid"), "");
  CHECK_STR(verdict("\"ecog\":4", "denosumab"), "");
  CHECK_STR(verdict("\"ecog\":4", "best_supportive_care"), "");
  CHECK_STR(verdict("\"ecog\":4,\"metastases\":[{\"site\":\"bone\",\"symptoms\":[\"pain\"]}]", "palliative_rt_bone"), "");
  CHECK_STR(verdict("\"metastases\":[{\"site\":\"bone\",\"symptoms\":[\"pain\"]}]", "palliative_rt_bone"), "");
}

static void ras(void) {
  static const struct { const char *k, *n, *want; } cases[] = {
    {"wild_type", "wild_type", ""},
    {"wild_type", "mutant", "egfr_requires_ras_wt"},
    {"mutant", "wild_type", "egfr_requires_ras_wt"},
    {"mutant", "mutant", "egfr_requires_ras_wt"},
    {"unknown", "wild_type", "egfr_requires_ras_wt"},
    {"wild_type", "unknown", "egfr_requires_ras_wt"},
    {"unknown", "unknown", "egfr_requires_ras_wt"},
  };
  char m[256];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    snprintf(m, sizeof m, OK_FACTS ",\"molecular\":{\"kras\":\"%s\",\"nras\":\"%s\"}", cases[i].k, cases[i].n);
    CHECK_STR(verdict(m, "cetuximab"), cases[i].want);
    CHECK_STR(verdict(m, "panitumumab"), cases[i].want);
    CHECK_STR(verdict(m, "FOLFIRI+cetuximab"), cases[i].want);
    if (!strcmp(cases[i].k, "unknown")) CHECK(missing_has("molecular.kras"));
    if (!strcmp(cases[i].n, "unknown")) CHECK(missing_has("molecular.nras"));
  }
  CHECK_STR(verdict(OK_FACTS, "cetuximab"), "egfr_requires_ras_wt");   /* molecular absent */
}

static void single_biologic(void) {
  pw_error err;
  const char *j = "{" OK_FACTS "," RAS_WT ",\"planned_surgery_in_days\":null,"
                  "\"proposed_orders\":[\"FOLFIRI\",\"bevacizumab\",\"cetuximab\"]}";
  CHECK(pw_engine_eval(E, j, strlen(j), PW_EVAL_ORDERS_ONLY, NULL, &err) == PW_OK);
  const pw_result *r = pw_engine_result(E);
  CHECK(r->items.n == 3 && !r->items.v[0].blocked);
  CHECK(r->items.n == 3 && r->items.v[1].blocked && !strcmp(r->items.v[1].rule, "single_biologic"));
  CHECK(r->items.n == 3 && r->items.v[2].blocked && !strcmp(r->items.v[2].rule, "single_biologic"));
  CHECK_STR(verdict(OK_FACTS "," RAS_WT ",\"planned_surgery_in_days\":null", "FOLFIRI+bevacizumab+cetuximab"),
            "single_biologic");
  CHECK_STR(verdict(OK_FACTS "," RAS_WT ",\"planned_surgery_in_days\":null", "FOLFIRI+bevacizumab"), "");
}

static void oxaliplatin(void) {
  CHECK_STR(verdict(OK_FACTS ",\"neuropathy\":{\"grade\":1,\"persistent\":true}", "FOLFOX"), "");
  CHECK_STR(verdict(OK_FACTS ",\"neuropathy\":{\"grade\":2,\"persistent\":true}", "FOLFOX"), "oxaliplatin_neuropathy");
  CHECK_STR(verdict(OK_FACTS ",\"neuropathy\":{\"grade\":2,\"persistent\":false}", "FOLFOX"), "");
  CHECK_STR(verdict(OK_FACTS ",\"neuropathy\":{\"grade\":3,\"persistent\":true}", "oxaliplatin"), "oxaliplatin_neuropathy");
  CHECK_STR(verdict(OK_FACTS ",\"neuropathy\":{\"grade\":2}", "FOLFOX"), "oxaliplatin_neuropathy");
  CHECK(missing_has("neuropathy.persistent"));
  CHECK_STR(verdict(OK_FACTS, "FOLFOX"), "oxaliplatin_neuropathy");
  CHECK(missing_has("neuropathy.grade"));
  CHECK_STR(verdict(OK_FACTS, "FOLFIRI"), "");   /* no oxaliplatin in FOLFIRI */
}

static void surgery(void) {
  CHECK_STR(verdict(OK_FACTS ",\"planned_surgery_in_days\":42", "bevacizumab"), "bev_surgery_window");
  CHECK_STR(verdict(OK_FACTS ",\"planned_surgery_in_days\":43", "bevacizumab"), "");
  CHECK_STR(verdict(OK_FACTS ",\"planned_surgery_in_days\":0", "FOLFIRI+bevacizumab"), "bev_surgery_window");
  CHECK_STR(verdict(OK_FACTS ",\"planned_surgery_in_days\":null", "bevacizumab"), "");
  CHECK_STR(verdict(OK_FACTS, "bevacizumab"), "");   /* absent: allowed with a warning */
  const pw_result *r = pw_engine_result(E);
  CHECK(r->warnings.n == 1 && !strcmp(r->warnings.v[0].id, "bev_surgery_window"));
  CHECK_STR(verdict(OK_FACTS ",\"planned_surgery_in_days\":10", "FOLFIRI"), "");
}

static void local_rules(void) {
  CHECK_STR(verdict("\"ecog\":1,\"metastatic\":true", "long_course_chemoradiation"), "no_long_course_crt_metastatic");
  CHECK_STR(verdict("\"ecog\":1,\"metastatic\":false", "long_course_chemoradiation"), "");
  CHECK_STR(verdict("\"ecog\":1", "long_course_chemoradiation"), "no_long_course_crt_metastatic");
  CHECK(missing_has("metastatic"));
  CHECK_STR(verdict("\"primary\":{\"symptoms\":[]}", "primary_resection"), "primary_resection_needs_symptoms");
  CHECK_STR(verdict("\"primary\":{\"symptoms\":[\"bleeding\"]}", "primary_resection"), "primary_resection_needs_symptoms");
  CHECK_STR(verdict("\"primary\":{\"symptoms\":[\"obstruction\"]}", "primary_resection"), "");
  CHECK_STR(verdict("", "primary_resection"), "primary_resection_needs_symptoms");
  CHECK(missing_has("primary.symptoms"));
  CHECK_STR(verdict("\"primary\":{\"symptoms\":[]}", "primary_local_therapy"), "primary_local_therapy_needs_symptoms");
  CHECK_STR(verdict("\"primary\":{\"symptoms\":[\"intractable_pain\"]}", "primary_local_therapy"), "");
}

static void radiotherapy(void) {
  CHECK_STR(verdict("\"metastases\":[{\"site\":\"bone\",\"symptoms\":[\"fracture_risk\"]}]", "palliative_rt_bone"), "");
  CHECK_STR(verdict("\"metastases\":[{\"site\":\"bone\",\"symptoms\":[]}]", "palliative_rt_bone"), "rt_symptomatic_sites_only");
  CHECK_STR(verdict("\"metastases\":[{\"site\":\"liver\",\"symptoms\":[\"pain\"]}]", "palliative_rt_bone"), "rt_symptomatic_sites_only");
  CHECK_STR(verdict("", "palliative_rt_bone"), "rt_symptomatic_sites_only");
  CHECK(missing_has("metastases"));
  CHECK_STR(verdict("\"metastases\":[{\"site\":\"retroperitoneal\",\"symptoms\":[\"neurologic\"]}]",
                    "palliative_rt_retroperitoneal"), "");
  /* any recorded symptom is "pain or functional impairment" (issue 10) */
  CHECK_STR(verdict("\"metastases\":[{\"site\":\"retroperitoneal\",\"symptoms\":[\"lymphedema\"]}]",
                    "palliative_rt_retroperitoneal"), "");
  const char *ing = "\"metastases\":[{\"site\":\"inguinal_nodes\",\"symptoms\":[\"skin_breakdown\"]}]";
  char m[512];
  snprintf(m, sizeof m, "%s,\"prior_radiation_sites\":[\"pelvis\"]", ing);
  CHECK_STR(verdict(m, "palliative_rt_inguinal"), "");
  snprintf(m, sizeof m, "%s,\"prior_radiation_sites\":[\"pelvis\",\"groin\"]", ing);
  CHECK_STR(verdict(m, "palliative_rt_inguinal"), "groin_rt_prior_radiation");
  CHECK_STR(verdict(ing, "palliative_rt_inguinal"), "groin_rt_prior_radiation");
  CHECK(missing_has("prior_radiation_sites"));
}

static void targeted(void) {
  CHECK_STR(verdict(OK_FACTS ",\"molecular\":{\"msi\":\"msi_high\"}", "pembrolizumab"), "");
  CHECK_STR(verdict(OK_FACTS ",\"molecular\":{\"msi\":\"mss\"}", "nivolumab"), "checkpoint_requires_msi_high");
  CHECK_STR(verdict(OK_FACTS, "nivolumab"), "checkpoint_requires_msi_high");
  CHECK(missing_has("molecular.msi"));
  /* encorafenib alone is blocked beyond the guideline (BEACON): see beyond() */
  CHECK_STR(verdict(OK_FACTS ",\"molecular\":{\"braf_v600e\":\"mutant\"}", "encorafenib"), "encorafenib_needs_anti_egfr");
  CHECK_STR(verdict(OK_FACTS ",\"molecular\":{\"braf_v600e\":\"wild_type\"}", "encorafenib"), "encorafenib_requires_braf_v600e");
  CHECK_STR(verdict(OK_FACTS, "encorafenib"), "encorafenib_requires_braf_v600e");
  CHECK(missing_has("molecular.braf_v600e"));
  /* encorafenib+cetuximab needs both BRAF V600E and RAS wild type */
  CHECK_STR(verdict(OK_FACTS ",\"molecular\":{\"braf_v600e\":\"mutant\",\"kras\":\"wild_type\",\"nras\":\"wild_type\"}",
                    "encorafenib+cetuximab"), "");
  CHECK_STR(verdict(OK_FACTS ",\"molecular\":{\"braf_v600e\":\"mutant\"}", "encorafenib+cetuximab"), "egfr_requires_ras_wt");
}

PW_TEST_MAIN({
  pw_error err;
  E = pw_engine_new(NULL, &err);
  CHECK(E != NULL);
  if (!E) return 1;
  ecog();
  ras();
  single_biologic();
  oxaliplatin();
  surgery();
  local_rules();
  radiotherapy();
  targeted();
  pw_engine_free(E);
})
