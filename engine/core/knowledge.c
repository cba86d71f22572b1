/*
** knowledge.c: the drug, regimen and action tables; see knowledge.h.
*/
#include <stdio.h>
#include <string.h>
#include "gate.h"
#include "knowledge.h"

#define B(a) PW_AGENT_BIT(PW_AG_##a)

/* The agents, once: their table and each class's agents (a constant the
** safety kernel reads some 250 times per evaluation) come from this list.
** X(k, agent, id, name, class); k passes through (the class being summed). */
#define AGENTS(X, k) \
  X(k, FLUOROURACIL, "fluorouracil", "5-fluorouracil", CYTOTOXIC) \
  X(k, LEUCOVORIN, "leucovorin", "leucovorin", CYTOTOXIC) \
  X(k, IRINOTECAN, "irinotecan", "irinotecan", CYTOTOXIC) \
  X(k, OXALIPLATIN, "oxaliplatin", "oxaliplatin", CYTOTOXIC) \
  X(k, BEVACIZUMAB, "bevacizumab", "bevacizumab", ANTI_VEGF) \
  X(k, CETUXIMAB, "cetuximab", "cetuximab", ANTI_EGFR) \
  X(k, PANITUMUMAB, "panitumumab", "panitumumab", ANTI_EGFR) \
  X(k, ENCORAFENIB, "encorafenib", "encorafenib", BRAF_INHIBITOR) \
  X(k, PEMBROLIZUMAB, "pembrolizumab", "pembrolizumab", PD1_INHIBITOR) \
  X(k, NIVOLUMAB, "nivolumab", "nivolumab", PD1_INHIBITOR) \
  X(k, ZOLEDRONIC_ACID, "zoledronic_acid", "zoledronic acid", BONE_AGENT) \
  X(k, DENOSUMAB, "denosumab", "denosumab", BONE_AGENT) \
  X(k, CAPECITABINE, "capecitabine", "capecitabine", CYTOTOXIC)

#define AGENT_ROW(k, a, id, name, c) [PW_AG_##a] = {id, name, PW_CLS_##c},
static const pw_agent_info agents[PW_AG_COUNT] = {AGENTS(AGENT_ROW, 0)};

#define AGENT_IN(k, a, id, name, c) | (PW_CLS_##c == (k) ? B(a) : 0u)
#define CLASS_AGENTS(k) [k] = 0u AGENTS(AGENT_IN, k)
static const uint32_t class_agents[PW_CLS_COUNT] = {
  CLASS_AGENTS(PW_CLS_CYTOTOXIC), CLASS_AGENTS(PW_CLS_ANTI_VEGF), CLASS_AGENTS(PW_CLS_ANTI_EGFR),
  CLASS_AGENTS(PW_CLS_BRAF_INHIBITOR), CLASS_AGENTS(PW_CLS_PD1_INHIBITOR), CLASS_AGENTS(PW_CLS_BONE_AGENT)};

static const pw_regimen_info regimens[] = {
  {"FOLFIRI", "FOLFIRI (5-FU/leucovorin/irinotecan)", B(FLUOROURACIL) | B(LEUCOVORIN) | B(IRINOTECAN)},
  {"FOLFOX", "FOLFOX (5-FU/leucovorin/oxaliplatin)", B(FLUOROURACIL) | B(LEUCOVORIN) | B(OXALIPLATIN)},
  /* oxaliplatin-based like FOLFOX, with oral capecitabine for 5-FU; not FOLFOX by name */
  {"CAPOX", "CAPOX (capecitabine/oxaliplatin)", B(CAPECITABINE) | B(OXALIPLATIN)},
  {"XELOX", "XELOX (capecitabine/oxaliplatin, the same as CAPOX)", B(CAPECITABINE) | B(OXALIPLATIN)},
  {"FOLFOXIRI", "FOLFOXIRI (5-FU/leucovorin/oxaliplatin/irinotecan)",
   B(FLUOROURACIL) | B(LEUCOVORIN) | B(OXALIPLATIN) | B(IRINOTECAN)},
};
#define NREGIMENS (int)(sizeof regimens / sizeof regimens[0])

static const pw_action_info actions[PW_ACT_COUNT] = {
  {"palliative_rt_bone", "palliative radiotherapy to a bone metastasis", 0},
  {"palliative_rt_inguinal", "palliative radiotherapy to inguinal nodes", 0},
  {"palliative_rt_retroperitoneal", "palliative radiotherapy to a retroperitoneal mass", 0},
  {"primary_local_therapy", "local therapy of the primary (stoma, laser ablation, repeat RT)", 0},
  {"primary_resection", "further surgery on the rectal primary", 0},
  {"long_course_chemoradiation", "long-course chemoradiotherapy (50 Gy with concurrent 5-FU)", B(FLUOROURACIL)},
  {"ras_testing", "KRAS/NRAS testing (exons 2, 3, 4)", 0},
  {"braf_testing", "BRAF V600E testing", 0},
  {"msi_testing", "microsatellite instability (MSI) testing", 0},
  {"ct_reassessment", "CT reassessment", 0},
  {"best_supportive_care", "best supportive care", 0},
};

static const char *class_names[PW_CLS_COUNT] = {
  "cytotoxic", "anti_vegf", "anti_egfr", "braf_inhibitor", "pd1_inhibitor", "bone_agent"};

const pw_agent_info *pw_knowledge_agent(int i) {
  return i >= 0 && i < PW_AG_COUNT ? &agents[i] : NULL;
}
const pw_regimen_info *pw_knowledge_regimen(int i) {
  return i >= 0 && i < NREGIMENS ? &regimens[i] : NULL;
}
const pw_action_info *pw_knowledge_action(int i) {
  return i >= 0 && i < PW_ACT_COUNT ? &actions[i] : NULL;
}
const char *pw_knowledge_class_name(pw_class c) {
  return c < PW_CLS_COUNT ? class_names[c] : "?";
}

uint32_t pw_knowledge_class_agents(pw_class c) {
  return (unsigned)c < PW_CLS_COUNT ? class_agents[c] : 0;
}

const char *pw_knowledge_kind_name(pw_kind k) {
  static const char *names[] = {"agent", "regimen", "action", "combination"};
  return names[k];
}

/* One part of an id (no '+'): agent or regimen, or action when alone. */
static int resolve_part(const char *s, size_t n, uint32_t *ag, int *act, pw_kind *kind) {
  for (int i = 0; i < PW_AG_COUNT; i++)
    if (agents[i].id[0] == s[0] && strlen(agents[i].id) == n && memcmp(agents[i].id, s, n) == 0) {
      *ag = PW_AGENT_BIT(i); *kind = PW_KIND_AGENT; return 0;
    }
  for (int i = 0; i < NREGIMENS; i++)
    if (regimens[i].id[0] == s[0] && strlen(regimens[i].id) == n && memcmp(regimens[i].id, s, n) == 0) {
      *ag = regimens[i].agents; *kind = PW_KIND_REGIMEN; return 0;
    }
  for (int i = 0; i < PW_ACT_COUNT; i++)
    if (actions[i].id[0] == s[0] && strlen(actions[i].id) == n && memcmp(actions[i].id, s, n) == 0) {
      *ag = actions[i].agents; *act = i; *kind = PW_KIND_ACTION; return 0;
    }
  return -1;
}

/* How much of user text s[0..n) an error message shows: at most max bytes,
** cut on a UTF-8 boundary (messages end up in JSON); CUT adds "..." when cut. */
static int shown(const char *s, size_t n, size_t max) {
  return (int)(n > max ? pw_utf8_cut(s, max) : n);
}
#define CUT(shown, n) ((size_t)(shown) < (n) ? "..." : "")

int pw_knowledge_resolve(const char *id, uint32_t *agents_out, int *action,
                         pw_kind *kind, char *err, size_t errlen) {
  uint32_t all = 0;
  int parts = 0;
  *action = -1;
  for (const char *p = id;; parts++) {
    const char *plus = strchr(p, '+');
    size_t n = plus ? (size_t)(plus - p) : strlen(p);
    uint32_t ag = 0;
    int act = -1;
    pw_kind k;
    if (n == 0 || resolve_part(p, n, &ag, &act, &k) != 0) {
      size_t idn = strlen(id);
      int sp = shown(p, n, 64), si = shown(id, idn, 200);
      if (parts || plus)
        snprintf(err, errlen, "unknown id '%.*s%s' in '%.*s%s'", sp, p, CUT(sp, n), si, id, CUT(si, idn));
      else
        snprintf(err, errlen, "unknown id '%.*s%s'", sp, p, CUT(sp, n));
      return -1;
    }
    if (act >= 0 && (parts > 0 || plus)) {
      size_t idn = strlen(id);
      int si = shown(id, idn, 200);
      snprintf(err, errlen, "action '%s' cannot be part of a combination ('%.*s%s')", actions[act].id, si, id,
               CUT(si, idn));
      return -1;
    }
    all |= ag;
    if (act >= 0) *action = act;
    *kind = k;
    if (!plus) break;
    p = plus + 1;
  }
  if (parts > 0) *kind = PW_KIND_COMBINATION;
  *agents_out = all;
  return 0;
}

/* ---- prior regimens as written in a history ---- */

static int ieq(const char *s, size_t n, const char *lit) {
  size_t m = strlen(lit);
  if (m != n) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c >= 'a' && c <= 'z') c = (char)(c - 'a' + 'A');
    char d = lit[i];
    if (d >= 'a' && d <= 'z') d = (char)(d - 'a' + 'A');
    if (c != d) return 0;
  }
  return 1;
}

/* mFOLFOX6, FOLFOX4, FOLFOX7...: "M"? "FOLFOX" digits* */
static int folfox_variant(const char *s, size_t n) {
  size_t i = 0;
  if (n && (s[0] == 'm' || s[0] == 'M')) i = 1;
  if (n - i < 6 || !ieq(s + i, 6, "FOLFOX")) return 0;
  for (i += 6; i < n; i++)
    if (s[i] < '0' || s[i] > '9') return 0;
  return 1;
}

static int prior_part(const char *s, size_t n, uint32_t *ag) {
  static const struct { const char *alias, *id; } aliases[] = {
    {"CAPEOX", "CAPOX"}, {"5-FU", "fluorouracil"}, {"5FU", "fluorouracil"}, {"FU", "fluorouracil"},
    {"LV", "leucovorin"}, {"folinic acid", "leucovorin"}};
  if (folfox_variant(s, n)) { *ag = regimens[1].agents; return 0; }
  for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
    if (ieq(s, n, aliases[i].alias)) { s = aliases[i].id; n = strlen(s); break; }
  for (int i = 0; i < PW_AG_COUNT; i++)
    if (ieq(s, n, agents[i].id)) { *ag = PW_AGENT_BIT(i); return 0; }
  for (int i = 0; i < NREGIMENS; i++)
    if (ieq(s, n, regimens[i].id)) { *ag = regimens[i].agents; return 0; }
  return -1;
}

int pw_knowledge_prior_regimen(const char *name, uint32_t *agents_out) {
  uint32_t all = 0;
  for (const char *p = name;;) {
    const char *plus = strchr(p, '+');
    size_t n = plus ? (size_t)(plus - p) : strlen(p);
    while (n && p[0] == ' ') { p++; n--; }
    while (n && p[n - 1] == ' ') n--;
    uint32_t ag;
    if (n == 0 || prior_part(p, n, &ag)) return -1;
    all |= ag;
    if (!plus) break;
    p = plus + 1;
  }
  *agents_out = all;
  return 0;
}

uint32_t pw_knowledge_active(uint32_t a) {
  if (a & B(CAPECITABINE)) a = (a & ~B(CAPECITABINE)) | B(FLUOROURACIL);
  return a & ~B(LEUCOVORIN);
}
