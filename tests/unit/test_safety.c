/*
** test_safety.c: every safety rule on both sides of its boundary, through
** the real engine (facts validation, knowledge, kernel) with proposed
** orders and no protocol (PW_EVAL_ORDERS_ONLY).
*/
#include <stdlib.h>
#include <string.h>
#include "engine.h"
#include "pwtest.h"
#include "knowledge.h"
#include "safety.h"

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
  /* the vocabulary, with laterality; anything else may include the groin (issue 10) */
  static const struct { const char *sites, *want; int missing; } vocab[] = {
    {"\"left groin\"", "groin_rt_prior_radiation", 0},
    {"\"Right Inguinal\"", "groin_rt_prior_radiation", 0},
    {"\"bilateral groin\"", "groin_rt_prior_radiation", 0},
    {"\"pelvis\",\"mantle field\"", "groin_rt_prior_radiation", 1},
    {"\"left hemipelvis\"", "groin_rt_prior_radiation", 1},
    {"\"left pelvis\",\"spine\",\"chest\"", "", 0},
    {"\"bilateral retroperitoneum\"", "", 0},
  };
  for (size_t i = 0; i < sizeof vocab / sizeof vocab[0]; i++) {
    snprintf(m, sizeof m, "%s,\"prior_radiation_sites\":[%s]", ing, vocab[i].sites);
    CHECK_STR(verdict(m, "palliative_rt_inguinal"), vocab[i].want);
    CHECK(missing_has("prior_radiation_sites") == vocab[i].missing);
  }
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


/* ---- issue 10 ---- */

/* Evaluate facts with a list of orders (a JSON array body); 1 if it ran. */
static int run_orders(const char *members, const char *orders) {
  char json[2048];
  pw_error err;
  snprintf(json, sizeof json, "{%s%s\"proposed_orders\":[%s]}", members, *members ? "," : "", orders);
  return pw_engine_eval(E, json, strlen(json), PW_EVAL_ORDERS_ONLY, NULL, &err) == PW_OK;
}

static const pw_item *item(const char *id) {
  const pw_result *r = pw_engine_result(E);
  for (int i = 0; i < r->items.n; i++)
    if (!strcmp(r->items.v[i].id, id)) return &r->items.v[i];
  return NULL;
}

static const char *rule_of(const char *id) {
  const pw_item *it = item(id);
  return !it ? "not found" : it->blocked ? it->rule : "";
}

static const pw_note *warning(const char *id) {
  const pw_result *r = pw_engine_result(E);
  for (int i = 0; i < r->warnings.n; i++)
    if (r->warnings.v[i].id && !strcmp(r->warnings.v[i].id, id)) return &r->warnings.v[i];
  return NULL;
}

#define BONE(sym) "\"metastases\":[{\"site\":\"bone\",\"symptoms\":[" sym "]}]"

/* Any recorded symptom is pain or functional impairment; bone + neurological
** symptoms is an urgent warning, beyond the guideline (NICE NG234). */
static void symptoms(void) {
  CHECK_STR(verdict(BONE("\"neurologic\""), "palliative_rt_bone"), "");
  CHECK_STR(verdict(BONE("\"lymphedema\""), "palliative_rt_bone"), "");
  CHECK_STR(verdict(BONE(""), "palliative_rt_bone"), "rt_symptomatic_sites_only");
  CHECK_STR(verdict("\"metastases\":[{\"site\":\"bone\"}]", "palliative_rt_bone"), "rt_symptomatic_sites_only");
  CHECK_STR(verdict("\"metastases\":[{\"site\":\"inguinal_nodes\",\"symptoms\":[\"neurologic\"]}],"
                    "\"prior_radiation_sites\":[\"pelvis\"]", "palliative_rt_inguinal"), "");
  CHECK_STR(verdict(BONE("\"neurologic\""), "best_supportive_care"), "");
  const pw_note *w = warning("spinal_cord_compression");
  CHECK(w && w->level == PW_LEVEL_URGENT && w->beyond && strstr(w->beyond, "NG234"));
  CHECK(w && strstr(w->text, "#1") && strstr(w->text, "MRI"));
  CHECK_STR(verdict(BONE("\"pain\",\"fracture_risk\""), "best_supportive_care"), "");
  CHECK(warning("spinal_cord_compression") == NULL);
  CHECK_STR(verdict("\"metastases\":[{\"site\":\"retroperitoneal\",\"symptoms\":[\"neurologic\"]}]", "best_supportive_care"), "");
  CHECK(warning("spinal_cord_compression") == NULL);
  CHECK_STR(verdict("\"metastases\":[{\"site\":\"liver\",\"symptoms\":[]},{\"site\":\"bone\",\"symptoms\":[\"neurologic\"]}]",
                    "best_supportive_care"), "");
  w = warning("spinal_cord_compression");
  CHECK(w && strstr(w->text, "#2"));
  /* fracture risk in the spine is urgent too; not in the spine, or spine unknown (asked), is not */
  CHECK_STR(verdict("\"metastases\":[{\"site\":\"bone\",\"spine\":true,\"symptoms\":[\"fracture_risk\"]}]",
                    "best_supportive_care"), "");
  w = warning("spinal_cord_compression");
  CHECK(w && strstr(w->text, "spinal metastasis #1 at risk of fracture"));
  CHECK(!missing_has("metastases[0].spine"));
  CHECK_STR(verdict("\"metastases\":[{\"site\":\"bone\",\"spine\":false,\"symptoms\":[\"fracture_risk\"]}]",
                    "best_supportive_care"), "");
  CHECK(warning("spinal_cord_compression") == NULL);
  CHECK(!missing_has("metastases[0].spine"));
  CHECK_STR(verdict("\"metastases\":[{\"site\":\"bone\",\"spine\":\"unknown\",\"symptoms\":[\"fracture_risk\"]}]",
                    "best_supportive_care"), "");
  CHECK(warning("spinal_cord_compression") == NULL);
  CHECK(missing_has("metastases[0].spine"));
  CHECK_STR(verdict("\"metastases\":[{\"site\":\"bone\",\"spine\":true,\"symptoms\":[\"pain\"]}]",
                    "best_supportive_care"), "");
  CHECK(warning("spinal_cord_compression") == NULL);
  CHECK(!missing_has("metastases[0].spine"));
}

#define NOSURG "\"planned_surgery_in_days\":null"

/* Bevacizumab with a bleeding/obstructing primary or peritoneal obstruction. */
static void anti_vegf_gi(void) {
  CHECK_STR(verdict(OK_FACTS "," NOSURG ",\"primary\":{\"symptoms\":[\"bleeding\"]}", "bevacizumab"), "");
  const pw_note *w = warning("anti_vegf_perforation_bleeding");
  CHECK(w && strstr(w->text, "bleeding primary") && w->beyond && w->level == PW_LEVEL_PATIENT);
  CHECK_STR(verdict(OK_FACTS "," NOSURG ",\"primary\":{\"symptoms\":[\"obstruction\"]}", "FOLFIRI+bevacizumab"), "");
  CHECK(warning("anti_vegf_perforation_bleeding") != NULL);
  CHECK_STR(verdict(OK_FACTS "," NOSURG ",\"metastases\":[{\"site\":\"peritoneum\",\"symptoms\":[\"obstruction\"]}]",
                    "bevacizumab"), "");
  CHECK(warning("anti_vegf_perforation_bleeding") != NULL);
  /* the other side of each boundary */
  CHECK_STR(verdict(OK_FACTS "," NOSURG ",\"primary\":{\"symptoms\":[\"intractable_pain\"]}", "bevacizumab"), "");
  CHECK(warning("anti_vegf_perforation_bleeding") == NULL);
  CHECK_STR(verdict(OK_FACTS "," NOSURG ",\"metastases\":[{\"site\":\"peritoneum\",\"symptoms\":[\"pain\"]}]",
                    "bevacizumab"), "");
  CHECK(warning("anti_vegf_perforation_bleeding") == NULL);
  CHECK_STR(verdict(OK_FACTS "," NOSURG ",\"primary\":{\"symptoms\":[\"bleeding\"]}", "FOLFIRI"), "");
  CHECK(warning("anti_vegf_perforation_bleeding") == NULL);
  /* bevacizumab blocked (surgery in 30 days): nothing to warn about */
  CHECK_STR(verdict(OK_FACTS ",\"planned_surgery_in_days\":30,\"primary\":{\"symptoms\":[\"bleeding\"]}", "bevacizumab"),
            "bev_surgery_window");
  CHECK(warning("anti_vegf_perforation_bleeding") == NULL);
}

#define HIST(name, outcome) "\"prior_regimens\":[{\"name\":\"" name "\",\"line\":1,\"outcome\":\"" outcome "\"}]"
#define NEURO0 "\"neuropathy\":{\"grade\":0,\"persistent\":false}"

static void treatment_history(void) {
  CHECK_STR(verdict(OK_FACTS "," NEURO0 "," HIST("FOLFOX", "progression"), "FOLFOX"), "no_repeat_failed_regimen");
  CHECK_STR(verdict(OK_FACTS "," NEURO0 "," HIST("FOLFOX", "intolerance"), "FOLFOX"), "no_repeat_failed_regimen");
  CHECK_STR(verdict(OK_FACTS "," NEURO0 "," HIST("FOLFOX", "ongoing"), "FOLFOX"), "");
  CHECK_STR(verdict(OK_FACTS "," NEURO0 "," HIST("mFOLFOX6", "progression"), "FOLFOX"), "no_repeat_failed_regimen");
  CHECK_STR(verdict(OK_FACTS "," NEURO0 "," HIST("FOLFOX+bevacizumab", "progression"), "FOLFOX"), "no_repeat_failed_regimen");
  CHECK_STR(verdict(OK_FACTS "," NEURO0 "," HIST("CAPOX", "progression"), "FOLFOX"), "no_repeat_failed_regimen");
  CHECK_STR(verdict(OK_FACTS "," NEURO0 "," HIST("XELOX", "progression"), "CAPOX"), "no_repeat_failed_regimen");
  CHECK_STR(verdict(OK_FACTS "," NEURO0 "," HIST("FOLFOX", "progression"), "FOLFOXIRI"), "no_repeat_failed_regimen");
  /* not the same regimen: oxaliplatin alone, FOLFIRI, bevacizumab continued */
  CHECK_STR(verdict(OK_FACTS "," NEURO0 "," HIST("FOLFOX", "progression"), "oxaliplatin"), "");
  CHECK_STR(verdict(OK_FACTS "," NEURO0 "," HIST("FOLFOX", "progression"), "FOLFIRI"), "");
  CHECK_STR(verdict(OK_FACTS "," NOSURG "," HIST("FOLFOX+bevacizumab", "progression"), "FOLFIRI+bevacizumab"), "");
  /* wherever it is in the history, with or without a line */
  CHECK_STR(verdict(OK_FACTS ",\"prior_regimens\":[{\"name\":\"FOLFOX\",\"line\":1,\"outcome\":\"progression\"},"
                    "{\"name\":\"FOLFIRI+cetuximab\",\"outcome\":\"progression\"}]", "FOLFIRI"), "no_repeat_failed_regimen");
  CHECK_STR(verdict(OK_FACTS ",\"molecular\":{\"msi\":\"msi_high\"},\"prior_regimens\":[{\"name\":\"pembrolizumab\","
                    "\"line\":2,\"outcome\":\"progression\"}]", "pembrolizumab"), "no_repeat_failed_regimen");
  CHECK_STR(verdict(OK_FACTS ",\"molecular\":{\"msi\":\"msi_high\"},\"prior_regimens\":[{\"name\":\"pembrolizumab\","
                    "\"line\":2,\"outcome\":\"ongoing\"}]", "pembrolizumab"), "");
  /* a name pathwise cannot read is not guessed at */
  CHECK_STR(verdict(OK_FACTS "," NEURO0 "," HIST("trifluridine/tipiracil", "progression"), "FOLFOX"), "");
  uint32_t a = 0;
  CHECK(pw_knowledge_prior_regimen("mFOLFOX6+Bevacizumab", &a) == 0 && (a & PW_AGENT_BIT(PW_AG_OXALIPLATIN)) &&
        (a & PW_AGENT_BIT(PW_AG_BEVACIZUMAB)));
  CHECK(pw_knowledge_prior_regimen("capox", &a) == 0 && (a & PW_AGENT_BIT(PW_AG_CAPECITABINE)));
  CHECK(pw_knowledge_prior_regimen("FOLFOXX", &a) == -1);
  CHECK(pw_knowledge_prior_regimen("FOLFOX+", &a) == -1);
}

static void contradictions(void) {
  CHECK(run_orders("\"metastatic\":false," BONE("\"pain\""), ""));
  CHECK(warning("facts_contradiction") != NULL);
  CHECK(run_orders("\"metastatic\":false,\"metastases\":[]", ""));
  CHECK(warning("facts_contradiction") == NULL);
  CHECK(run_orders("\"prior_regimens\":[{\"name\":\"FOLFIRI\",\"line\":2,\"outcome\":\"ongoing\"}]", ""));
  CHECK(warning("facts_contradiction") != NULL);
  CHECK(run_orders("\"prior_regimens\":[{\"name\":\"FOLFOX\",\"line\":1,\"outcome\":\"progression\"},"
                   "{\"name\":\"FOLFIRI\",\"line\":2,\"outcome\":\"ongoing\"}]", ""));
  CHECK(warning("facts_contradiction") == NULL);
  CHECK(run_orders("\"prior_regimens\":[{\"name\":\"FOLFOX\",\"line\":1,\"outcome\":\"ongoing\"},"
                   "{\"name\":\"FOLFIRI\",\"line\":2,\"outcome\":\"ongoing\"}]", ""));
  CHECK(warning("facts_contradiction") != NULL);
}

static void unknowns(void) {
  CHECK_STR(verdict(OK_FACTS, "bevacizumab"), "");
  CHECK(missing_has("planned_surgery_in_days"));
  CHECK_STR(verdict(OK_FACTS "," NOSURG, "bevacizumab"), "");
  CHECK(!missing_has("planned_surgery_in_days"));
  CHECK_STR(verdict(OK_FACTS, "FOLFIRI"), "");
  CHECK(!missing_has("planned_surgery_in_days"));
}

#define BRAF_MUT_RAS_WT "\"molecular\":{\"braf_v600e\":\"mutant\",\"kras\":\"wild_type\",\"nras\":\"wild_type\"}"

/* Beyond the guideline: blocks carry their source and no citations. */
static void beyond(void) {
  CHECK_STR(verdict(OK_FACTS "," BRAF_MUT_RAS_WT, "encorafenib"), "encorafenib_needs_anti_egfr");
  const pw_item *it = item("encorafenib");
  CHECK(it && it->rule_beyond && strstr(it->rule_beyond, "BEACON") && it->rule_cites.n == 0);
  CHECK_STR(verdict(OK_FACTS "," BRAF_MUT_RAS_WT, "encorafenib+cetuximab"), "");
  CHECK_STR(verdict(OK_FACTS "," BRAF_MUT_RAS_WT, "encorafenib+panitumumab"), "");
  CHECK(run_orders(OK_FACTS "," BRAF_MUT_RAS_WT, "\"encorafenib\",\"cetuximab\""));
  CHECK_STR(rule_of("encorafenib"), "");
  CHECK_STR(rule_of("cetuximab"), "");
  /* the partner is blocked (RAS mutant): encorafenib is alone again */
  CHECK(run_orders(OK_FACTS ",\"molecular\":{\"braf_v600e\":\"mutant\",\"kras\":\"mutant\"}", "\"encorafenib\",\"cetuximab\""));
  CHECK_STR(rule_of("cetuximab"), "egfr_requires_ras_wt");
  CHECK_STR(rule_of("encorafenib"), "encorafenib_needs_anti_egfr");

  const char *msi = OK_FACTS ",\"molecular\":{\"msi\":\"msi_high\"}";
  CHECK_STR(verdict(msi, "pembrolizumab+nivolumab"), "single_pd1_inhibitor");
  CHECK_STR(verdict(msi, "nivolumab"), "");
  CHECK(run_orders(msi, "\"pembrolizumab\",\"nivolumab\""));
  CHECK_STR(rule_of("pembrolizumab"), "single_pd1_inhibitor");
  CHECK_STR(rule_of("nivolumab"), "single_pd1_inhibitor");
  CHECK(run_orders(msi, "\"pembrolizumab\",\"pembrolizumab\""));   /* the same drug twice is one PD-1 inhibitor */
  CHECK_STR(rule_of("pembrolizumab"), "");

  CHECK_STR(verdict("", "zoledronic_acid+denosumab"), "single_bone_agent");
  CHECK_STR(verdict("", "denosumab"), "");
  CHECK(run_orders("", "\"denosumab\",\"zoledronic_acid\""));
  CHECK_STR(rule_of("denosumab"), "single_bone_agent");
  CHECK_STR(rule_of("zoledronic_acid"), "single_bone_agent");

  /* oxaliplatin at grade 3-4, persistent or not; grade 2 stays the guideline's */
  CHECK_STR(verdict(OK_FACTS ",\"neuropathy\":{\"grade\":3,\"persistent\":false}", "oxaliplatin"), "oxaliplatin_neuropathy_grade_3_4");
  CHECK_STR(verdict(OK_FACTS ",\"neuropathy\":{\"grade\":4}", "oxaliplatin"), "oxaliplatin_neuropathy_grade_3_4");
  CHECK(!missing_has("neuropathy.persistent"));   /* persistence does not matter at grade 4 */
  CHECK_STR(verdict(OK_FACTS ",\"neuropathy\":{\"grade\":3,\"persistent\":true}", "oxaliplatin"), "oxaliplatin_neuropathy");
  CHECK_STR(verdict(OK_FACTS ",\"neuropathy\":{\"grade\":2,\"persistent\":false}", "oxaliplatin"), "");
  it = item("oxaliplatin");
  CHECK(it && !it->rule_beyond);

  /* warnings, not blocks */
  CHECK_STR(verdict(OK_FACTS "," BRAF_MUT_RAS_WT, "FOLFIRI+cetuximab"), "");
  const pw_note *w = warning("anti_egfr_braf_v600e");
  CHECK(w && w->beyond && strstr(w->text, "FOLFIRI+cetuximab"));
  CHECK(run_orders(OK_FACTS "," BRAF_MUT_RAS_WT, "\"FOLFIRI+cetuximab\",\"encorafenib\""));
  CHECK(warning("anti_egfr_braf_v600e") == NULL);
  CHECK_STR(verdict(OK_FACTS "," RAS_WT, "cetuximab"), "");
  CHECK(warning("anti_egfr_braf_v600e") == NULL);
  CHECK_STR(verdict(OK_FACTS "," RAS_WT ",\"primary\":{\"site\":\"colon_right\"}", "panitumumab"), "");
  w = warning("anti_egfr_right_sided");
  CHECK(w && w->beyond && strstr(w->beyond, "ASCO"));
  CHECK_STR(verdict(OK_FACTS "," RAS_WT ",\"primary\":{\"site\":\"colon_left\"}", "panitumumab"), "");
  CHECK(warning("anti_egfr_right_sided") == NULL);
  CHECK_STR(verdict(OK_FACTS "," BRAF_MUT_RAS_WT ",\"primary\":{\"site\":\"colon_right\"}", "encorafenib+cetuximab"), "");
  CHECK(warning("anti_egfr_right_sided") == NULL);

  /* the rule table: a guideline rule cites and quotes; a rule beyond it names a source */
  int nbeyond = 0;
  for (int i = 0; pw_safety_rule(i); i++) {
    const pw_rule_info *ri = pw_safety_rule(i);
    if (ri->beyond) nbeyond++;
    CHECK(ri->beyond ? (ri->cites.n == 0 && !ri->guideline) : (ri->cites.n > 0 && ri->guideline != NULL));
  }
  CHECK(nbeyond == 4);
}

/* Which of two conflicting items came first never changes the outcome. */
static void order_independent(void) {
  static const char *const pairs[][2] = {
    {"\"bevacizumab\",\"cetuximab\"", "\"cetuximab\",\"bevacizumab\""},
    {"\"FOLFIRI+bevacizumab\",\"panitumumab\"", "\"panitumumab\",\"FOLFIRI+bevacizumab\""},
  };
  for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
    for (int j = 0; j < 2; j++) {
      CHECK(run_orders(OK_FACTS "," RAS_WT "," NOSURG, pairs[i][j]));
      const pw_result *r = pw_engine_result(E);
      CHECK(r->items.n == 2 && r->items.v[0].blocked && r->items.v[1].blocked);
      CHECK(r->items.n == 2 && !strcmp(r->items.v[0].rule, "single_biologic") && !strcmp(r->items.v[1].rule, "single_biologic"));
    }
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
  symptoms();
  anti_vegf_gi();
  treatment_history();
  contradictions();
  unknowns();
  beyond();
  order_independent();
  pw_engine_free(E);
})
