/* test_cds.c: the CDS Hooks service (cds.h): discovery, prefetch absent vs
** null vs incomplete, draft orders, cards and their invariants. */
#include <stdlib.h>
#include <string.h>
#include "pwtest.h"
#include "buf.h"
#include "cds.h"
#include "engine.h"

static pw_cds *C;
static pw_engine *E;
static pw_adapter *A;
static char *BUNDLE;

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) { fprintf(stderr, "missing %s\n", path); exit(1); }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  rewind(f);
  char *s = malloc((size_t)n + 1);
  if (!s || fread(s, 1, (size_t)n, f) != (size_t)n) exit(1);
  s[n] = 0;
  fclose(f);
  return s;
}

#define EMPTY "{\"resourceType\":\"Bundle\",\"type\":\"searchset\",\"entry\":[]}"
#define DRAFT(id, sys, code, disp) "{\"resource\":{\"resourceType\":\"MedicationRequest\",\"id\":\"" id \
  "\",\"status\":\"draft\",\"intent\":\"order\",\"medicationCodeableConcept\":{\"coding\":[{\"system\":\"" sys \
  "\",\"code\":\"" code "\",\"display\":\"" disp "\"}]}}}"
#define RX "http://www.nlm.nih.gov/research/umls/rxnorm"

/* A request: hook, instance, extra context members, prefetch observations value (NULL = key absent). */
static int call(int hook, const char *inst, const char *ctx, const char *obs, pw_buf *out) {
  pw_buf b = {0};
  pw_buf_addf(&b, "{\"hook\":\"%s\",\"hookInstance\":\"%s\",\"context\":{\"userId\":\"Practitioner/1\","
              "\"patientId\":\"p1\"%s},\"prefetch\":{\"patient\":%s,\"conditions\":" EMPTY "%s%s}}",
              pw_cds_hook_name(hook), inst, ctx, BUNDLE, obs ? ",\"observations\":" : "", obs ? obs : "");
  pw_buf_reset(out);
  int st = pw_cds_call(C, E, A, hook, b.data, b.len, "2026-06-01", out);
  pw_buf_add(out, "", 1);
  pw_buf_free(&b);
  return st;
}

/* Invariants of every card list: summaries < 140, selectionBehavior iff
** suggestions, override reasons with display, no null/empty optional field. */
static void invariants(const char *s) {
  CHECK(strstr(s, "\"cards\":[") == s + 1);
  CHECK(!strstr(s, ":null") || strstr(s, "\"org.pathwise.result\""));
  CHECK(!strstr(s, "\"detail\":\"\""));
  CHECK(!strstr(s, "\"suggestions\":[]"));
  int sugg = 0, sel = 0;
  for (const char *p = s; (p = strstr(p, "\"suggestions\":")); p++) sugg++;
  for (const char *p = s; (p = strstr(p, "\"selectionBehavior\":\"at-most-one\"")); p++) sel++;
  CHECK(sugg == sel);
  for (const char *p = s; (p = strstr(p, "\"summary\":\"")); p++) {
    const char *q = p + 11;
    size_t n = 0;
    while (q[n] && !(q[n] == '"' && q[n - 1] != '\\')) n++;
    CHECK(n < 140);
  }
  for (const char *p = s; (p = strstr(p, "\"overrideReasons\":[")); p++) {
    const char *end = strchr(p, ']');
    int codes = 0, displays = 0;
    for (const char *q = p; q < end && (q = strstr(q, "\"code\":")) && q < end; q++) codes++;
    for (const char *q = p; q < end && (q = strstr(q, "\"display\":")) && q < end; q++) displays++;
    CHECK(codes > 0 && codes == displays);
  }
}

static void discovery(void) {
  pw_cds_protocol p[] = {{"mrc_second_line", "Metastatic rectal cancer", "1.0.0"}};
  pw_buf b = {0};
  pw_cds_discovery(C, p, 1, &b);
  pw_buf_add(&b, "", 1);
  CHECK_CONTAINS(b.data, "\"id\":\"mrc_second_line-patient-view\"");
  CHECK_CONTAINS(b.data, "\"id\":\"mrc_second_line-order-select\"");
  CHECK_CONTAINS(b.data, "\"id\":\"mrc_second_line-order-sign\"");
  CHECK_CONTAINS(b.data, "\"patient\":\"Patient/{{context.patientId}}\"");
  CHECK_CONTAINS(b.data, "Observation?patient={{context.patientId}}&code=http://loinc.org|");
  CHECK_CONTAINS(b.data, "http://loinc.org|89247-1");   /* ECOG */
  int proto = -1;
  CHECK(pw_cds_service("mrc_second_line-order-sign", p, 1, &proto) == PW_CDS_ORDER_SIGN && proto == 0);
  CHECK(pw_cds_service("mrc_second_line-order", p, 1, &proto) == -1);
  CHECK(pw_cds_service("other-patient-view", p, 1, &proto) == -1);
  pw_buf_free(&b);
}

static void patient_view(void) {
  pw_buf o = {0}, o2 = {0};
  CHECK(call(PW_CDS_PATIENT_VIEW, "d1a0c1de-0000-4000-8000-000000000001", "", EMPTY, &o) == 200);
  invariants(o.data);
  CHECK_CONTAINS(o.data, "\"indicator\":\"info\"");
  CHECK_CONTAINS(o.data, "\"indicator\":\"warning\"");
  CHECK_CONTAINS(o.data, "KRAS and NRAS exons 2, 3, 4");
  CHECK_CONTAINS(o.data, "\"org.pathwise.result\":{");
  CHECK_CONTAINS(o.data, "\"label\":\"Metastatic rectal cancer, second line");
  CHECK_CONTAINS(o.data, "\"sha256\":\"");
  CHECK(!strstr(o.data, "Incomplete data"));
  /* deterministic: the same call, the same bytes; another instance, other ids */
  CHECK(call(PW_CDS_PATIENT_VIEW, "d1a0c1de-0000-4000-8000-000000000001", "", EMPTY, &o2) == 200);
  CHECK_STR(o2.data, o.data);
  CHECK(call(PW_CDS_PATIENT_VIEW, "d1a0c1de-0000-4000-8000-000000000002", "", EMPTY, &o2) == 200);
  char *u1 = strstr(o.data, "\"uuid\":\""), *u2 = strstr(o2.data, "\"uuid\":\"");
  CHECK(u1 && u2 && strncmp(u1, u2, 44) != 0);
  pw_buf_free(&o);
  pw_buf_free(&o2);
}

static void prefetch(void) {
  pw_buf o = {0};
  CHECK(call(PW_CDS_PATIENT_VIEW, "i-absent", "", NULL, &o) == 412);
  CHECK_CONTAINS(o.data, "\"resourceType\":\"OperationOutcome\"");
  CHECK_CONTAINS(o.data, "prefetch key 'observations'");
  CHECK(call(PW_CDS_PATIENT_VIEW, "i-null", "", "null", &o) == 200);
  invariants(o.data);
  CHECK_CONTAINS(o.data, "prefetch `observations` was null (not available)");
  CHECK(call(PW_CDS_PATIENT_VIEW, "i-oo", "", "{\"resourceType\":\"OperationOutcome\",\"issue\":[]}", &o) == 200);
  CHECK_CONTAINS(o.data, "prefetch `observations` is an OperationOutcome");
  CHECK(call(PW_CDS_PATIENT_VIEW, "i-paged", "",
             "{\"resourceType\":\"Bundle\",\"type\":\"searchset\",\"link\":[{\"relation\":\"next\",\"url\":\"x\"}],\"entry\":[]}",
             &o) == 200);
  CHECK_CONTAINS(o.data, "prefetch `observations` is paged");
  pw_buf_free(&o);
}

static void orders(void) {
  pw_buf o = {0};
  const char *ctx = ",\"draftOrders\":{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":["
      DRAFT("rx-cetux", RX, "318341", "cetuximab") "," DRAFT("rx-ondan", RX, "26225", "ondansetron") "]}";
  CHECK(call(PW_CDS_ORDER_SIGN, "i-sign", ctx, EMPTY, &o) == 200);
  invariants(o.data);
  CHECK_CONTAINS(o.data, "\"indicator\":\"critical\"");
  CHECK_CONTAINS(o.data, "blocked by rule egfr_requires_ras_wt");
  CHECK_CONTAINS(o.data, "\"selectionBehavior\":\"at-most-one\"");
  CHECK_CONTAINS(o.data, "\"type\":\"delete\"");
  CHECK_CONTAINS(o.data, "\"resourceId\":\"MedicationRequest/rx-cetux\"");
  CHECK_CONTAINS(o.data, "Do not use EGFR inhibitors without confirming RAS wild-type status");
  CHECK_CONTAINS(o.data, "1 draft order not evaluated");
  CHECK_CONTAINS(o.data, "ondansetron (`MedicationRequest/rx-ondan`)");
  /* only the unknown drug: 200, not evaluated, no critical card */
  const char *ctx2 = ",\"draftOrders\":{\"resourceType\":\"Bundle\",\"entry\":[" DRAFT("rx-ondan", RX, "26225", "ondansetron") "]}";
  CHECK(call(PW_CDS_ORDER_SIGN, "i-sign2", ctx2, EMPTY, &o) == 200);
  CHECK(!strstr(o.data, "\"critical\""));
  CHECK_CONTAINS(o.data, "not evaluated");
  /* order-select: cards only about the selected orders */
  const char *ctx3 = ",\"selections\":[\"MedicationRequest/rx-ondan\"],\"draftOrders\":{\"resourceType\":\"Bundle\",\"entry\":["
      DRAFT("rx-cetux", RX, "318341", "cetuximab") "," DRAFT("rx-ondan", RX, "26225", "ondansetron") "]}";
  CHECK(call(PW_CDS_ORDER_SELECT, "i-sel", ctx3, EMPTY, &o) == 200);
  CHECK_CONTAINS(o.data, "\"cards\":[");
  CHECK(!strstr(o.data, "rx-cetux\""));
  /* a missing draftOrders or a wrong hook: 400 */
  CHECK(call(PW_CDS_ORDER_SIGN, "i-bad", "", EMPTY, &o) == 400);
  const char *asof = "{\"hook\":\"order-sign\",\"hookInstance\":\"x\",\"context\":{},\"extension\":{\"org.pathwise.as_of\":\"2026-13-01\"}}";
  pw_buf_reset(&o);
  CHECK(pw_cds_call(C, E, A, PW_CDS_ORDER_SIGN, asof, strlen(asof), NULL, &o) == 400);
  pw_buf_add(&o, "", 1);
  CHECK_CONTAINS(o.data, "org.pathwise.as_of");
  CHECK(call(PW_CDS_ORDER_SIGN, "", ctx2, EMPTY, &o) == 400);
  pw_buf_reset(&o);
  CHECK(pw_cds_call(C, E, A, PW_CDS_ORDER_SIGN, "{\"hook\":\"patient-view\"}", 23, NULL, &o) == 400);
  CHECK(pw_cds_call(C, E, A, PW_CDS_ORDER_SIGN, "{\"hook\":", 8, NULL, &o) == 400);
  pw_buf_free(&o);
}

static void not_applicable(void) {
  pw_buf o = {0};
  char *saved = BUNDLE;
  BUNDLE = "{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":["
           "{\"resource\":{\"resourceType\":\"Patient\",\"id\":\"p1\"}},"
           "{\"resource\":{\"resourceType\":\"Condition\",\"id\":\"c\",\"subject\":{\"reference\":\"Patient/p1\"},"
           "\"code\":{\"coding\":[{\"system\":\"http://hl7.org/fhir/sid/icd-10-cm\",\"code\":\"C34.90\"}]}}}]}";
  CHECK(call(PW_CDS_PATIENT_VIEW, "i-na", "", EMPTY, &o) == 200);
  CHECK_STR(o.data, "{\"cards\":[]}");
  BUNDLE = saved;
  pw_buf_free(&o);
}

PW_TEST_MAIN({
  pw_error err;
  C = pw_cds_new(PW_SOURCE_DIR "/plugins/fhir/codes.lua", &err);
  E = pw_engine_new(NULL, &err);
  A = pw_adapter_new(NULL, &err);
  CHECK(C && E && A);
  CHECK(pw_engine_load(E, PW_SOURCE_DIR "/scripts/mrc_second_line.lua", &err) == PW_OK);
  CHECK(pw_adapter_load(A, PW_SOURCE_DIR "/plugins/fhir/adapter.lua", &err) == PW_OK);
  CHECK(pw_adapter_add_codes(A, PW_SOURCE_DIR "/plugins/fhir/codes.lua", &err) == PW_OK);
  BUNDLE = slurp(PW_SOURCE_DIR "/tests/data/fhir/colorectal/index_case.json");
  discovery();
  patient_view();
  prefetch();
  orders();
  not_applicable();
  free(BUNDLE);
  pw_cds_free(C);
  pw_engine_free(E);
  pw_adapter_free(A);
})
