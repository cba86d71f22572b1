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
  snprintf(k->reason, sizeof k->reason,
           "no malignant obstruction of the primary: no further surgery after resection and radiation");
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

static int rt_site(int action, int *site, unsigned *qualify) {
  switch (action) {
  case PW_ACT_RT_BONE: *site = PW_SITE_BONE; *qualify = PW_MSYM_PAIN | PW_MSYM_FRACTURE_RISK; return 1;
  case PW_ACT_RT_INGUINAL:
    *site = PW_SITE_INGUINAL; *qualify = PW_MSYM_PAIN | PW_MSYM_SKIN_BREAKDOWN | PW_MSYM_LYMPHEDEMA; return 1;
  case PW_ACT_RT_RETROPERITONEAL:
    *site = PW_SITE_RETROPERITONEAL; *qualify = PW_MSYM_OBSTRUCTION | PW_MSYM_PAIN | PW_MSYM_NEUROLOGIC; return 1;
  default: return 0;
  }
}

static int rt_symptomatic_sites_only(kctx *k) {
  const pw_facts *f = k->f;
  int site;
  unsigned q;
  if (!rt_site(k->it->action, &site, &q)) return 0;
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
    if (f->mets[t - 1].symptoms & q) return 0;
    snprintf(k->reason, sizeof k->reason,
             "metastases[%d] (%s) has no qualifying symptoms: radiotherapy is for symptomatic sites only",
             t - 1, pw_facts_site_name(site));
    return 1;
  }
  for (int i = 0; i < f->nmets; i++)
    if (f->mets[i].site == site && (f->mets[i].symptoms & q)) return 0;
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
  int groin = pw_facts_prior_groin_rt(k->f);   /* 2: a site not recognised, possibly the groin */
  if (!groin) return 0;
  snprintf(k->reason, sizeof k->reason, "%s: the 50 Gy in 25 fractions course is only for a non-irradiated groin; "
           "re-irradiation needs radiation oncology specialist review",
           groin == 1 ? "prior groin radiation" : "a prior radiation site is not recognised and may include the groin");
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

static const rule rules[] = {
  {{"ecog_gate", "No cytotoxic chemotherapy, anti-VEGF, anti-EGFR, BRAF or PD-1 agent at ECOG 3-4, nor while ECOG is unknown; supportive care stays allowed.",
    "cytotoxic, anti_vegf, anti_egfr, braf_inhibitor, pd1_inhibitor agents", C2(1, 3),
    G_ECOG_GATE}, ecog_gate},
  {{"egfr_requires_ras_wt", "Cetuximab and panitumumab only when KRAS and NRAS are both known wild type; unknown blocks.",
    "anti_egfr agents", C2(2, 4),
    G_EGFR_REQUIRES_RAS_WT}, egfr_requires_ras_wt},
  {{"single_biologic", "Never an anti-VEGF and an anti-EGFR antibody in the same regimen or the same set of orders; alternatives are offered side by side.",
    "anti_vegf with anti_egfr", C2(2, 4),
    G_SINGLE_BIOLOGIC}, single_biologic_item},
  {{"oxaliplatin_neuropathy", "No oxaliplatin after persistent grade 2 or higher neuropathy from prior FOLFOX; unknown grade blocks.",
    "oxaliplatin and regimens containing it", C1(1),
    G_OXALIPLATIN_NEUROPATHY}, oxaliplatin_neuropathy},
  {{"bev_surgery_window", "No bevacizumab when surgery is planned within 6 weeks (42 days or fewer).",
    "bevacizumab", C2(2, 4),
    G_BEV_SURGERY_WINDOW}, bev_surgery_window},
  {{"no_long_course_crt_metastatic", "No long-course chemoradiotherapy (50 Gy with concurrent 5-FU) in metastatic disease.",
    "long_course_chemoradiation", C1(2),
    G_NO_LONG_COURSE_CRT_METASTATIC}, no_long_course_crt},
  {{"primary_resection_needs_symptoms", "No further surgery on the resected primary unless malignant obstruction leaves no alternative.",
    "primary_resection", C3(1, 3, 5),
    G_PRIMARY_RESECTION_NEEDS_SYMPTOMS}, primary_resection},
  {{"primary_local_therapy_needs_symptoms", "Local therapy of the primary only when it bleeds, obstructs or causes intractable pain.",
    "primary_local_therapy", C2(1, 3),
    G_PRIMARY_LOCAL_THERAPY_NEEDS_SYMPTOMS}, primary_local_therapy},
  {{"rt_symptomatic_sites_only", "Palliative radiotherapy only to a site with qualifying symptoms (bone: pain or fracture risk; inguinal: pain, skin breakdown or lymphedema; retroperitoneal: obstruction, pain or neurological symptoms).",
    "palliative_rt_bone, palliative_rt_inguinal, palliative_rt_retroperitoneal", C2(1, 3),
    G_RT_SYMPTOMATIC_SITES_ONLY}, rt_symptomatic_sites_only},
  {{"groin_rt_prior_radiation", "The 50 Gy inguinal course needs no prior groin radiation; otherwise re-irradiation needs specialist review.",
    "palliative_rt_inguinal", C1(3),
    G_GROIN_RT_PRIOR_RADIATION}, groin_rt_prior_radiation},
  {{"checkpoint_requires_msi_high", "Pembrolizumab and nivolumab only for MSI-high tumours; unknown blocks.",
    "pd1_inhibitor agents", C1(3),
    G_CHECKPOINT_REQUIRES_MSI_HIGH}, checkpoint_requires_msi_high},
  {{"encorafenib_requires_braf_v600e", "Encorafenib only for BRAF V600E-mutant tumours; unknown blocks.",
    "braf_inhibitor agents", C1(4),
    G_ENCORAFENIB_REQUIRES_BRAF_V600E}, encorafenib_requires_braf},
};
#define NRULES (int)(sizeof rules / sizeof rules[0])
#define SINGLE_BIOLOGIC 2

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

/* Anti-VEGF and anti-EGFR across items taken together. Protocol items
** that are alternatives are not taken together; the later item of a
** conflicting pair is blocked. Proposed orders form one set: all of the
** conflicting orders are blocked, and the clinician chooses one. */
static void single_biologic_across(pw_result *r) {
  uint32_t vegf = cls(PW_CLS_ANTI_VEGF), egfr = cls(PW_CLS_ANTI_EGFR);
  const rule *ru = &rules[SINGLE_BIOLOGIC];
  for (int j = 0; j < r->items.n; j++) {
    pw_item *b = &r->items.v[j];
    for (int i = 0; i < j; i++) {
      pw_item *a = &r->items.v[i];
      if (a->source != b->source || alternatives(a, b)) continue;
      if (!(((a->agents & vegf) && (b->agents & egfr)) || ((a->agents & egfr) && (b->agents & vegf))))
        continue;
      char why[240];
      snprintf(why, sizeof why, "%s and %s would be given together: anti-VEGF and anti-EGFR antibodies "
               "are alternatives, never combined", a->id, b->id);
      if (!b->blocked) block(r, b, ru, why);
      if (b->source == PW_SRC_ORDER && !a->blocked) block(r, a, ru, why);
    }
  }
}

void pw_safety_apply(const pw_facts *f, pw_result *r) {
  kctx k = {f, r, NULL, {0}};
  for (int i = 0; i < r->items.n; i++) {
    pw_item *it = &r->items.v[i];
    if (it->blocked) continue;
    k.it = it;
    for (int j = 0; j < NRULES; j++) {
      k.reason[0] = '\0';
      if (rules[j].fn(&k) && !it->blocked) block(r, it, &rules[j], k.reason);
    }
  }
  single_biologic_across(r);
  /* The one exception that does not fail safe, said in the output. */
  if (f->surgery == PW_SURGERY_UNKNOWN)
    for (int i = 0; i < r->items.n; i++) {
      const pw_item *it = &r->items.v[i];
      if (it->blocked || !(it->agents & PW_AGENT_BIT(PW_AG_BEVACIZUMAB))) continue;
      pw_note *n = pw_result_add_note(r, PW_NOTE_WARN);
      if (!n) break;
      n->id = "bev_surgery_window";
      n->text = "planned surgery is not recorded: bevacizumab stays recommended, but confirm that no "
                "surgery is planned within 6 weeks (42 days) before starting it";
      n->cites = rules[4].info.cites;
      n->source = PW_SRC_ENGINE;
      break;
    }
}
