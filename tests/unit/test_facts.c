/*
** test_facts.c: validation of patient facts through the real path (gate,
** lua-cjson, C validator): each error names the path, what was expected
** and what came; unknown fields are warnings; lua-cjson's loose defaults
** never reach a decision.
*/
#include <string.h>
#include "engine.h"
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
  CHECK(strlen(r->facts_sha256) == 64);
  CHECK(r->warnings.n == 0);
}

static void canonical_hash(void) {
  char a[65], b[65];
  GOOD("{\"ecog\":1,\"metastatic\":true}");
  memcpy(a, pw_engine_result(E)->facts_sha256, 65);
  GOOD("{ \"metastatic\" : true , \"ecog\" : 1.0 }");   /* same facts, other spelling */
  memcpy(b, pw_engine_result(E)->facts_sha256, 65);
  CHECK_STR(a, b);
  GOOD("{\"ecog\":2,\"metastatic\":true}");
  CHECK(strcmp(a, pw_engine_result(E)->facts_sha256) != 0);
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
  pw_engine_free(E);
})
