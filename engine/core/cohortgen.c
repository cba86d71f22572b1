/*
** cohortgen.c: the synthetic cohort generator, shared by `pathwise cohort`
** (experiments/cohort.c, where the proportions are documented) and the
** release gate every check and reload runs (examples.c: a fixed-seed
** cohort the protocol must evaluate without an error).
**
** xoshiro256** seeded through splitmix64, draws in a fixed order and
** integers only, so a seed and a count give byte-identical output
** everywhere. The generator walks the facts table (pw_facts_schema): a
** field added to the table appears in cohorts without an edit here.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cohortgen.h"
#include "facts.h"
#include "knowledge.h"

/* ---- xoshiro256**, seeded by splitmix64 ---- */

typedef struct rng { uint64_t s[4]; } rng;

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static void rng_seed(rng *r, uint64_t seed) {
  for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t next64(rng *r) {
  uint64_t *s = r->s, out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return out;
}

/* Uniform in [0, 1e6): probabilities are in parts per million, so no
** floating point ever decides anything. */
static uint32_t ppm(rng *r) { return (uint32_t)((next64(r) >> 11) % 1000000u); }
static int chance(rng *r, uint32_t p_ppm) { return ppm(r) < p_ppm; }
static int uniform(rng *r, int lo, int hi) { return lo + (int)(next64(r) % (uint64_t)(hi - lo + 1)); }

/* Index drawn from weights (any scale). */
static int pick(rng *r, const uint32_t *w, int n) {
  uint64_t total = 0, x;
  for (int i = 0; i < n; i++) total += w[i];
  x = next64(r) % total;
  for (int i = 0; i < n; i++) {
    if (x < w[i]) return i;
    x -= w[i];
  }
  return n - 1;
}
#define PICK(r, w) pick(r, w, (int)(sizeof w / sizeof w[0]))
#define PCT(x) ((uint32_t)((x) * 10000))   /* percent -> ppm */

/* ---- writing JSON ---- */

typedef struct gen {
  rng r;
  rng r2;       /* a second stream for what later fields added (colon, spine, laterality,
                   unrecognised sites), so the draws of the first stay as they were */
  pw_buf *b;
  int first;
  int bad;      /* which field to spoil, 0 = none */
  int pelvic;   /* prior pelvic radiation drawn for the primary: 1, 0, -1 unknown */
} gen;

enum { BAD_NONE, BAD_ECOG, BAD_KRAS, BAD_SITE, BAD_LINE, BAD_ORDER, BAD_SURGERY, BAD_TRUNCATE, BAD_SPINE,
       BAD_EMPTY_OBJECT, BAD_KINDS };

static void key(gen *g, const char *k) {
  pw_buf_adds(g->b, g->first ? "\"" : ",\"");
  pw_buf_adds(g->b, k);
  pw_buf_adds(g->b, "\":");
  g->first = 0;
}
static void open_obj(gen *g) { pw_buf_adds(g->b, "{"); g->first = 1; }
static void close_obj(gen *g) { pw_buf_adds(g->b, "}"); g->first = 0; }
static void str(gen *g, const char *s) { pw_buf_json_str(g->b, s); }
static void num(gen *g, int v) { pw_buf_addf(g->b, "%d", v); }
static void boolean(gen *g, int v) { pw_buf_adds(g->b, v ? "true" : "false"); }

/* An unknown field: left out, null or "unknown" (1 in 3 each). */
static void unknown(gen *g, const char *k) {
  int form = uniform(&g->r, 0, 2);
  if (form == 2) return;
  key(g, k);
  if (form == 0) pw_buf_adds(g->b, "null");
  else str(g, "unknown");
}

/* A yes/no fact, unknown with p_unknown. */
static void tri(gen *g, const char *k, uint32_t p_yes, uint32_t p_unknown) {
  if (chance(&g->r, p_unknown)) { unknown(g, k); return; }
  key(g, k);
  boolean(g, chance(&g->r, p_yes));
}

/* A list of the names whose bit is set, in the order of names. */
static void name_list(gen *g, const char *const *names, int n, unsigned bits) {
  pw_buf_adds(g->b, "[");
  for (int i = 0, k = 0; i < n; i++)
    if (bits & (1u << i)) {
      if (k++) pw_buf_adds(g->b, ",");
      str(g, names[i]);
    }
  pw_buf_adds(g->b, "]");
}

/* ---- the facts ---- */

static void gen_ecog(gen *g) {
  static const uint32_t w[] = {25, 40, 17, 8, 3, 7};
  int v = PICK(&g->r, w);
  if (g->bad == BAD_ECOG) { key(g, "ecog"); num(g, 7); return; }
  if (v == 5) unknown(g, "ecog");
  else { key(g, "ecog"); num(g, v); }
}

/* ---- plain draws for fields without a tuned generator ---- */

static void gen_field(gen *g, const pw_field *fd);

/* The fields of obj not named in done (NULL-terminated), each drawn plainly. */
static void gen_rest(gen *g, const pw_field *obj, const char *const *done) {
  for (int i = 0; i < obj->nkids; i++) {
    int tuned = 0;
    for (const char *const *d = done; *d && !tuned; d++) tuned = !strcmp(*d, obj->kids[i].key);
    if (!tuned && !obj->kids[i].derived) gen_field(g, &obj->kids[i]);
  }
}

/* One plain record or object's members. */
static void gen_members(gen *g, const pw_field *obj) {
  static const char *const none[] = {NULL};
  open_obj(g);
  gen_rest(g, obj, none);
  close_obj(g);
}

/* Unknown in 10%; otherwise a value of the field's kind, range and names. */
static void gen_field(gen *g, const pw_field *fd) {
  if (chance(&g->r, PCT(10))) { unknown(g, fd->key); return; }
  key(g, fd->key);
  switch (fd->kind) {
  case PW_FK_INT: num(g, uniform(&g->r, fd->lo, fd->hi - fd->lo > 9 ? fd->lo + 9 : fd->hi)); break;
  case PW_FK_BOOL: boolean(g, chance(&g->r, PCT(50))); break;
  case PW_FK_ENUM: str(g, fd->names[uniform(&g->r, 0, fd->nnames - 1)]); break;
  case PW_FK_STRING: str(g, "synthetic"); break;
  case PW_FK_SET: {
    unsigned bits = 0;
    for (int i = 0; i < fd->nnames; i++) bits |= chance(&g->r, PCT(20)) ? 1u << i : 0;
    name_list(g, fd->names, fd->nnames, bits);
    break;
  }
  case PW_FK_OBJECT: gen_members(g, fd); break;
  case PW_FK_RECORDS: {
    int n = uniform(&g->r, 0, 2);
    pw_buf_adds(g->b, "[");
    for (int i = 0; i < n; i++) {
      if (i) pw_buf_adds(g->b, ",");
      gen_members(g, fd);
    }
    pw_buf_adds(g->b, "]");
    break;
  }
  default: pw_buf_adds(g->b, "[]"); break;   /* sites and orders have tuned generators */
  }
  g->first = 0;
}

/* ---- tuned generators ---- */

/* The position of name among fd's names (the tuned weights below name
** the values they weigh; the table says how they are spelled). */
static const char *name_of(const pw_field *fd, const char *name) {
  for (int i = 0; i < fd->nnames; i++)
    if (!strcmp(fd->names[i], name)) return fd->names[i];
  return name;   /* not in the table: the cohort then shows it, as invalid */
}


static const pw_field *field(const char *path) { return pw_facts_field(path); }

static void gen_patient_id(gen *g, const pw_field *fd, uint64_t seed, long i) {
  if (!chance(&g->r, PCT(0.5))) {
    char id[64];
    snprintf(id, sizeof id, "syn-%llu-%06ld", (unsigned long long)seed, i);
    key(g, fd->key);
    str(g, id);
  }
}

static void gen_metastatic(gen *g) {
  static const uint32_t met_w[] = {94, 3, 3};
  int m = PICK(&g->r, met_w);
  if (m == 2) unknown(g, "metastatic");
  else { key(g, "metastatic"); boolean(g, m == 0); }
}

static void gen_primary(gen *g) {
  static const char *const done[] = {"site", "resected", "prior_pelvic_radiation", "symptoms", NULL};
  const pw_field *fd = field("primary"), *site_fd = field("primary.site"), *sym_fd = field("primary.symptoms");
  const char *const *sites = site_fd->names, *const *syms = sym_fd->names;
  static const uint32_t site_w[] = {70, 15, 12, 3};
  static const uint32_t sym_w[] = {78, 7, 4, 3, 3, 5};
  int site = PICK(&g->r, site_w), pelvic = -1;
  g->pelvic = -1;
  if (chance(&g->r, PCT(1))) { unknown(g, "primary"); return; }
  key(g, "primary");
  open_obj(g);
  int side_unknown = chance(&g->r2, PCT(15)), non_crc = site == 3 && chance(&g->r2, PCT(100) / 6);
  if (non_crc) {   /* drawn from the unknown share; the form of unknown is still drawn */
    (void)uniform(&g->r, 0, 2);
    key(g, "site");
    str(g, name_of(site_fd, "non_colorectal"));
  } else if (site == 3) unknown(g, "site");
  else {
    key(g, "site");
    str(g, (site == 1 || site == 2) && side_unknown ? name_of(site_fd, "colon") : sites[site]);
  }
  tri(g, "resected", PCT(85) * 100 / 97, PCT(3));
  if (!chance(&g->r, PCT(3))) {
    pelvic = chance(&g->r, site == 0 ? PCT(70) : PCT(5));
    key(g, "prior_pelvic_radiation");
    boolean(g, pelvic);
  } else unknown(g, "prior_pelvic_radiation");
  int s = PICK(&g->r, sym_w);
  if (s == 5) unknown(g, "symptoms");
  else {
    unsigned bits = s == 0 ? 0 : s <= 3 ? 1u << (s - 1) : 0;
    if (s == 4) {   /* two of the three */
      int skip = uniform(&g->r, 0, 2);
      bits = 7u & ~(1u << skip);
    }
    key(g, "symptoms");
    name_list(g, syms, sym_fd->nnames, bits);
  }
  gen_rest(g, fd, done);
  close_obj(g);
  g->first = 0;
  g->pelvic = pelvic;
}

static void gen_regimens(gen *g) {
  static const char *const done[] = {"name", "line", "outcome", NULL};
  static const char *const names[] = {"FOLFOX", "mFOLFOX6", "FOLFOX4", "CAPOX", "FOLFOXIRI"};
  static const uint32_t name_w[] = {70, 15, 3, 7, 5};
  const pw_field *fd = field("prior_regimens"), *out_fd = field("prior_regimens[].outcome");
  const char *const outcomes[] = {name_of(out_fd, "progression"), name_of(out_fd, "intolerance"),
                                  name_of(out_fd, "ongoing")};
  static const uint32_t out_w[] = {75, 12, 6, 7};
  if (chance(&g->r, PCT(3))) { unknown(g, "prior_regimens"); return; }
  key(g, "prior_regimens");
  if (g->bad == BAD_EMPTY_OBJECT) { pw_buf_adds(g->b, "{}"); return; }   /* {} is not an empty list */
  if (chance(&g->r, PCT(1))) { pw_buf_adds(g->b, "[]"); return; }
  pw_buf_adds(g->b, "[");
  open_obj(g);
  key(g, "name");
  str(g, names[PICK(&g->r, name_w)]);
  int line_known = !chance(&g->r, PCT(5));
  if (g->bad == BAD_LINE) { key(g, "line"); num(g, 0); }
  else if (line_known) { key(g, "line"); num(g, 1); }
  int o = PICK(&g->r, out_w);
  if (o < 3) { key(g, "outcome"); str(g, outcomes[o]); }
  gen_rest(g, fd, done);
  close_obj(g);
  if (chance(&g->r, PCT(8))) {
    pw_buf_adds(g->b, ",");
    open_obj(g);
    key(g, "name");
    str(g, "FOLFIRI");
    key(g, "line");
    num(g, 2);
    key(g, "outcome");
    str(g, chance(&g->r, PCT(50)) ? outcomes[0] : outcomes[2]);
    gen_rest(g, fd, done);
    close_obj(g);
  }
  pw_buf_adds(g->b, "]");
  g->first = 0;
}

static void gen_neuropathy(gen *g) {
  static const char *const done[] = {"grade", "persistent", NULL};
  static const uint32_t w[] = {30, 35, 18, 8, 2, 7};
  int grade = PICK(&g->r, w);
  if (chance(&g->r, PCT(1))) { unknown(g, "neuropathy"); return; }
  key(g, "neuropathy");
  open_obj(g);
  if (grade == 5) unknown(g, "grade");
  else { key(g, "grade"); num(g, grade); }
  if (grade >= 2 && grade <= 4) tri(g, "persistent", PCT(60) * 100 / 95, PCT(5));
  else tri(g, "persistent", PCT(10), PCT(10));
  gen_rest(g, field("neuropathy"), done);
  close_obj(g);
  g->first = 0;
}

/* A molecular result: the value, or unknown (left out, null or "unknown"). */
static void mol(gen *g, const char *k, const char *value, uint32_t p_unknown) {
  if (chance(&g->r, p_unknown)) {
    int form = uniform(&g->r, 0, 2);
    if (form == 0) return;
    key(g, k);
    if (form == 1) pw_buf_adds(g->b, "null");
    else str(g, "unknown");
    return;
  }
  key(g, k);
  str(g, value);
}

static void gen_molecular(gen *g) {
  static const char *const done[] = {"kras", "nras", "braf_v600e", "msi", NULL};
  /* biology first, then what was reported */
  uint32_t x = ppm(&g->r);
  int kras_mut = x < PCT(40), nras_mut = !kras_mut && x < PCT(45);
  int braf = !kras_mut && !nras_mut && chance(&g->r, PCT(9) * 100 / 55);
  int msi = chance(&g->r, PCT(4.5));
  if (chance(&g->r, PCT(2))) { unknown(g, "molecular"); return; }
  key(g, "molecular");
  open_obj(g);
  if (g->bad == BAD_KRAS) { key(g, "kras"); str(g, "positive"); }
  else mol(g, "kras", kras_mut ? "mutant" : "wild_type", PCT(12));
  mol(g, "nras", nras_mut ? "mutant" : "wild_type", PCT(12));
  mol(g, "braf_v600e", braf ? "mutant" : "wild_type", PCT(25));
  mol(g, "msi", msi ? "msi_high" : "mss", PCT(20));
  gen_rest(g, field("molecular"), done);
  close_obj(g);
  g->first = 0;
}

/* A bone metastasis in the spine: yes 40%, no 45%, unknown 15% (absent,
** null or "unknown"); BAD_SPINE puts it on the first site, whatever it is. */
static void gen_spine(gen *g) {
  static const uint32_t w[] = {40, 45, 5, 5, 5};
  int v = PICK(&g->r2, w);
  if (v == 4) return;
  key(g, "spine");
  if (g->bad == BAD_SPINE || v == 0) boolean(g, 1);
  else if (v == 1) boolean(g, 0);
  else if (v == 2) pw_buf_adds(g->b, "null");
  else str(g, "unknown");
}

static void gen_metastases(gen *g) {
  /* sites and symptoms in the order of the table's names */
  enum { BONE, INGUINAL, RETRO, LIVER, LUNG, PERITONEUM, BRAIN, OTHER, NSITES };
  enum { NSYMS = 6 };
  static const char *const done[] = {"site", "symptoms", "spine", NULL};
  const pw_field *fd = field("metastases"), *site_fd = field("metastases[].site"),
                 *sym_fd = field("metastases[].symptoms");
  const char *const *sites = site_fd->names, *const *syms = sym_fd->names;
  static const uint32_t p_site[] = {PCT(20), PCT(8), PCT(15), PCT(55), PCT(30), PCT(15), PCT(3), PCT(5)};
  /* per site: ppm of each symptom, in the order of syms */
  static const uint32_t p_sym[NSITES][NSYMS] = {
    [BONE] = {PCT(55), PCT(20), 0, 0, 0, 0},
    [INGUINAL] = {PCT(25), 0, PCT(10), PCT(15), 0, 0},
    [RETRO] = {PCT(20), 0, 0, 0, PCT(10), PCT(8)},
    [LIVER] = {PCT(10), 0, 0, 0, 0, 0},
    [LUNG] = {PCT(5), 0, 0, 0, 0, 0},
    [PERITONEUM] = {PCT(10), 0, 0, 0, PCT(15), 0},
    [BRAIN] = {0, 0, 0, 0, 0, PCT(60)},
    [OTHER] = {PCT(10), 0, PCT(5), 0, 0, 0},
  };
  int has[NSITES], any = 0;
  for (int i = 0; i < NSITES; i++) any |= has[i] = chance(&g->r, p_site[i]);
  if (!any) has[LIVER] = 1;
  if (chance(&g->r, PCT(3))) { unknown(g, "metastases"); return; }
  key(g, "metastases");
  pw_buf_adds(g->b, "[");
  for (int i = 0, k = 0; i < NSITES; i++) {
    if (!has[i]) continue;
    if (k++) pw_buf_adds(g->b, ",");
    open_obj(g);
    key(g, "site");
    str(g, g->bad == BAD_SITE ? "skin" : sites[i]);
    if (i == BONE || (g->bad == BAD_SPINE && k == 1)) gen_spine(g);
    if (chance(&g->r, PCT(4))) {
      gen_rest(g, fd, done);
      close_obj(g);
      continue;
    }
    unsigned bits = 0;
    for (int s = 0; s < NSYMS; s++)
      if (p_sym[i][s] && chance(&g->r, p_sym[i][s])) bits |= 1u << s;
    key(g, "symptoms");
    name_list(g, syms, NSYMS, bits);
    gen_rest(g, fd, done);
    close_obj(g);
  }
  pw_buf_adds(g->b, "]");
  g->first = 0;
}

/* A radiation site, with its laterality in 30%: left, right or bilateral. */
static void gen_rt_site(gen *g, const char *site) {
  static const char *const sides[] = {"left ", "right ", "bilateral "};
  char s[64];
  int side = chance(&g->r2, PCT(30)) ? uniform(&g->r2, 0, 2) : -1;
  snprintf(s, sizeof s, "%s%s", side >= 0 ? sides[side] : "", site);
  str(g, s);
}

static void gen_radiation(gen *g) {
  int pelvic = g->pelvic;
  static const char *const extra[] = {"groin", "inguinal", "bone"};
  static const uint32_t p_extra[] = {PCT(5), PCT(2), PCT(4)};
  if (chance(&g->r, PCT(4))) { unknown(g, "prior_radiation_sites"); return; }
  key(g, "prior_radiation_sites");
  pw_buf_adds(g->b, "[");
  int k = 0;
  if (pelvic == 1) { str(g, "pelvis"); k++; }
  for (int i = 0; i < 3; i++)
    if (chance(&g->r, p_extra[i])) {
      if (k++) pw_buf_adds(g->b, ",");
      gen_rt_site(g, extra[i]);
    }
  /* more of the vocabulary, and text outside it (taken as possibly the groin) */
  static const char *const more[] = {"spine", "retroperitoneum", "brain", "liver", "lung", "chest", "abdomen",
                                     "other", "Groin (L)", "para-aortic nodes"};
  static const uint32_t p_more[] = {PCT(3), PCT(1), PCT(1), PCT(0.5), PCT(1), PCT(0.5), PCT(0.5),
                                    PCT(0.5), PCT(0.5), PCT(0.5)};
  for (int i = 0; i < (int)(sizeof more / sizeof more[0]); i++)
    if (chance(&g->r2, p_more[i])) {
      if (k++) pw_buf_adds(g->b, ",");
      gen_rt_site(g, more[i]);
    }
  pw_buf_adds(g->b, "]");
}

static void gen_surgery(gen *g) {
  static const uint32_t w[] = {80, 8, 12};
  int s = PICK(&g->r, w);
  int days = uniform(&g->r, 0, 120);
  if (g->bad == BAD_SURGERY) { key(g, "planned_surgery_in_days"); num(g, -3); return; }
  if (s == 2) return;   /* unknown: absent (null means "none planned") */
  key(g, "planned_surgery_in_days");
  if (s == 0) pw_buf_adds(g->b, "null");
  else num(g, days);
}

static void gen_orders(gen *g) {
  static const char *const ids[] = {
    "FOLFIRI+bevacizumab", "FOLFIRI", "bevacizumab", "cetuximab", "panitumumab",
    "FOLFIRI+cetuximab", "FOLFIRI+panitumumab", "FOLFOX", "FOLFIRI+bevacizumab+cetuximab",
    "pembrolizumab", "nivolumab", "encorafenib+cetuximab", "encorafenib", "oxaliplatin",
    "fluorouracil+leucovorin", "irinotecan", "zoledronic_acid", "denosumab",
    "palliative_rt_bone", "palliative_rt_inguinal", "palliative_rt_retroperitoneal",
    "primary_local_therapy", "primary_resection", "long_course_chemoradiation",
    "ras_testing", "braf_testing", "msi_testing", "ct_reassessment", "best_supportive_care"};
  static const uint32_t id_w[] = {15, 10, 10, 8, 8, 5, 4, 8, 2, 4, 3, 3, 1, 1, 1, 1, 2, 2,
                                  4, 3, 2, 2, 2, 2, 1, 1, 1, 1, 1};
  static const uint32_t n_w[] = {75, 5, 15, 5};
  _Static_assert(sizeof ids / sizeof ids[0] == sizeof id_w / sizeof id_w[0], "weights");
  int n = PICK(&g->r, n_w);
  int a = PICK(&g->r, id_w), b = PICK(&g->r, id_w);
  if (b == a) b = (a + 1) % (int)(sizeof ids / sizeof ids[0]);
  if (g->bad == BAD_ORDER) { key(g, "proposed_orders"); pw_buf_adds(g->b, "[\"aspirin\"]"); return; }
  if (n == 0) return;
  key(g, "proposed_orders");
  pw_buf_adds(g->b, "[");
  if (n >= 2) str(g, ids[a]);
  if (n == 3) { pw_buf_adds(g->b, ","); str(g, ids[b]); }
  pw_buf_adds(g->b, "]");
}

/* The tuned generators, by field; the facts table gives the order. */
static const struct tuned { const char *key; void (*fn)(gen *g); } tuned[] = {
  {"ecog", gen_ecog}, {"metastatic", gen_metastatic}, {"primary", gen_primary},
  {"prior_regimens", gen_regimens}, {"neuropathy", gen_neuropathy}, {"molecular", gen_molecular},
  {"metastases", gen_metastases}, {"prior_radiation_sites", gen_radiation},
  {"planned_surgery_in_days", gen_surgery}, {"proposed_orders", gen_orders}};

static void gen_case(gen *g, uint64_t seed, long i) {
  size_t start = g->b->len;
  const pw_field *root = &pw_facts_schema;
  open_obj(g);
  for (int k = 0; k < root->nkids; k++) {
    const pw_field *fd = &root->kids[k];
    size_t t = 0, nt = sizeof tuned / sizeof tuned[0];
    if (!strcmp(fd->key, "patient_id")) { gen_patient_id(g, fd, seed, i); continue; }
    while (t < nt && strcmp(tuned[t].key, fd->key)) t++;
    if (t < nt) tuned[t].fn(g);
    else if (!fd->derived) gen_field(g, fd);
  }
  if (chance(&g->r, PCT(1))) { key(g, "notes"); str(g, "referral letter scanned, see PDF"); }
  close_obj(g);
  if (g->bad == BAD_TRUNCATE) g->b->len = start + (g->b->len - start) / 2;
  pw_buf_adds(g->b, "\n");
}

void pw_cohort_init(pw_cohort *c, uint64_t seed, double invalid_pct) {
  rng r, r2;
  memset(c, 0, sizeof *c);
  rng_seed(&r, seed);
  rng_seed(&r2, seed ^ 0x5eed2f0c75ull);
  memcpy(c->r, r.s, sizeof c->r);
  memcpy(c->r2, r2.s, sizeof c->r2);
  c->seed = seed;
  c->p_invalid = (uint32_t)(invalid_pct * 10000 + 0.5);
}

void pw_cohort_next(pw_cohort *c, pw_buf *out) {
  gen g;
  memset(&g, 0, sizeof g);
  g.b = out;
  memcpy(g.r.s, c->r, sizeof c->r);
  memcpy(g.r2.s, c->r2, sizeof c->r2);
  c->i++;
  g.bad = c->p_invalid && chance(&g.r, c->p_invalid) ? uniform(&g.r, 1, BAD_KINDS - 1) : BAD_NONE;
  gen_case(&g, c->seed, (long)c->i);
  memcpy(c->r, g.r.s, sizeof c->r);
  memcpy(c->r2, g.r2.s, sizeof c->r2);
}
