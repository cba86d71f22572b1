/*
** safety.c: the safety kernel; see safety.h.
*/
#include <stdio.h>
#include <string.h>
#include "engine.h"
#include "knowledge.h"
#include "safety.h"

#define C2(a, b) {2, {a, b}}
#define C1(a) {1, {a}}
#define C3(a, b, c) {3, {a, b, c}}

typedef struct kctx {
  const pw_facts *f;
  pw_result *r;
  const pw_item *it;
  char reason[240];
} kctx;

typedef int (*rule_fn)(kctx *k);

/* ---- missing facts: what to order ---- */

typedef struct fact_test { const char *fact, *order, *test; pw_cites cites; } fact_test;

static const fact_test tests[] = {
  {"ecog", NULL, "ECOG performance status assessment", C2(1, 3)},
  {"molecular.kras", "ras_testing", "KRAS and NRAS mutation testing (exons 2, 3, 4)", C2(2, 4)},
  {"molecular.nras", "ras_testing", "KRAS and NRAS mutation testing (exons 2, 3, 4)", C2(2, 4)},
  {"molecular.braf_v600e", "braf_testing", "BRAF V600E mutation testing", C1(4)},
  {"molecular.msi", "msi_testing", "microsatellite instability (MSI) testing", C1(3)},
  {"neuropathy.grade", NULL, "peripheral neuropathy assessment (grade, persistent or resolved)", C1(1)},
  {"neuropathy.persistent", NULL, "peripheral neuropathy assessment (grade, persistent or resolved)", C1(1)},
  {"metastatic", NULL, "staging CT of chest, abdomen and pelvis", C2(1, 3)},
  {"metastases", NULL, "imaging and clinical assessment of each metastatic site and its symptoms", C2(1, 3)},
  {"primary.symptoms", NULL, "clinical assessment of the primary site (bleeding, obstruction, pain)", C2(1, 3)},
  {"prior_radiation_sites", NULL, "review of prior radiotherapy fields (groin)", C1(3)},
  {"prior_regimens", NULL, "review of prior systemic treatment history", C2(1, 3)},
  {"planned_surgery_in_days", NULL, "confirm whether any surgery is planned and when (bevacizumab needs 6 weeks clear of it)", C2(2, 4)},
};

void pw_safety_missing(pw_result *r, const char *fact, const char *why, pw_source src) {
  pw_missing *m = pw_result_add_missing(r, fact);
  if (!m || m->why) return;          /* already reported */
  m->why = why;
  m->source = src;
  for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
    if (!strcmp(tests[i].fact, fact)) {
      m->order = tests[i].order;
      m->test = tests[i].test;
      m->cites = tests[i].cites;
    }
  size_t n = strlen(fact);
  if (!strncmp(fact, "metastases[", 11) && n > 9 && !strcmp(fact + n - 9, ".symptoms")) {
    m->test = "clinical assessment of this metastatic site: pain or functional impairment";
    m->cites = (pw_cites)C2(1, 3);
  } else if (!strncmp(fact, "metastases[", 11) && n > 6 && !strcmp(fact + n - 6, ".spine")) {
    m->test = "imaging: does this bone metastasis involve the spine?";
    m->cites = (pw_cites)C1(3);   /* the guideline names spinal cord compression among skeletal events */
  }
}

static int missing(kctx *k, const char *fact, const char *fmt, const char *what) {
  char *why = pw_arena_alloc(&k->r->arena, 200);
  if (why) snprintf(why, 200, fmt, what);
  pw_safety_missing(k->r, fact, why, PW_SRC_ENGINE);
  return 1;
}

static uint32_t cls(pw_class c) { return pw_knowledge_class_agents(c); }
static int has(const pw_item *it, pw_class c) { return (it->agents & cls(c)) != 0; }

/* ---- the rules ---- */

static int ecog_gate(kctx *k) {
  uint32_t systemic = cls(PW_CLS_CYTOTOXIC) | cls(PW_CLS_ANTI_VEGF) | cls(PW_CLS_ANTI_EGFR) |
                      cls(PW_CLS_BRAF_INHIBITOR) | cls(PW_CLS_PD1_INHIBITOR);
  if (!(k->it->agents & systemic)) return 0;
  if (k->f->ecog == PW_UNKNOWN) {
    snprintf(k->reason, sizeof k->reason,
             "ECOG performance status is unknown: no anticancer systemic therapy until it is assessed");
    return missing(k, "ecog", "needed before %s can be offered (rule ecog_gate)", k->it->id);
  }
  if (k->f->ecog >= 3) {
    snprintf(k->reason, sizeof k->reason,
             "ECOG %d: best supportive care only; chemotherapy and biologics are for ECOG 0-2", k->f->ecog);
    return 1;
  }
  return 0;
}

static int egfr_requires_ras_wt(kctx *k) {
  const pw_facts *f = k->f;
  if (!has(k->it, PW_CLS_ANTI_EGFR)) return 0;
  if (f->kras == PW_MOL_WILD_TYPE && f->nras == PW_MOL_WILD_TYPE) return 0;
  snprintf(k->reason, sizeof k->reason,
           "anti-EGFR therapy needs KRAS and NRAS both wild type; KRAS is %s, NRAS is %s",
           pw_facts_mol_name(f->kras), pw_facts_mol_name(f->nras));
  if (f->kras == PW_MOL_UNKNOWN) missing(k, "molecular.kras", "needed before %s (rule egfr_requires_ras_wt)", k->it->id);
  if (f->nras == PW_MOL_UNKNOWN) missing(k, "molecular.nras", "needed before %s (rule egfr_requires_ras_wt)", k->it->id);
  return 1;
}

static int single_biologic_item(kctx *k) {
  if (!has(k->it, PW_CLS_ANTI_VEGF) || !has(k->it, PW_CLS_ANTI_EGFR)) return 0;
  snprintf(k->reason, sizeof k->reason,
           "combines an anti-VEGF and an anti-EGFR antibody: they are alternatives, never given together");
  return 1;
}

static int oxaliplatin_neuropathy(kctx *k) {
  const pw_facts *f = k->f;
  if (!(k->it->agents & PW_AGENT_BIT(PW_AG_OXALIPLATIN))) return 0;
  if (f->neuropathy.grade == PW_UNKNOWN) {
    snprintf(k->reason, sizeof k->reason, "neuropathy grade after FOLFOX is unknown: oxaliplatin waits for it");
    return missing(k, "neuropathy.grade", "needed before %s (rule oxaliplatin_neuropathy)", k->it->id);
  }
  if (f->neuropathy.grade < 2) return 0;
  if (f->neuropathy.persistent == 0) return 0;
  if (f->neuropathy.persistent == PW_UNKNOWN && f->neuropathy.grade >= 3) return 0;   /* oxaliplatin_neuropathy_grade_3_4 */
  if (f->neuropathy.persistent == PW_UNKNOWN) {
    snprintf(k->reason, sizeof k->reason,
             "grade %d neuropathy, not known whether persistent: oxaliplatin waits for it", f->neuropathy.grade);
    return missing(k, "neuropathy.persistent", "needed before %s (rule oxaliplatin_neuropathy)", k->it->id);
  }
  snprintf(k->reason, sizeof k->reason,
           "persistent grade %d neuropathy from prior FOLFOX: do not continue oxaliplatin", f->neuropathy.grade);
  return 1;
}

static int bev_surgery_window(kctx *k) {
  const pw_facts *f = k->f;
  if (!(k->it->agents & PW_AGENT_BIT(PW_AG_BEVACIZUMAB))) return 0;
  if (f->surgery != PW_SURGERY_PLANNED || f->surgery_days > 42) return 0;
  snprintf(k->reason, sizeof k->reason,
           "surgery planned in %d days: no bevacizumab within 6 weeks (42 days) of planned surgery",
           f->surgery_days);
  return 1;
}

static int no_long_course_crt(kctx *k) {
  if (k->it->action != PW_ACT_LONG_COURSE_CRT) return 0;
  if (k->f->metastatic == 0) return 0;
  if (k->f->metastatic == PW_UNKNOWN) {
    snprintf(k->reason, sizeof k->reason, "metastatic status unknown: long-course chemoradiotherapy waits for staging");
    return missing(k, "metastatic", "needed before %s (rule no_long_course_crt_metastatic)", k->it->id);
  }
  snprintf(k->reason, sizeof k->reason,
           "metastatic disease: long-course chemoradiotherapy delays systemic therapy without survival benefit");
  return 1;
}

static int primary_resection(kctx *k) {
  const pw_facts *f = k->f;
  if (k->it->action != PW_ACT_PRIMARY_RESECTION) return 0;
  if (!f->primary.symptoms_known) {
    snprintf(k->reason, sizeof k->reason, "symptoms of the primary are unknown: no further surgery on it");
    return missing(k, "primary.symptoms", "needed before %s (rule primary_resection_needs_symptoms)", k->it->id);
  }
  if (f->primary.symptoms & PW_PSYM_OBSTRUCTION) return 0;
  const char *after = f->primary.resected == 1 && f->primary.prior_pelvic_radiation == 1 ? " after resection and radiation"
                    : f->primary.resected == 1 ? " after its resection"
                    : f->primary.resected == 0 ? " on the primary in place: metastatic disease is the dominant problem"
                    : "";
  snprintf(k->reason, sizeof k->reason, "no malignant obstruction of the primary: no further surgery%s", after);
  return 1;
}

static int primary_local_therapy(kctx *k) {
  const pw_facts *f = k->f;
  if (k->it->action != PW_ACT_PRIMARY_LOCAL_THERAPY) return 0;
  if (!f->primary.symptoms_known) {
    snprintf(k->reason, sizeof k->reason, "symptoms of the primary are unknown: local therapy only for symptoms");
    return missing(k, "primary.symptoms", "needed before %s (rule primary_local_therapy_needs_symptoms)", k->it->id);
  }
  if (f->primary.symptoms) return 0;
  snprintf(k->reason, sizeof k->reason,
           "the primary has no bleeding, obstruction or intractable pain: local therapy is not indicated");
  return 1;
}

/* The site a palliative RT action treats. Any recorded symptom makes a
** site symptomatic: the guideline's "pain or functional impairment". */
static int rt_site(int action) {
  switch (action) {
  case PW_ACT_RT_BONE: return PW_SITE_BONE;
  case PW_ACT_RT_INGUINAL: return PW_SITE_INGUINAL;
  case PW_ACT_RT_RETROPERITONEAL: return PW_SITE_RETROPERITONEAL;
  default: return 0;
  }
}

static int rt_symptomatic_sites_only(kctx *k) {
  const pw_facts *f = k->f;
  int site = rt_site(k->it->action);
  if (!site) return 0;
  if (!f->mets_known) {
    snprintf(k->reason, sizeof k->reason, "metastatic sites are unknown: radiotherapy only for symptomatic sites");
    return missing(k, "metastases", "needed before %s (rule rt_symptomatic_sites_only)", k->it->id);
  }
  int t = k->it->target;
  if (t > 0) {
    if (t > f->nmets || f->mets[t - 1].site != site) {
      snprintf(k->reason, sizeof k->reason, "target metastases[%d] is not a %s site", t - 1, pw_facts_site_name(site));
      return 1;
    }
    const pw_met_fact *m = &f->mets[t - 1];
    if (m->symptoms) return 0;
    if (!m->symptoms_known) {
      snprintf(k->reason, sizeof k->reason, "symptoms of metastases[%d] (%s) are not recorded: radiotherapy is for "
               "symptomatic sites only", t - 1, pw_facts_site_name(site));
      char fact[48];
      snprintf(fact, sizeof fact, "metastases[%d].symptoms", t - 1);
      return missing(k, fact, "needed before %s (rule rt_symptomatic_sites_only)", k->it->id);
    }
    snprintf(k->reason, sizeof k->reason,
             "metastases[%d] (%s) has no recorded symptom (pain or functional impairment): radiotherapy is for "
             "symptomatic sites only", t - 1, pw_facts_site_name(site));
    return 1;
  }
  for (int i = 0; i < f->nmets; i++)
    if (f->mets[i].site == site && f->mets[i].symptoms) return 0;
  snprintf(k->reason, sizeof k->reason,
           "no symptomatic %s site: radiotherapy is not routine treatment of asymptomatic metastases",
           pw_facts_site_name(site));
  return 1;
}

static int groin_rt_prior_radiation(kctx *k) {
  if (k->it->action != PW_ACT_RT_INGUINAL) return 0;
  if (!k->f->rt_known) {
    snprintf(k->reason, sizeof k->reason,
             "prior radiotherapy fields are unknown: the 50 Gy inguinal course needs no prior groin radiation");
    return missing(k, "prior_radiation_sites", "needed before %s (rule groin_rt_prior_radiation)", k->it->id);
  }
  int g = pw_facts_prior_groin_rt(k->f);   /* 1 groin or inguinal, 2 a site outside the vocabulary */
  if (!g) return 0;
  if (g == 2) {
    snprintf(k->reason, sizeof k->reason,
             "a prior radiotherapy site is not recognised and may include the groin: the 50 Gy course "
             "is only for a non-irradiated groin; radiation oncology reviews the prior fields");
    return missing(k, "prior_radiation_sites", "a site outside the vocabulary may include the groin (rule %s)",
                   "groin_rt_prior_radiation");
  }
  snprintf(k->reason, sizeof k->reason,
           "prior groin radiation: the 50 Gy in 25 fractions course is only for a non-irradiated groin; "
           "re-irradiation needs radiation oncology specialist review");
  return 1;
}

static int checkpoint_requires_msi_high(kctx *k) {
  if (!has(k->it, PW_CLS_PD1_INHIBITOR)) return 0;
  if (k->f->msi == PW_MSI_HIGH) return 0;
  snprintf(k->reason, sizeof k->reason, "checkpoint inhibitors are for MSI-high tumours; MSI is %s",
           pw_facts_msi_name(k->f->msi));
  if (k->f->msi == PW_MSI_UNKNOWN)
    missing(k, "molecular.msi", "needed before %s (rule checkpoint_requires_msi_high)", k->it->id);
  return 1;
}

static int encorafenib_requires_braf(kctx *k) {
  if (!has(k->it, PW_CLS_BRAF_INHIBITOR)) return 0;
  if (k->f->braf_v600e == PW_MOL_MUTANT) return 0;
  snprintf(k->reason, sizeof k->reason, "encorafenib is for BRAF V600E-mutant tumours; BRAF V600E is %s",
           k->f->braf_v600e == PW_MOL_WILD_TYPE ? "absent (wild type)" : "unknown");
  if (k->f->braf_v600e == PW_MOL_UNKNOWN)
    missing(k, "molecular.braf_v600e", "needed before %s (rule encorafenib_requires_braf_v600e)", k->it->id);
  return 1;
}

/* ---- rules beyond the guideline (each names its source) ---- */

static int oxaliplatin_grade_3_4(kctx *k) {
  if (!(k->it->agents & PW_AGENT_BIT(PW_AG_OXALIPLATIN)) || k->f->neuropathy.grade < 3) return 0;
  snprintf(k->reason, sizeof k->reason, "grade %d neuropathy: no oxaliplatin at grade 3 or 4, persistent or not",
           k->f->neuropathy.grade);
  return 1;
}

static int count_bits(uint32_t v) {
  int n = 0;
  for (; v; v &= v - 1) n++;
  return n;
}

static int single_pd1_item(kctx *k) {
  if (count_bits(k->it->agents & cls(PW_CLS_PD1_INHIBITOR)) < 2) return 0;
  snprintf(k->reason, sizeof k->reason, "two PD-1 inhibitors in one item: at most one PD-1 inhibitor is given");
  return 1;
}

static int single_bone_item(kctx *k) {
  if (count_bits(k->it->agents & cls(PW_CLS_BONE_AGENT)) < 2) return 0;
  snprintf(k->reason, sizeof k->reason, "zoledronic acid and denosumab in one item: at most one bone-modifying agent");
  return 1;
}

/* A regimen already progressed on or stopped for intolerance is not started
** again. What makes it "the same": its chemotherapy backbone when it had
** one (FOLFOX after FOLFOX+bevacizumab failed is FOLFOX again; FOLFIRI with
** bevacizumab continued is not), else all of its drugs (pembrolizumab). */
static int no_repeat_failed_regimen(kctx *k) {
  const pw_facts *f = k->f;
  uint32_t chemo = cls(PW_CLS_CYTOTOXIC) | PW_AGENT_BIT(PW_AG_FLUOROURACIL);
  uint32_t mine = pw_knowledge_active(k->it->agents);
  if (!mine || !f->regimens_known) return 0;
  for (int i = 0; i < f->nregimens; i++) {
    const pw_regimen_fact *g = &f->regimens[i];
    uint32_t theirs;
    if (!g->name || (g->outcome != PW_OUTCOME_PROGRESSION && g->outcome != PW_OUTCOME_INTOLERANCE)) continue;
    if (pw_knowledge_prior_regimen(g->name, &theirs)) continue;   /* not known: the protocol asks for review */
    theirs = pw_knowledge_active(theirs);
    if (theirs & chemo) theirs &= chemo;
    if (!theirs || (mine & theirs) != theirs) continue;
    snprintf(k->reason, sizeof k->reason, "prior_regimens[%d] (%.60s) already %s: its %s not started again",
             i, g->name, g->outcome == PW_OUTCOME_PROGRESSION ? "progressed" : "was stopped for intolerance",
             theirs & chemo ? "chemotherapy backbone is" : "drugs are");
    return 1;
  }
  return 0;
}

typedef struct rule { pw_rule_info info; rule_fn fn; } rule;

/* The guideline sentences each rule enforces, verbatim (spec/guideline.txt). */
#define G_ECOG_GATE \
  "Second-line chemotherapy should only be offered if the patient maintains good " \
  "performance status (ECOG 0-2). Patients with poor performance status (ECOG 3-4) should " \
  "receive best supportive care only, as aggressive chemotherapy provides no survival " \
  "benefit and worsens quality of life."
#define G_EGFR_REQUIRES_RAS_WT \
  "If RAS wild-type (KRAS and NRAS), consider cetuximab or panitumumab (EGFR inhibitors) " \
  "instead of bevacizumab, but these are contraindicated in RAS-mutant tumors. Do not use " \
  "EGFR inhibitors without confirming RAS wild-type status, as they are harmful in " \
  "RAS-mutant disease."
#define G_SINGLE_BIOLOGIC \
  "If RAS wild-type (KRAS and NRAS), consider cetuximab or panitumumab (EGFR inhibitors) " \
  "instead of bevacizumab, but these are contraindicated in RAS-mutant tumors."
#define G_OXALIPLATIN_NEUROPATHY \
  "Do not continue oxaliplatin if the patient has developed grade 2 or higher persistent " \
  "neuropathy from prior FOLFOX."
#define G_BEV_SURGERY_WINDOW \
  "Do not administer bevacizumab within 6 weeks of any planned surgery due to wound healing " \
  "complications."
#define G_NO_LONG_COURSE_CRT_METASTATIC \
  "Do not use long-course chemoradiotherapy (50 Gy with concurrent 5-FU) in the metastatic " \
  "setting, as this delays systemic therapy without survival benefit."
#define G_PRIMARY_RESECTION_NEEDS_SYMPTOMS \
  "Do not perform additional surgery on the rectal primary, as the patient has already had " \
  "resection and radiation, and metastatic disease is the dominant problem. Endorectal " \
  "stenting, laser ablation, or palliative resection are options for malignant obstruction, " \
  "but should be avoided unless absolutely necessary given prior surgery and radiation."
#define G_PRIMARY_LOCAL_THERAPY_NEEDS_SYMPTOMS \
  "Only consider additional local therapy (stoma formation, laser ablation, or repeat " \
  "radiotherapy) if the primary site becomes symptomatic with bleeding, obstruction, or " \
  "intractable pain."
#define G_RT_SYMPTOMATIC_SITES_ONLY \
  "Radiotherapy should be used selectively and only for symptomatic control, not as routine " \
  "treatment of asymptomatic metastases."
#define G_GROIN_RT_PRIOR_RADIATION \
  "Symptomatic inguinal lymphadenopathy causing pain, skin breakdown, or lymphedema can be " \
  "treated with palliative radiotherapy (e.g., 50 Gy in 25 fractions if no prior groin " \
  "radiation)."
#define G_CHECKPOINT_REQUIRES_MSI_HIGH \
  "Microsatellite instability (MSI) testing is essential, as MSI-high tumors may respond " \
  "dramatically to immune checkpoint inhibitors (pembrolizumab, nivolumab), which would be " \
  "preferred over chemotherapy."
#define G_ENCORAFENIB_REQUIRES_BRAF_V600E \
  "BRAF V600E mutation testing should be performed, as BRAF-mutant tumors have worse " \
  "prognosis and may benefit from specific targeted combinations (encorafenib plus " \
  "cetuximab)."

#define G_NO_REPEAT_FAILED_REGIMEN \
  "FOLFIRI (5-FU/leucovorin/irinotecan) is the appropriate second-line regimen after FOLFOX " \
  "failure, provided the patient maintains good performance status."

/* Sources of the rules and warnings beyond the guideline (clinical.md (b)). */
#define B_BEACON \
  "BEACON CRC (Kopetz et al., N Engl J Med 2019;381:1632) and the ASCO 2022 guideline (Morris et al., " \
  "J Clin Oncol 2023;41:678): encorafenib is given with cetuximab, never alone"
#define B_PD1 \
  "PD-1 inhibitor labels and trials (KEYNOTE-177, CheckMate 142 and 8HW): one PD-1 antibody at a time; " \
  "two antibodies against the same target add toxicity without evidence of benefit"
#define B_BONE \
  "zoledronic acid and denosumab labels and bone-health guidance (Support Care Cancer 2021): alternatives, " \
  "never combined (added hypocalcaemia and jaw osteonecrosis risk)"
#define B_OXALI \
  "oxaliplatin dose-modification practice (prescribing information, trial dose-modification tables): stop " \
  "oxaliplatin for grade 3 or 4 sensory neuropathy, whether or not it persists"
#define B_BRAF_EGFR \
  "NCCN KRAS/NRAS/BRAF testing guidance (2020) and BEACON CRC (Kopetz et al., N Engl J Med 2019): a BRAF " \
  "V600E tumour rarely responds to an anti-EGFR antibody unless a BRAF inhibitor is given with it"
#define B_SIDE \
  "ASCO 2022 guideline (Morris et al., J Clin Oncol 2023;41:678): anti-EGFR antibodies for left-sided RAS " \
  "wild-type tumours; right-sided tumours benefit little (chemotherapy with bevacizumab preferred)"
#define B_BEV_GI \
  "bevacizumab prescribing information (boxed warnings): gastrointestinal perforation and severe or fatal " \
  "haemorrhage; perforation risk is higher with bowel obstruction and after pelvic radiation"
#define B_MSCC \
  "NICE guideline NG234 (2023), spinal metastases and metastatic spinal cord compression: same-day " \
  "assessment, whole-spine MRI, corticosteroids, urgent radiotherapy and spinal surgery opinion"

static const rule rules[] = {
  {{"ecog_gate", "No cytotoxic chemotherapy, anti-VEGF, anti-EGFR, BRAF or PD-1 agent at ECOG 3-4, nor while ECOG is unknown; supportive care stays allowed.",
    "cytotoxic, anti_vegf, anti_egfr, braf_inhibitor, pd1_inhibitor agents", C2(1, 3),
    G_ECOG_GATE, NULL}, ecog_gate},
  {{"egfr_requires_ras_wt", "Cetuximab and panitumumab only when KRAS and NRAS are both known wild type; unknown blocks.",
    "anti_egfr agents", C2(2, 4),
    G_EGFR_REQUIRES_RAS_WT, NULL}, egfr_requires_ras_wt},
  {{"single_biologic", "Never an anti-VEGF and an anti-EGFR antibody in the same regimen or the same set of orders; alternatives are offered side by side.",
    "anti_vegf with anti_egfr", C2(2, 4),
    G_SINGLE_BIOLOGIC, NULL}, single_biologic_item},
  {{"oxaliplatin_neuropathy", "No oxaliplatin after persistent grade 2 or higher neuropathy from prior FOLFOX; unknown grade blocks.",
    "oxaliplatin and regimens containing it", C1(1),
    G_OXALIPLATIN_NEUROPATHY, NULL}, oxaliplatin_neuropathy},
  {{"bev_surgery_window", "No bevacizumab when surgery is planned within 6 weeks (42 days or fewer).",
    "bevacizumab", C2(2, 4),
    G_BEV_SURGERY_WINDOW, NULL}, bev_surgery_window},
  {{"no_long_course_crt_metastatic", "No long-course chemoradiotherapy (50 Gy with concurrent 5-FU) in metastatic disease.",
    "long_course_chemoradiation", C1(2),
    G_NO_LONG_COURSE_CRT_METASTATIC, NULL}, no_long_course_crt},
  {{"primary_resection_needs_symptoms", "No further surgery on the primary unless malignant obstruction leaves no alternative.",
    "primary_resection", C3(1, 3, 5),
    G_PRIMARY_RESECTION_NEEDS_SYMPTOMS, NULL}, primary_resection},
  {{"primary_local_therapy_needs_symptoms", "Local therapy of the primary only when it bleeds, obstructs or causes intractable pain.",
    "primary_local_therapy", C2(1, 3),
    G_PRIMARY_LOCAL_THERAPY_NEEDS_SYMPTOMS, NULL}, primary_local_therapy},
  {{"rt_symptomatic_sites_only", "Palliative radiotherapy only to a metastatic site with pain or functional impairment: any recorded symptom (pain, fracture risk, skin breakdown, lymphedema, obstruction, neurological symptoms) makes the site symptomatic; symptoms not recorded block and are reported missing.",
    "palliative_rt_bone, palliative_rt_inguinal, palliative_rt_retroperitoneal", C2(1, 3),
    G_RT_SYMPTOMATIC_SITES_ONLY, NULL}, rt_symptomatic_sites_only},
  {{"groin_rt_prior_radiation", "The 50 Gy inguinal course needs no prior groin radiation; otherwise re-irradiation needs specialist review.",
    "palliative_rt_inguinal", C1(3),
    G_GROIN_RT_PRIOR_RADIATION, NULL}, groin_rt_prior_radiation},
  {{"checkpoint_requires_msi_high", "Pembrolizumab and nivolumab only for MSI-high tumours; unknown blocks.",
    "pd1_inhibitor agents", C1(3),
    G_CHECKPOINT_REQUIRES_MSI_HIGH, NULL}, checkpoint_requires_msi_high},
  {{"encorafenib_requires_braf_v600e", "Encorafenib only for BRAF V600E-mutant tumours; unknown blocks.",
    "braf_inhibitor agents", C1(4),
    G_ENCORAFENIB_REQUIRES_BRAF_V600E, NULL}, encorafenib_requires_braf},
  {{"no_repeat_failed_regimen", "No regimen the patient has already progressed on or stopped for intolerance, wherever it is in the history: an item containing all of its chemotherapy backbone (capecitabine counts as 5-FU), or all of its drugs when it had no chemotherapy.",
    "regimens and agents named in prior_regimens", C2(1, 3),
    G_NO_REPEAT_FAILED_REGIMEN, NULL}, no_repeat_failed_regimen},
  /* beyond the guideline: no citations, a named source */
  {{"encorafenib_needs_anti_egfr", "Encorafenib only together with an anti-EGFR antibody (cetuximab), in the same item or the same set of orders; never alone.",
    "braf_inhibitor agents", {0, {0}}, NULL, B_BEACON}, NULL},
  {{"single_pd1_inhibitor", "At most one PD-1 inhibitor (pembrolizumab or nivolumab) in one item or one set of orders; alternatives side by side are fine.",
    "pd1_inhibitor agents", {0, {0}}, NULL, B_PD1}, single_pd1_item},
  {{"single_bone_agent", "At most one bone-modifying agent (zoledronic acid or denosumab) in one item or one set of orders; alternatives side by side are fine.",
    "bone_agent agents", {0, {0}}, NULL, B_BONE}, single_bone_item},
  {{"oxaliplatin_neuropathy_grade_3_4", "No oxaliplatin at neuropathy grade 3 or 4, persistent or not.",
    "oxaliplatin and regimens containing it", {0, {0}}, NULL, B_OXALI}, oxaliplatin_grade_3_4},
};
#define NRULES (int)(sizeof rules / sizeof rules[0])

static const rule *rule_named(const char *id) {
  for (int i = 0; i < NRULES; i++)
    if (!strcmp(rules[i].info.id, id)) return &rules[i];
  return NULL;
}

const pw_rule_info *pw_safety_rule(int i) { return i >= 0 && i < NRULES ? &rules[i].info : NULL; }
int pw_safety_count(void) { return NRULES; }

const pw_rule_info *pw_safety_rule_by_id(const char *id) {
  for (int i = 0; i < NRULES; i++)
    if (!strcmp(rules[i].info.id, id)) return &rules[i].info;
  return NULL;
}

static void block(pw_result *r, pw_item *it, const rule *ru, const char *reason) {
  it->blocked = 1;
  it->rule = ru->info.id;
  it->reason = pw_arena_strdup(&r->arena, reason, strlen(reason));
  it->rule_cites = ru->info.cites;
  it->rule_evidence = ru->info.guideline;
  it->rule_beyond = ru->info.beyond;
  if (r->tracing) {
    pw_note *n = pw_result_add_note(r, PW_NOTE_TRACE);
    char *t = pw_arena_alloc(&r->arena, 400);
    if (n && t) {
      snprintf(t, 400, "safety: rule %s blocked %s (%s%s): %s", ru->info.id, it->id,
               it->source == PW_SRC_ORDER ? "proposed order" : "protocol",
               it->line ? ", see trace line" : "", reason);
      n->id = ru->info.id;
      n->text = t;
      n->line = it->line;
    }
  }
}

static int alternatives(const pw_item *a, const pw_item *b) {
  return a->source == PW_SRC_PROTOCOL && b->source == PW_SRC_PROTOCOL &&
         a->group && b->group && !strcmp(a->group, b->group);
}

/* Items given together: protocol items that are not alternatives of one
** group, or proposed orders (one set, the clinician's). */
static int together(const pw_item *a, const pw_item *b) {
  return a->source == b->source && !alternatives(a, b);
}

typedef int (*conflict_fn)(uint32_t a, uint32_t b);

static int biologic_conflict(uint32_t a, uint32_t b) {
  uint32_t v = cls(PW_CLS_ANTI_VEGF), e = cls(PW_CLS_ANTI_EGFR);
  return ((a & v) && (b & e)) || ((a & e) && (b & v));
}
static int two_of(uint32_t a, uint32_t b, pw_class c) {
  uint32_t m = cls(c);
  return (a & m) && (b & m) && count_bits((a | b) & m) >= 2;
}
static int pd1_conflict(uint32_t a, uint32_t b) { return two_of(a, b, PW_CLS_PD1_INHIBITOR); }
static int bone_conflict(uint32_t a, uint32_t b) { return two_of(a, b, PW_CLS_BONE_AGENT); }

/* Every item of a conflicting pair given together is blocked, so which one
** a protocol or a clinician listed first never matters. Decided on the items
** unblocked when the check starts, then applied; a reason names the partner
** whose id sorts first. */
static void conflicts_across(pw_result *r, const char *rule_id, conflict_fn fn, const char *what) {
  const rule *ru = rule_named(rule_id);
  int n = r->items.n;
  int *partner = n ? pw_arena_alloc(&r->arena, (size_t)n * sizeof *partner) : NULL;
  if (!partner || !ru) return;
  for (int i = 0; i < n; i++) {
    const pw_item *a = &r->items.v[i];
    partner[i] = -1;
    for (int j = 0; a->blocked == 0 && j < n; j++) {
      const pw_item *b = &r->items.v[j];
      if (j == i || b->blocked || !together(a, b) || !fn(a->agents, b->agents)) continue;
      if (partner[i] < 0 || strcmp(b->id, r->items.v[partner[i]].id) < 0) partner[i] = j;
    }
  }
  for (int i = 0; i < n; i++) {
    if (partner[i] < 0) continue;
    pw_item *a = &r->items.v[i];
    char why[240];
    snprintf(why, sizeof why, "%s and %s would be given together: %s", a->id, r->items.v[partner[i]].id, what);
    block(r, a, ru, why);
  }
}

/* Encorafenib needs an anti-EGFR antibody in the same item, or in another
** item given together with it. */
static void encorafenib_partner(pw_result *r) {
  const rule *ru = rule_named("encorafenib_needs_anti_egfr");
  uint32_t braf = cls(PW_CLS_BRAF_INHIBITOR), egfr = cls(PW_CLS_ANTI_EGFR);
  int n = r->items.n;
  int *alone = n ? pw_arena_alloc(&r->arena, (size_t)n * sizeof *alone) : NULL;
  if (!alone || !ru) return;
  for (int i = 0; i < n; i++) {
    const pw_item *a = &r->items.v[i];
    alone[i] = !a->blocked && (a->agents & braf) && !(a->agents & egfr);
    for (int j = 0; alone[i] && j < n; j++) {
      const pw_item *b = &r->items.v[j];
      if (j != i && !b->blocked && together(a, b) && (b->agents & egfr)) alone[i] = 0;
    }
  }
  for (int i = 0; i < n; i++)
    if (alone[i])
      block(r, &r->items.v[i], ru, "encorafenib without an anti-EGFR antibody: it is given with cetuximab, never alone");
}

/* ---- warnings of the kernel's own ---- */

static pw_note *warn(pw_result *r, const char *id, pw_level level, const char *text, const char *beyond) {
  pw_note *n = pw_result_add_note(r, PW_NOTE_WARN);
  if (!n) return NULL;
  n->id = id;
  n->text = text;
  n->level = level;
  n->beyond = beyond;
  n->source = PW_SRC_ENGINE;
  return n;
}

/* Appends ", #N" (1-based, as the reports number metastases) to a list. */
static size_t add_site(char *b, size_t cap, size_t k, int i) {
  if (k < cap) k += (size_t)snprintf(b + k, cap - k, "%s#%d", k ? ", " : "", i + 1);
  return k < cap ? k : cap - 1;
}

/* Possible metastatic spinal cord compression: a bone metastasis with
** neurological symptoms, or a spinal one at risk of fracture. A bone site
** at risk of fracture whose spine involvement is unknown: ask. */
static void warn_cord_compression(const pw_facts *f, pw_result *r) {
  char neuro[160] = "", spine[160] = "";
  size_t kn = 0, ks = 0;
  for (int i = 0; f->mets_known && i < f->nmets; i++) {
    const pw_met_fact *m = &f->mets[i];
    if (m->site != PW_SITE_BONE) continue;
    if (m->symptoms & PW_MSYM_NEUROLOGIC) kn = add_site(neuro, sizeof neuro, kn, i);
    else if ((m->symptoms & PW_MSYM_FRACTURE_RISK) && m->spine == 1) ks = add_site(spine, sizeof spine, ks, i);
    else if ((m->symptoms & PW_MSYM_FRACTURE_RISK) && m->spine == PW_UNKNOWN) {
      char fact[48];
      snprintf(fact, sizeof fact, "metastases[%d].spine", i);
      pw_safety_missing(r, fact, "a bone metastasis at risk of fracture: if it involves the spine, the cord is at "
                        "risk (urgent assessment)", PW_SRC_ENGINE);
    }
  }
  if (!kn && !ks) return;
  char what[360];
  size_t k = 0;
  if (kn) k += (size_t)snprintf(what, sizeof what, "bone metastasis %s with neurological symptoms", neuro);
  if (ks) snprintf(what + k, sizeof what - k, "%sspinal metastasis %s at risk of fracture", kn ? "; " : "", spine);
  char *t = pw_arena_alloc(&r->arena, 640);
  if (!t) return;
  snprintf(t, 640, "URGENT: possible metastatic spinal cord compression (%s). Same-day assessment: whole-spine "
           "MRI, corticosteroids (dexamethasone), and an urgent radiotherapy and spinal surgery opinion; do not "
           "wait for the rest of this plan.", what);
  warn(r, "spinal_cord_compression", PW_LEVEL_URGENT, t, B_MSCC);
}

/* Ids of unblocked items with any of the agents in mask, joined; NULL if none. */
static const char *items_with(pw_result *r, uint32_t mask, uint32_t without_in_set) {
  char ids[240] = "";
  size_t k = 0;
  for (int i = 0; i < r->items.n; i++) {
    const pw_item *a = &r->items.v[i];
    if (a->blocked || !(a->agents & mask) || (a->agents & without_in_set)) continue;
    int covered = 0;
    for (int j = 0; without_in_set && j < r->items.n; j++) {
      const pw_item *b = &r->items.v[j];
      if (j != i && !b->blocked && together(a, b) && (b->agents & without_in_set)) covered = 1;
    }
    if (covered || k + strlen(a->id) + 3 >= sizeof ids) continue;
    k += (size_t)snprintf(ids + k, sizeof ids - k, "%s%s", k ? ", " : "", a->id);
  }
  return k ? pw_arena_strdup(&r->arena, ids, k) : NULL;
}

static void warn_beyond(const pw_facts *f, pw_result *r) {
  char *t;
  const char *ids;
  uint32_t egfr = cls(PW_CLS_ANTI_EGFR);
  if (f->braf_v600e == PW_MOL_MUTANT && (ids = items_with(r, egfr, cls(PW_CLS_BRAF_INHIBITOR))) &&
      (t = pw_arena_alloc(&r->arena, 400))) {
    snprintf(t, 400, "BRAF V600E tumour: an anti-EGFR antibody without a BRAF inhibitor (%s); response is "
             "unlikely unless encorafenib is given with it.", ids);
    warn(r, "anti_egfr_braf_v600e", PW_LEVEL_PATIENT, t, B_BRAF_EGFR);
  }
  /* encorafenib with cetuximab (BRAF V600E) is not weighed by side */
  if (f->primary.site == PW_PRIM_COLON_RIGHT && (ids = items_with(r, egfr, cls(PW_CLS_BRAF_INHIBITOR))) &&
      (t = pw_arena_alloc(&r->arena, 400))) {
    snprintf(t, 400, "Right-sided primary: an anti-EGFR antibody (%s) benefits right-sided tumours little; an "
             "anti-VEGF partner is usually preferred.", ids);
    warn(r, "anti_egfr_right_sided", PW_LEVEL_PATIENT, t, B_SIDE);
  }
  int obstructed = 0;
  for (int i = 0; f->mets_known && i < f->nmets; i++)
    obstructed |= f->mets[i].site == PW_SITE_PERITONEUM && (f->mets[i].symptoms & PW_MSYM_OBSTRUCTION);
  unsigned prim = f->primary.symptoms & (PW_PSYM_BLEEDING | PW_PSYM_OBSTRUCTION);
  if ((obstructed || prim) && (ids = items_with(r, PW_AGENT_BIT(PW_AG_BEVACIZUMAB), 0)) &&
      (t = pw_arena_alloc(&r->arena, 480))) {
    char why[120] = "";
    size_t k = 0;
    if (prim & PW_PSYM_BLEEDING) k += (size_t)snprintf(why + k, sizeof why - k, "a bleeding primary");
    if (prim & PW_PSYM_OBSTRUCTION) k += (size_t)snprintf(why + k, sizeof why - k, "%san obstructing primary", k ? ", " : "");
    if (obstructed) snprintf(why + k, sizeof why - k, "%speritoneal obstruction", k ? ", " : "");
    snprintf(t, 480, "Bevacizumab (%s) with %s: anti-VEGF therapy carries a risk of bowel perforation and severe "
             "bleeding; weigh it, or an alternative, with the treating team before starting.", ids, why);
    warn(r, "anti_vegf_perforation_bleeding", PW_LEVEL_PATIENT, t, B_BEV_GI);
  }
}

/* Facts that cannot all be true: said, never silently resolved. */
static void warn_contradictions(const pw_facts *f, pw_result *r) {
  char *t;
  if (f->metastatic == 0 && f->mets_known && f->nmets > 0 && (t = pw_arena_alloc(&r->arena, 300))) {
    snprintf(t, 300, "The facts contradict each other: metastatic is false but %d metastas%s listed; confirm "
             "the staging before acting on either.", f->nmets, f->nmets == 1 ? "is is" : "es are");
    warn(r, "facts_contradiction", PW_LEVEL_PATIENT, t, NULL);
  }
  if (!f->regimens_known) return;
  int first = 0, later = 0, first_ongoing = 0;
  for (int i = 0; i < f->nregimens; i++) {
    const pw_regimen_fact *g = &f->regimens[i];
    if (g->line == 1) { first = 1; first_ongoing |= g->outcome == PW_OUTCOME_ONGOING; }
    if (g->line > later) later = g->line;
  }
  if (later >= 2 && !first && (t = pw_arena_alloc(&r->arena, 300))) {
    snprintf(t, 300, "The facts contradict each other: prior_regimens lists line %d but no line 1; review the "
             "treatment history.", later);
    warn(r, "facts_contradiction", PW_LEVEL_PATIENT, t, NULL);
  }
  if (later >= 2 && first_ongoing && (t = pw_arena_alloc(&r->arena, 300))) {
    snprintf(t, 300, "The facts contradict each other: line 1 is recorded as ongoing but line %d is also listed; "
             "review the treatment history.", later);
    warn(r, "facts_contradiction", PW_LEVEL_PATIENT, t, NULL);
  }
}

static void surgery_unknown(const pw_facts *f, pw_result *r) {
  if (f->surgery != PW_SURGERY_UNKNOWN || !items_with(r, PW_AGENT_BIT(PW_AG_BEVACIZUMAB), 0)) return;
  pw_note *n = warn(r, "bev_surgery_window", PW_LEVEL_PATIENT,
                    "planned surgery is not recorded: bevacizumab stays recommended, but confirm that no "
                    "surgery is planned within 6 weeks (42 days) before starting it", NULL);
  if (n) n->cites = rule_named("bev_surgery_window")->info.cites;
  pw_safety_missing(r, "planned_surgery_in_days",
                    "needed before bevacizumab: no dose within 6 weeks (42 days) of planned surgery", PW_SRC_ENGINE);
}

void pw_safety_apply(const pw_facts *f, pw_result *r) {
  kctx k = {f, r, NULL, {0}};
  for (int i = 0; i < r->items.n; i++) {
    pw_item *it = &r->items.v[i];
    if (it->blocked) continue;
    k.it = it;
    for (int j = 0; j < NRULES; j++) {
      k.reason[0] = '\0';
      if (rules[j].fn && rules[j].fn(&k) && !it->blocked) block(r, it, &rules[j], k.reason);
    }
  }
  conflicts_across(r, "single_biologic", biologic_conflict,
                   "anti-VEGF and anti-EGFR antibodies are alternatives, never combined");
  conflicts_across(r, "single_pd1_inhibitor", pd1_conflict, "at most one PD-1 inhibitor");
  conflicts_across(r, "single_bone_agent", bone_conflict, "at most one bone-modifying agent");
  encorafenib_partner(r);
  warn_cord_compression(f, r);
  warn_contradictions(f, r);
  warn_beyond(f, r);
  /* The one exception that does not fail safe, said in the output. */
  surgery_unknown(f, r);
}
