/*
** test_facts.c: validation of patient facts through the real path (gate,
** lua-cjson, C validator): each error names the path, what was expected
** and what came; unknown fields are warnings; lua-cjson's loose defaults
** never reach a decision.
*/
#include <lauxlib.h>
#include <lualib.h>
#include <string.h>
#include "engine.h"
#include "facts.h"
#include "gate.h"
#include "pwtest.h"
#include "sandbox.h"

static pw_engine *E;
static pw_error err;

static pw_status run(const char *json) {
  return pw_engine_eval(E, json, strlen(json), PW_EVAL_ORDERS_ONLY, NULL, &err);
}

#define BAD(json, want) do { CHECK(run(json) == PW_EINPUT); CHECK_CONTAINS(err.msg, want); } while (0)
#define GOOD(json) do { pw_status s_ = run(json); CHECK(s_ == PW_OK); if (s_) fprintf(stderr, "  %s\n", err.msg); } while (0)

static void types_and_ranges(void) {
  BAD("{\"ecog\":7}", "ecog: expected integer 0..4, got 7");
  BAD("{\"ecog\":-1}", "ecog: expected integer 0..4, got -1");
  BAD("{\"ecog\":2.5}", "ecog: expected integer 0..4, got 2.5");
  BAD("{\"ecog\":\"2\"}", "ecog: expected integer 0..4, got \"2\"");
  BAD("{\"ecog\":true}", "ecog: expected integer 0..4, got true");
  BAD("{\"ecog\":1e400}", "ecog: expected integer 0..4, got inf");
  GOOD("{\"ecog\":4}");
  GOOD("{\"ecog\":0}");
  GOOD("{\"ecog\":2.0}");   /* exactly an integer */
  BAD("{\"metastatic\":\"yes\"}", "metastatic: expected true or false, got \"yes\"");
  BAD("{\"molecular\":{\"kras\":\"positive\"}}", "molecular.kras: expected one of wild_type, mutant, unknown");
  BAD("{\"molecular\":{\"msi\":\"MSI-H\"}}", "molecular.msi: expected one of msi_high, mss, unknown");
  BAD("{\"molecular\":[1]}", "molecular: expected an object, got an array");
  BAD("{\"neuropathy\":{\"grade\":5}}", "neuropathy.grade: expected integer 0..4, got 5");
  BAD("{\"primary\":{\"site\":\"sigmoid\"}}", "primary.site: expected one of rectum, colon_left, colon_right");
  BAD("{\"primary\":{\"symptoms\":[\"bleeding\",\"fever\"]}}", "primary.symptoms[1]: expected one of bleeding");
  BAD("{\"metastases\":[{\"site\":\"bone\"},{\"site\":\"toe\"}]}", "metastases[1].site: expected one of bone");
  BAD("{\"metastases\":[{\"site\":\"bone\",\"symptoms\":\"pain\"}]}", "metastases[0].symptoms: expected an array");
  BAD("{\"prior_regimens\":[{\"name\":\"FOLFOX\",\"line\":0}]}", "prior_regimens[0].line: expected integer 1..99, got 0");
  BAD("{\"prior_regimens\":[{\"outcome\":\"cured\"}]}", "prior_regimens[0].outcome: expected one of progression");
  BAD("{\"planned_surgery_in_days\":-1}", "planned_surgery_in_days: expected integer >= 0 or null, got -1");
  BAD("{\"planned_surgery_in_days\":\"soon\"}", "planned_surgery_in_days: expected integer >= 0 or null");
  GOOD("{\"planned_surgery_in_days\":null}");
  BAD("{\"proposed_orders\":[\"cetuximabb\"]}", "proposed_orders[0]: unknown id 'cetuximabb'");
  BAD("{\"proposed_orders\":[\"FOLFIRI+aspirin\"]}", "proposed_orders[0]: unknown id 'aspirin'");
  BAD("{\"patient_id\":42}", "patient_id: expected a string, got 42");
  BAD("[1,2]", "object");
}

static void cjson_traps(void) {
  CHECK(run("{\"ecog\":NaN}") == PW_EINPUT);
  CHECK(run("{\"ecog\":Infinity}") == PW_EINPUT);
  CHECK(run("{\"ecog\":0x1}") == PW_EINPUT);
  CHECK(run("{\"ecog\":1,\"ecog\":3}") == PW_EINPUT);
  CHECK_CONTAINS(err.msg, "duplicate key 'ecog'");
  CHECK(run("{\"molecular\":{\"kras\":\"mutant\",\"kras\":\"wild_type\"}}") == PW_EINPUT);
  CHECK_CONTAINS(err.msg, "molecular");
  static const char nul[] = "{\"ecog\":1}\0{\"ecog\":4}";
  CHECK(pw_engine_eval(E, nul, sizeof nul - 1, PW_EVAL_ORDERS_ONLY, NULL, &err) == PW_EINPUT);
  CHECK(run("{\"ecog\":1,}") == PW_EINPUT);
  CHECK(run("{\"patient_id\":\"\xff\xfe\"}") == PW_EINPUT);
  CHECK(run("{\"ecog\":1} trailing") == PW_EINPUT);
  CHECK(run("") == PW_EINPUT);
}

static void unknown_fields(void) {
  GOOD("{\"ecog\":1,\"ecgo\":2,\"molecular\":{\"her2\":\"amplified\"}}");
  const pw_result *r = pw_engine_result(E);
  int seen = 0;
  for (int i = 0; i < r->warnings.n; i++)
    if (!strcmp(r->warnings.v[i].id, "unknown_field") &&
        (strstr(r->warnings.v[i].text, "'ecgo'") || strstr(r->warnings.v[i].text, "'molecular.her2'")))
      seen++;
  CHECK(seen == 2);
}

/* Members are read in key order, not in the hash order of lua_next, so
** warnings and the first error are the same on every run. */
static void member_order(void) {
  char json[1024] = "{\"ecog\":1";
  static const char *const keys[] = {"zeta", "alpha", "mu", "beta", "omega", "kappa", "delta", "eta",
                                     "iota", "gamma", "nu", "xi", "pi", "rho", "tau", "chi"};
  int nk = (int)(sizeof keys / sizeof keys[0]);
  for (int i = 0; i < nk; i++) {
    strcat(json, ",\"");
    strcat(json, keys[i]);
    strcat(json, "\":0");
  }
  strcat(json, "}");
  GOOD(json);
  const pw_result *r = pw_engine_result(E);
  const char *prev = NULL;
  int n = 0, sorted = 1;
  for (int i = 0; i < r->warnings.n; i++) {
    if (strcmp(r->warnings.v[i].id, "unknown_field")) continue;
    const char *t = strchr(r->warnings.v[i].text, '\'');
    if (prev && t && strcmp(prev, t) > 0) sorted = 0;
    prev = t;
    n++;
  }
  CHECK(n == nk);
  CHECK(sorted);
  BAD("{\"neuropathy\":{\"grade\":9},\"metastatic\":1,\"ecog\":7}", "ecog: expected integer 0..4, got 7");
  BAD("{\"molecular\":{\"nras\":\"x\",\"kras\":\"y\"}}", "molecular.kras:");
}

/* User text shown in warnings and errors is cut on UTF-8 boundaries, and
** the JSON writer never emits invalid UTF-8 (found by fuzz_eval: a long
** unknown key of 3-byte characters was cut mid-character). */
static void utf8_in_messages(void) {
  char euro[100] = "", json[400];
  pw_buf out = {0};
  for (int i = 0; i < 30; i++) strcat(euro, "\xe2\x82\xac");   /* 90 bytes */
  snprintf(json, sizeof json, "{\"ecog\":1,\"%s\":1}", euro);
  CHECK(pw_engine_eval(E, json, strlen(json), PW_EVAL_ORDERS_ONLY, &out, &err) == PW_OK);
  CHECK(pw_utf8_valid(out.data, out.len));
  CHECK(pw_gate_check(out.data, out.len, NULL, NULL, NULL, 0) == 0);
  CHECK(strstr(out.data, "...") != NULL);
  CHECK(strstr(out.data, "\\ufffd") == NULL);   /* cut on a boundary, not repaired by the writer */
  snprintf(json, sizeof json, "{\"proposed_orders\":[\"%s\"]}", euro);
  BAD(json, "proposed_orders[0]: unknown id '");
  CHECK(pw_utf8_valid(err.msg, strlen(err.msg)));
  snprintf(json, sizeof json, "{\"proposed_orders\":[\"FOLFIRI+%s\"]}", euro);
  BAD(json, "in 'FOLFIRI+");
  CHECK(pw_utf8_valid(err.msg, strlen(err.msg)));
  pw_buf_reset(&out);
  pw_buf_json_str(&out, "ok \xe2\x82 \xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80 \xc3\xa9 0123456789\xff");
  CHECK_STR(out.data, "\"ok \\ufffd\\ufffd \\ufffd\\ufffd \\ufffd\\ufffd\\ufffd "
                      "\\ufffd\\ufffd\\ufffd\\ufffd \xc3\xa9 0123456789\\ufffd\"");
  pw_buf_free(&out);
}

static void everything_valid(void) {
  GOOD("{\"patient_id\":\"p1\",\"ecog\":1,\"metastatic\":true,"
       "\"primary\":{\"site\":\"rectum\",\"resected\":true,\"prior_pelvic_radiation\":true,\"symptoms\":[]},"
       "\"prior_regimens\":[{\"name\":\"FOLFOX\",\"line\":1,\"outcome\":\"progression\"}],"
       "\"neuropathy\":{\"grade\":1,\"persistent\":false},"
       "\"molecular\":{\"kras\":\"unknown\",\"nras\":\"wild_type\",\"braf_v600e\":\"wild_type\",\"msi\":\"mss\"},"
       "\"metastases\":[{\"site\":\"bone\",\"symptoms\":[\"pain\",\"fracture_risk\"]},{\"site\":\"lung\",\"symptoms\":[]}],"
       "\"prior_radiation_sites\":[\"pelvis\"],\"planned_surgery_in_days\":60,\"proposed_orders\":[\"FOLFIRI+bevacizumab\"]}");
  const pw_result *r = pw_engine_result(E);
  CHECK_STR(r->patient_id, "p1");
  CHECK(strlen(pw_engine_facts_sha256(E)) == 64);
  CHECK(r->warnings.n == 0);
}

static void canonical_hash(void) {
  char a[65], b[65];
  GOOD("{\"ecog\":1,\"metastatic\":true}");
  memcpy(a, pw_engine_facts_sha256(E), 65);
  GOOD("{ \"metastatic\" : true , \"ecog\" : 1.0 }");   /* same facts, other spelling */
  memcpy(b, pw_engine_facts_sha256(E), 65);
  CHECK_STR(a, b);
  GOOD("{\"ecog\":2,\"metastatic\":true}");
  CHECK(strcmp(a, pw_engine_facts_sha256(E)) != 0);
}


/* ---- the facts-model contract (TEAM.md 1-5): through the real gate,
** decoder and validator into a pw_facts ---- */

static pw_facts F;
static pw_arena A;
static char ferr[600];

static int facts_of(const char *json) {
  lua_State *L = pw_engine_lua(E);
  int top = lua_gettop(L), r;
  pw_error e2;
  ferr[0] = '\0';
  if (pw_engine_decode(E, json, strlen(json), NULL, &e2) != PW_OK) {
    snprintf(ferr, sizeof ferr, "%s", e2.msg);
    return -1;
  }
  pw_arena_reset(&A);
  r = pw_facts_from_lua(L, -1, &F, &A, ferr, sizeof ferr);
  lua_settop(L, top);
  return r;
}

static const char *describe_of(const char *path) {
  static char b[200];
  const char *s = pw_facts_describe(&F, path, b, sizeof b);
  return s ? s : "(no such path)";
}

static const char *canonical_of(const char *json) {
  static char out[4096];
  pw_buf b = {0};
  if (facts_of(json)) return ferr;
  pw_facts_canonical(&F, &b);
  snprintf(out, sizeof out, "%s", b.data);
  pw_buf_free(&b);
  return out;
}

#define FGOOD(json) do { int r_ = facts_of(json); CHECK(r_ == 0); if (r_) fprintf(stderr, "  %s\n", ferr); } while (0)
#define FBAD(json, want) do { CHECK(facts_of(json) != 0); CHECK_CONTAINS(ferr, want); } while (0)

/* 1. "unknown" means unknown on every field, as absent does; null keeps
** its meaning (planned_surgery_in_days: none planned). */
static void unknown_everywhere(void) {
  static const char *const fields[] = {
    "\"patient_id\":\"unknown\"", "\"ecog\":\"unknown\"", "\"metastatic\":\"unknown\"",
    "\"primary\":\"unknown\"", "\"primary\":{\"site\":\"unknown\"}", "\"primary\":{\"resected\":\"unknown\"}",
    "\"primary\":{\"prior_pelvic_radiation\":\"unknown\"}", "\"primary\":{\"symptoms\":\"unknown\"}",
    "\"prior_regimens\":\"unknown\"", "\"neuropathy\":\"unknown\"", "\"neuropathy\":{\"grade\":\"unknown\"}",
    "\"neuropathy\":{\"persistent\":\"unknown\"}", "\"molecular\":\"unknown\"", "\"molecular\":{\"kras\":\"unknown\"}",
    "\"metastases\":\"unknown\"", "\"prior_radiation_sites\":\"unknown\"",
    "\"planned_surgery_in_days\":\"unknown\"", "\"proposed_orders\":\"unknown\""};
  char json[256], absent[4096];
  snprintf(absent, sizeof absent, "%s", canonical_of("{}"));
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    snprintf(json, sizeof json, "{%s}", fields[i]);
    CHECK_STR(canonical_of(json), absent);   /* the same facts as {} */
  }
  /* inside records */
  FGOOD("{\"prior_regimens\":[{\"name\":\"unknown\",\"line\":\"unknown\",\"outcome\":\"unknown\"}]}");
  CHECK_STR(describe_of("prior_regimens[0].line"), "unknown");
  CHECK_STR(describe_of("prior_regimens[0].name"), "unknown");
  CHECK(F.regimens_known && F.nregimens == 1 && F.regimens[0].name == NULL && F.regimens[0].line == 0);
  FGOOD("{\"metastases\":[{\"site\":\"unknown\",\"symptoms\":\"unknown\"}]}");
  CHECK(F.mets_known && F.nmets == 1 && F.mets[0].site == 0 && !F.mets[0].symptoms_known);
  FGOOD("{\"ecog\":\"unknown\"}");
  CHECK(F.ecog == PW_UNKNOWN);
  CHECK_STR(describe_of("ecog"), "unknown");
  /* planned surgery: "unknown" is unknown, null is none planned */
  FGOOD("{\"planned_surgery_in_days\":\"unknown\"}");
  CHECK(F.surgery == PW_SURGERY_UNKNOWN);
  FGOOD("{\"planned_surgery_in_days\":null}");
  CHECK(F.surgery == PW_SURGERY_NONE);
  /* the other side: only the exact word */
  FBAD("{\"ecog\":\"Unknown\"}", "ecog: expected integer 0..4, got \"Unknown\"");
  FBAD("{\"ecog\":\"unknown \"}", "ecog: expected integer 0..4");
  FBAD("{\"metastatic\":\"unk\"}", "metastatic: expected true or false");
  FBAD("{\"primary\":{\"symptoms\":[\"unknown\"]}}", "primary.symptoms[0]: expected one of bleeding");
  FBAD("{\"planned_surgery_in_days\":\"none\"}", "planned_surgery_in_days: expected integer >= 0 or null");
  /* a misspelled field is still reported, whatever its value */
  GOOD("{\"ecgo\":\"unknown\"}");
  CHECK(pw_engine_result(E)->warnings.n == 1 && !strcmp(pw_engine_result(E)->warnings.v[0].id, "unknown_field"));
  /* the view: nil, as absent */
  GOOD("{\"ecog\":\"unknown\"}");
}

/* 2. primary.site gains colon (side not known) and non_colorectal. */
static void primary_sites(void) {
  FGOOD("{\"primary\":{\"site\":\"colon\"}}");
  CHECK(F.primary.site == PW_PRIM_COLON);
  CHECK_STR(describe_of("primary.site"), "colon");
  FGOOD("{\"primary\":{\"site\":\"non_colorectal\"}}");
  CHECK(F.primary.site == PW_PRIM_NON_COLORECTAL);
  CHECK_STR(describe_of("primary.site"), "non_colorectal");
  FGOOD("{\"primary\":{\"site\":\"colon_left\"}}");
  CHECK(F.primary.site == PW_PRIM_COLON_LEFT);
  FBAD("{\"primary\":{\"site\":\"Colon\"}}", "primary.site: expected one of rectum, colon_left, colon_right, colon, non_colorectal");
  FBAD("{\"primary\":{\"site\":\"colorectal\"}}", "primary.site: expected one of");
}

/* 3. spine on a bone metastasis only */
static void spine(void) {
  FGOOD("{\"metastases\":[{\"site\":\"bone\",\"spine\":true}]}");
  CHECK(F.mets[0].spine == 1);
  CHECK_STR(describe_of("metastases[0].spine"), "true");
  FGOOD("{\"metastases\":[{\"site\":\"bone\",\"spine\":false}]}");
  CHECK(F.mets[0].spine == 0);
  FGOOD("{\"metastases\":[{\"site\":\"bone\",\"spine\":\"unknown\"},{\"site\":\"bone\"}]}");
  CHECK(F.mets[0].spine == PW_UNKNOWN && F.mets[1].spine == PW_UNKNOWN);
  CHECK_STR(describe_of("metastases[1].spine"), "unknown");
  FGOOD("{\"metastases\":[{\"site\":\"liver\"},{\"site\":\"bone\",\"spine\":null}]}");
  CHECK(F.mets[0].spine == PW_UNKNOWN && F.mets[1].spine == PW_UNKNOWN);
  FGOOD("{\"metastases\":[{\"site\":\"liver\",\"spine\":\"unknown\"}]}");   /* unknown = absent */
  FBAD("{\"metastases\":[{\"site\":\"bone\"},{\"site\":\"liver\",\"spine\":true}]}",
       "metastases[1].spine: expected only when site is bone, got site liver");
  FBAD("{\"metastases\":[{\"spine\":false,\"site\":\"inguinal_nodes\"}]}",
       "metastases[0].spine: expected only when site is bone, got site inguinal_nodes");
  FBAD("{\"metastases\":[{\"spine\":true}]}", "metastases[0].spine: expected only when site is bone, got site unknown");
  FBAD("{\"metastases\":[{\"site\":\"bone\",\"spine\":\"yes\"}]}", "metastases[0].spine: expected true or false");
  GOOD("{\"primary\":{\"spine\":true}}");   /* not a field of the primary: a warning, not an error */
  CHECK(pw_engine_result(E)->warnings.n == 1);
}

/* The rule that blocked order given facts members, "" when none did. */
static const char *verdict(const char *members, const char *order) {
  static char rule[600];
  char json[2048];
  snprintf(json, sizeof json, "{%s%s\"proposed_orders\":[\"%s\"]}", members, *members ? "," : "", order);
  if (run(json) != PW_OK) { snprintf(rule, sizeof rule, "error: %s", err.msg); return rule; }
  const pw_result *r = pw_engine_result(E);
  for (int i = 0; i < r->items.n; i++)
    if (!strcmp(r->items.v[i].id, order)) {
      snprintf(rule, sizeof rule, "%s", r->items.v[i].blocked ? r->items.v[i].rule : "");
      return rule;
    }
  return "not found";
}

static int warned(const char *id, const char *text) {
  const pw_result *r = pw_engine_result(E);
  for (int i = 0; i < r->warnings.n; i++)
    if (!strcmp(r->warnings.v[i].id, id) && strstr(r->warnings.v[i].text, text)) return 1;
  return 0;
}

/* 4. prior radiation sites: a vocabulary with laterality; anything else
** may include the groin, so the kernel refuses the standard groin course. */
static void radiation_vocabulary(void) {
  static const struct { const char *site; int groin, base, side; } cases[] = {
    {"groin", 1, PW_RT_GROIN, 0}, {"inguinal", 1, PW_RT_INGUINAL, 0}, {"left groin", 1, PW_RT_GROIN, PW_SIDE_LEFT},
    {"right inguinal", 1, PW_RT_INGUINAL, PW_SIDE_RIGHT}, {"Bilateral Groin", 1, PW_RT_GROIN, PW_SIDE_BILATERAL},
    {"GROIN", 1, PW_RT_GROIN, 0}, {"pelvis", 0, PW_RT_PELVIS, 0}, {"left pelvis", 0, PW_RT_PELVIS, PW_SIDE_LEFT},
    {"spine", 0, PW_RT_SPINE, 0}, {"retroperitoneum", 0, PW_RT_RETROPERITONEUM, 0}, {"bone", 0, PW_RT_BONE, 0},
    {"brain", 0, PW_RT_BRAIN, 0}, {"liver", 0, PW_RT_LIVER, 0}, {"right lung", 0, PW_RT_LUNG, PW_SIDE_RIGHT},
    {"chest", 0, PW_RT_CHEST, 0}, {"abdomen", 0, PW_RT_ABDOMEN, 0}, {"other", 0, PW_RT_OTHER, 0},
    /* outside the vocabulary: possibly the groin */
    {"left  groin", 2, 0, 0}, {" groin", 2, 0, 0}, {"groin (L)", 2, 0, 0}, {"left", 2, 0, 0},
    {"middle groin", 2, 0, 0}, {"hemipelvis", 2, 0, 0}, {"leftgroin", 2, 0, 0}, {"unknown", 2, 0, 0},
  };
  const char *ing = "\"metastases\":[{\"site\":\"inguinal_nodes\",\"symptoms\":[\"pain\"]}]";
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char json[512], m[512];
    snprintf(json, sizeof json, "{\"prior_radiation_sites\":[\"%s\"]}", cases[i].site);
    FGOOD(json);
    CHECK(pw_facts_prior_groin_rt(&F) == cases[i].groin);
    CHECK(F.rt[0].site == cases[i].base && F.rt[0].side == cases[i].side);
    CHECK(F.rt[0].recognised == (cases[i].groin != 2));
    CHECK(F.nwarnings == (cases[i].groin == 2));
    CHECK_STR(F.rt_sites[0], cases[i].site);   /* kept as written */
    snprintf(m, sizeof m, "%s,\"prior_radiation_sites\":[\"%s\"]", ing, cases[i].site);
    CHECK_STR(verdict(m, "palliative_rt_inguinal"), cases[i].groin ? "groin_rt_prior_radiation" : "");
    CHECK(warned("prior_radiation_site_unrecognised", "is not a recognised radiation site") == (cases[i].groin == 2));
  }
  /* certain beats possible; several entries */
  FGOOD("{\"prior_radiation_sites\":[\"hemipelvis\",\"right groin\"]}");
  CHECK(pw_facts_prior_groin_rt(&F) == 1);
  CHECK_STR(describe_of("prior_radiation_sites"), "includes the groin");
  FGOOD("{\"prior_radiation_sites\":[\"pelvis\",\"hemipelvis\"]}");
  CHECK(pw_facts_prior_groin_rt(&F) == 2);
  CHECK_STR(describe_of("prior_radiation_sites"), "may include the groin (a site not recognised)");
  CHECK_STR(describe_of("prior_radiation[1].text"), "hemipelvis");
  CHECK_STR(describe_of("prior_radiation[0].site"), "pelvis");
  FGOOD("{\"prior_radiation_sites\":[]}");
  CHECK(pw_facts_prior_groin_rt(&F) == 0);
  CHECK_STR(describe_of("prior_radiation_sites"), "no groin");
  /* the kernel's reason says which */
  char m[512];
  snprintf(m, sizeof m, "%s,\"prior_radiation_sites\":[\"hemipelvis\"]", ing);
  CHECK_STR(verdict(m, "palliative_rt_inguinal"), "groin_rt_prior_radiation");
  const pw_result *r = pw_engine_result(E);
  CHECK(r->items.n == 1 && strstr(r->items.v[0].reason, "not recognised and may include the groin"));
  /* prior_radiation is read, not written */
  GOOD("{\"prior_radiation\":[]}");
  CHECK(warned("unknown_field", "'prior_radiation'"));
  /* a long unrecognised value is cut in the warning, on a UTF-8 boundary */
  char lng[400] = "{\"prior_radiation_sites\":[\"";
  for (int i = 0; i < 30; i++) strcat(lng, "\xe2\x82\xac");
  strcat(lng, "\"]}");
  GOOD(lng);
  CHECK(warned("prior_radiation_site_unrecognised", "...' is not"));
}

/* 5. {} where a list belongs, and [] where an object belongs, are errors
** naming the path (cjson decodes both as the same empty table). */
static void empty_object_vs_list(void) {
  static const char *const lists[] = {"prior_regimens", "metastases", "prior_radiation_sites", "proposed_orders"};
  for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
    char json[200], want[200];
    snprintf(json, sizeof json, "{\"%s\":{}}", lists[i]);
    snprintf(want, sizeof want, "%s: expected an array", lists[i]);
    BAD(json, want);
    CHECK_CONTAINS(err.msg, "got an object");
    snprintf(json, sizeof json, "{\"%s\":[]}", lists[i]);
    GOOD(json);
    snprintf(json, sizeof json, "{\"%s\" : [ \n ] }", lists[i]);
    GOOD(json);
  }
  BAD("{\"prior_regimens\":{ }}", "prior_regimens: expected an array, got an object");
  BAD("{\"primary\":{\"symptoms\":{}}}", "primary.symptoms: expected an array of symptoms, got an object");
  BAD("{\"metastases\":[{\"site\":\"bone\",\"symptoms\":{}}]}", "metastases[0].symptoms: expected an array of symptoms, got an object");
  GOOD("{\"metastases\":[{\"site\":\"bone\",\"symptoms\":[]}]}");
  static const char *const objects[] = {"primary", "neuropathy", "molecular"};
  for (size_t i = 0; i < sizeof objects / sizeof objects[0]; i++) {
    char json[200], want[200];
    snprintf(json, sizeof json, "{\"%s\":[]}", objects[i]);
    snprintf(want, sizeof want, "%s: expected an object, got an array", objects[i]);
    BAD(json, want);
    snprintf(json, sizeof json, "{\"%s\":{}}", objects[i]);
    GOOD(json);
  }
  BAD("{\"prior_regimens\":[[]]}", "prior_regimens[0]: expected an object, got an array");
  GOOD("{\"prior_regimens\":[{}]}");
  BAD("{\"metastases\":[{\"site\":\"bone\"},[]]}", "metastases[1]: expected an object, got an array");
  BAD("{\"ecog\":[]}", "ecog: expected integer 0..4, got an array");
  BAD("{\"ecog\":{}}", "ecog: expected integer 0..4, got an object");
  /* keys spelled with escapes are followed into */
  BAD("{\"m\\u0065tastases\":[{\"site\":\"bone\",\"sympt\\u006fms\":{}}]}", "metastases[0].symptoms: expected an array");
  /* "[]" inside a string marks nothing */
  GOOD("{\"patient_id\":\"[] {}\",\"primary\":{\"symptoms\":[]}}");
  /* the same facts, the same hash, whatever the spacing */
  char a[65];
  GOOD("{\"prior_regimens\":[],\"primary\":{}}");
  memcpy(a, pw_engine_facts_sha256(E), 65);
  GOOD("{ \"prior_regimens\" : [ ] , \"primary\" : { } }");
  CHECK_STR(a, pw_engine_facts_sha256(E));
}

/* The views scripts see: per radiation entry its base site and laterality;
** spine on a bone metastasis; "unknown" reads as nil. */
static void views(void) {
  lua_State *L = luaL_newstate();
  uint32_t gen = 1;
  luaL_openlibs(L);
  pw_facts_open(L);
  FGOOD("{\"ecog\":\"unknown\",\"primary\":{\"site\":\"colon\"},"
        "\"metastases\":[{\"site\":\"bone\",\"spine\":true},{\"site\":\"liver\"}],"
        "\"prior_radiation_sites\":[\"left groin\",\"pelvis\",\"Groin (L)\"]}");
  static const char chunk[] =
    "local f = ...\n"
    "local rt = f.prior_radiation\n"
    "local keys = {}\n"
    "for k in pairs(f) do keys[#keys + 1] = k end\n"
    "return table.concat({tostring(f.ecog), f.primary.site, tostring(f.metastases[1].spine),\n"
    "  tostring(f.metastases[2].spine), #rt, rt[1].site, rt[1].laterality, tostring(rt[1].recognised),\n"
    "  rt[1].text, rt[2].site, tostring(rt[2].laterality), tostring(rt[3].site), tostring(rt[3].recognised),\n"
    "  rt[3].text, f.prior_radiation_sites[1], #f.prior_radiation_sites, table.concat(keys, ' ')}, '|')";
  CHECK(luaL_loadstring(L, chunk) == LUA_OK);
  pw_facts_push_view(L, &F, &gen);
  int rc = lua_pcall(L, 1, 1, 0);
  CHECK(rc == LUA_OK);
  CHECK_STR(lua_tostring(L, -1), "nil|colon|true|nil|3|groin|left|true|left groin|pelvis|nil|nil|false|"
                                 "Groin (L)|left groin|3|primary neuropathy molecular metastases prior_radiation_sites");
  lua_close(L);
}

PW_TEST_MAIN({
  E = pw_engine_new(NULL, &err);
  CHECK(E != NULL);
  if (!E) return 1;
  types_and_ranges();
  cjson_traps();
  unknown_fields();
  member_order();
  utf8_in_messages();
  everything_valid();
  canonical_hash();
  unknown_everywhere();
  primary_sites();
  spine();
  radiation_vocabulary();
  empty_object_vs_list();
  views();
  pw_arena_free(&A);
  pw_engine_free(E);
})
