/*
** test_adapter.c: the C side of input adapters (engine/core/adapter.c):
** dates, the fixed key order of the facts written, refusals of what an
** adapter may not return, the splice of "input" (and of the trace) into a
** result, and the plain-facts refusal of a FHIR document.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "adapter.h"
#include "engine.h"
#include "pwtest.h"

static char dir[] = "/tmp/pw_adapter_XXXXXX";

static const char *write_file(const char *name, const char *text) {
  static char path[256];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  if (!f) return NULL;
  fputs(text, f);
  fclose(f);
  return path;
}

static void test_dates(void) {
  CHECK(pw_adapter_date_ok("2026-06-01"));
  CHECK(pw_adapter_date_ok("2024-02-29"));
  CHECK(pw_adapter_date_ok("2000-02-29"));
  CHECK(!pw_adapter_date_ok("2023-02-29"));
  CHECK(!pw_adapter_date_ok("1900-02-29"));
  CHECK(!pw_adapter_date_ok("2026-13-01"));
  CHECK(!pw_adapter_date_ok("2026-04-31"));
  CHECK(!pw_adapter_date_ok("2026-6-01"));
  CHECK(!pw_adapter_date_ok("2026-06-01T00:00"));
  CHECK(!pw_adapter_date_ok(NULL));
  char today[11];
  pw_adapter_today(today);
  CHECK(pw_adapter_date_ok(today));
}

/* Run an adapter whose adapt returns the Lua expression ret. */
static pw_status run_adapter(const char *ret, pw_adapter_output *o, pw_error *err) {
  char src[1024];
  snprintf(src, sizeof src, "return { id = 't', version = '1', adapt = function(doc, ctx) return %s end }", ret);
  const char *a_path = write_file("adapter.lua", src);
  pw_adapter *a = pw_adapter_new(NULL, err);
  pw_status rc = a ? pw_adapter_load(a, a_path, err) : PW_EMEMORY;
  if (rc == PW_OK) rc = pw_adapter_add_codes(a, write_file("codes.lua", "return {}"), err);
  if (rc == PW_OK) rc = pw_adapter_run(a, "{\"resourceType\":\"Bundle\"}", 25, "2026-06-01", o, err);
  pw_adapter_free(a);
  return rc;
}

static void test_facts_written_in_model_order(void) {
  pw_adapter_output o = {0};
  pw_error err;
  pw_status rc = run_adapter(
    "{ patient = 'Patient/p', sources = {}, unmapped = { { why = 'w' } }, facts = { "
    "  molecular = { msi = 'mss', kras = 'mutant' }, metastases = { { site = 'bone' } }, "
    "  ecog = 1, patient_id = 'p', primary = { resected = true, site = 'rectum' } } }", &o, &err);
  CHECK(rc == PW_OK);
  CHECK_STR(o.facts.data, "{\"patient_id\":\"p\",\"ecog\":1,\"primary\":{\"site\":\"rectum\",\"resected\":true},"
                          "\"molecular\":{\"kras\":\"mutant\",\"msi\":\"mss\"},\"metastases\":[{\"site\":\"bone\"}]}");
  CHECK_CONTAINS(o.meta.data, "\"as_of\":\"2026-06-01\"");
  CHECK_CONTAINS(o.meta.data, "\"unmapped\":[{\"ref\":null,\"code\":null,\"why\":\"w\"}]");
  pw_adapter_output_free(&o);
}

static void test_refusals(void) {
  pw_adapter_output o = {0};
  pw_error err;
  CHECK(run_adapter("nil, 'two patients'", &o, &err) == PW_EINPUT);
  CHECK_STR(err.msg, "two patients");
  CHECK(run_adapter("{ patient = 'p', sources = {}, unmapped = {}, facts = { ecog = 9 } }", &o, &err) == PW_EPROTOCOL);
  CHECK_CONTAINS(err.msg, "produced invalid facts: ecog");
  CHECK(run_adapter("{ patient = 'p', sources = {}, unmapped = {}, facts = { egoc = 1 } }", &o, &err) == PW_EPROTOCOL);
  CHECK_CONTAINS(err.msg, "unknown fact field 'egoc'");
  CHECK(run_adapter("{ patient = 'p', sources = { { fact = 'ecog' } }, unmapped = {}, facts = {} }", &o, &err) == PW_EPROTOCOL);
  CHECK_CONTAINS(err.msg, "malformed sources");
  CHECK(run_adapter("{ facts = {} }", &o, &err) == PW_EPROTOCOL);
  CHECK(o.facts.len == 0 && o.meta.len == 0);   /* nothing half-done */
  pw_adapter_output_free(&o);
}

static void test_splice(void) {
  pw_adapter_output o = {0};
  pw_buf_adds(&o.meta, "{\"from\":\"fhir\"}");
  pw_buf_adds(&o.trace, "{\"text\":\"FHIR: a\"}");
  pw_buf r = {0};
  pw_buf_adds(&r, "{\"x\":\"\\\"trace\\\":[\",\"a\":1}\n");   /* a string holding "trace":[ */
  pw_adapter_splice(&r, &o);
  CHECK_STR(r.data, "{\"x\":\"\\\"trace\\\":[\",\"a\":1,\"input\":{\"from\":\"fhir\"}}\n");
  pw_buf_reset(&r);
  pw_buf_adds(&r, "{\"trace\":[]}");
  pw_adapter_splice(&r, &o);
  CHECK_STR(r.data, "{\"trace\":[{\"text\":\"FHIR: a\"}],\"input\":{\"from\":\"fhir\"}}");
  pw_buf_reset(&r);
  pw_buf_adds(&r, "{\"trace\":[{\"text\":\"b\"}]}");
  pw_adapter_splice(&r, &o);
  CHECK_STR(r.data, "{\"trace\":[{\"text\":\"FHIR: a\"},{\"text\":\"b\"}],\"input\":{\"from\":\"fhir\"}}");
  pw_buf_free(&r);
  pw_adapter_output_free(&o);
}

static void test_limits_named(void) {
  pw_adapter_limits lim = {0, 0, 0, 2};
  pw_error err;
  pw_adapter_output o = {0};
  pw_adapter *a = pw_adapter_new(&lim, &err);
  CHECK(a != NULL);
  CHECK(pw_adapter_run(a, "{\"a\":[1,2,3]}", 13, "2026-06-01", &o, &err) == PW_EINPUT);
  CHECK_CONTAINS(err.msg, "more than 2");
  CHECK_CONTAINS(err.msg, "FHIR input limits");
  pw_adapter_free(a);
  pw_adapter_output_free(&o);
}

static void test_plain_facts_refuse_fhir(void) {
  pw_error err;
  pw_engine *e = pw_engine_new(NULL, &err);
  CHECK(e && pw_engine_load(e, PW_SOURCE_DIR "/scripts/mrc_second_line.lua", &err) == PW_OK);
  const char *doc = "{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":[]}";
  CHECK(pw_engine_eval(e, doc, strlen(doc), 0, NULL, &err) == PW_EINPUT);
  CHECK_CONTAINS(err.msg, "resourceType 'Bundle'");
  CHECK_CONTAINS(err.msg, "--from fhir");
  const char *facts = "{\"ecog\":1}";
  CHECK(pw_engine_eval(e, facts, strlen(facts), 0, NULL, &err) == PW_OK);
  pw_engine_free(e);
}

PW_TEST_MAIN({
  if (!mkdtemp(dir)) return 1;
  test_dates();
  test_facts_written_in_model_order();
  test_refusals();
  test_splice();
  test_limits_named();
  test_plain_facts_refuse_fhir();
  unlink(write_file("adapter.lua", ""));
  unlink(write_file("codes.lua", ""));
  rmdir(dir);
})
