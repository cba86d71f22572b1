/*
** test_whatif.c: the result comparison shared with `pathwise diff`
** (resultdiff.c) and the what-if exploration (whatif.c), through the real
** engine and the default protocol: impacts on both sides, the facts table
** left as it was, the engine left holding the patient's own result, a
** variant whose evaluation fails, and where the text section goes.
*/
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include "engine.h"
#include "pwtest.h"
#include "resultdiff.h"
#include "whatif.h"

static pw_engine *E;

#define INDEX_FACTS                                                                          \
  "\"ecog\":1,\"metastatic\":true,"                                                          \
  "\"primary\":{\"site\":\"rectum\",\"resected\":true,\"prior_pelvic_radiation\":true,"      \
  "\"symptoms\":[]},\"prior_regimens\":[{\"name\":\"FOLFOX\",\"line\":1,\"outcome\":\"progression\"}]," \
  "\"neuropathy\":{\"grade\":1,\"persistent\":false},"                                       \
  "\"metastases\":[{\"site\":\"bone\",\"symptoms\":[\"pain\"]}],\"prior_radiation_sites\":[\"pelvis\"]," \
  "\"planned_surgery_in_days\":null"

static pw_whatif *run(const char *json, pw_status *rc) {
  static pw_whatif *w;
  pw_error err;
  if (!w) w = pw_whatif_new();
  lua_State *L = pw_engine_lua(E);
  int top = lua_gettop(L);
  *rc = pw_engine_decode(E, json, strlen(json), NULL, &err);
  if (*rc == PW_OK) *rc = pw_whatif_run(w, E, -1, 0, NULL, &err);
  if (*rc != PW_OK) fprintf(stderr, "what-if: %s\n", err.msg);
  lua_settop(L, top);
  return w;
}

static int impact_of(const pw_whatif *w, const char *id) {
  for (int i = 0; i < pw_whatif_count(w); i++)
    if (!strcmp(pw_whatif_id(w, i), id)) return pw_whatif_impact(w, i);
  return -1;   /* not explored */
}

/* resultdiff: the categories pathway diff counts, on two real results. */
static void result_diff(void) {
  pw_error err;
  static pw_rdiff_key ka[PW_RDIFF_MAX_KEYS], kb[PW_RDIFF_MAX_KEYS];
  static pw_rdiff_change ch[2 * PW_RDIFF_MAX_KEYS];
  pw_engine *other = pw_engine_new(NULL, &err);
  CHECK(other && pw_engine_load(other, PW_SOURCE_DIR "/scripts/mrc_second_line.lua", &err) == PW_OK);
  const char *a = "{" INDEX_FACTS ",\"molecular\":{\"msi\":\"mss\"}}";
  const char *b = "{" INDEX_FACTS ",\"molecular\":{\"msi\":\"msi_high\",\"kras\":\"wild_type\"}}";
  CHECK(pw_engine_eval(E, a, strlen(a), 0, NULL, &err) == PW_OK);
  CHECK(pw_engine_eval(other, b, strlen(b), 0, NULL, &err) == PW_OK);
  const pw_result *ra = pw_engine_result(E), *rb = pw_engine_result(other);
  int cats[PW_RDIFF_NCATS] = {0}, na = pw_rdiff_keys(ra, ka), nb = pw_rdiff_keys(rb, kb);
  pw_rdiff d = {ch, 0, cats};
  pw_rdiff_compare(&d, ra, ka, na, rb, kb, nb);
  CHECK(cats[PW_RDIFF_PATHWAY] && !cats[PW_RDIFF_APPLICABILITY]);
  CHECK(cats[PW_RDIFF_ADDED] && cats[PW_RDIFF_REMOVED]);
  int pembro = 0, folfiri = 0;
  for (int i = 0; i < d.nch; i++) {
    pembro |= ch[i].cat == PW_RDIFF_ADDED && !strcmp(ch[i].key, "pembrolizumab");
    folfiri |= ch[i].cat == PW_RDIFF_REMOVED && !strcmp(ch[i].key, "FOLFIRI+bevacizumab");
  }
  CHECK(pembro && folfiri);
  /* the same result against itself: nothing */
  int same[PW_RDIFF_NCATS] = {0};
  pw_rdiff z = {ch, 0, same};
  na = pw_rdiff_keys(ra, ka);
  nb = pw_rdiff_keys(ra, kb);
  pw_rdiff_compare(&z, ra, ka, na, ra, kb, nb);
  CHECK(z.nch == 0 && !same[PW_RDIFF_PATHWAY]);
  pw_engine_free(other);
}

static void impacts(void) {
  pw_status rc;
  /* the index case: MSI changes the pathway; RAS only as a panel */
  pw_whatif *w = run("{" INDEX_FACTS ",\"molecular\":{\"kras\":\"unknown\",\"nras\":\"unknown\"}}", &rc);
  CHECK(rc == PW_OK);
  CHECK(impact_of(w, "molecular.msi") == PW_WI_PATHWAY);
  CHECK(impact_of(w, "panel.ras") == PW_WI_OPTION);
  CHECK(impact_of(w, "molecular.kras") == PW_WI_NONE);
  CHECK(impact_of(w, "molecular.braf_v600e") == PW_WI_NONE);
  CHECK(impact_of(w, "ecog") == -1);   /* known: not explored */
  CHECK_STR(pw_whatif_id(w, 0), "molecular.msi");
  CHECK(pw_whatif_evaluations(w) == 2 + 2 + 2 + 2 + 4 + 16);
  /* the engine holds the patient's own result again */
  CHECK_STR(pw_engine_result(E)->pathway, "second_line_systemic");
  /* ECOG unknown decides chemotherapy or best supportive care */
  w = run("{\"metastatic\":true,\"prior_regimens\":[{\"name\":\"FOLFOX\",\"line\":1,\"outcome\":\"progression\"}],"
          "\"molecular\":{\"kras\":\"mutant\",\"nras\":\"wild_type\",\"braf_v600e\":\"wild_type\",\"msi\":\"mss\"},"
          "\"primary\":{\"symptoms\":[]},\"neuropathy\":{\"grade\":0,\"persistent\":false},"
          "\"planned_surgery_in_days\":null,\"metastases\":[],\"prior_radiation_sites\":[]}", &rc);
  CHECK(rc == PW_OK);
  CHECK(impact_of(w, "ecog") == PW_WI_PATHWAY);
  /* issue 10: a non-colorectal primary takes the patient out of the guideline */
  CHECK(impact_of(w, "primary.site") == PW_WI_PATHWAY);
  CHECK_STR(pw_engine_result(E)->pathway, "needs_assessment");
  /* surgery date unknown: the regimen */
  w = run("{" "\"ecog\":1,\"metastatic\":true,\"prior_regimens\":[{\"name\":\"FOLFOX\",\"line\":1,\"outcome\":\"progression\"}],"
          "\"molecular\":{\"kras\":\"mutant\",\"nras\":\"wild_type\",\"braf_v600e\":\"wild_type\",\"msi\":\"mss\"},"
          "\"primary\":{\"site\":\"rectum\",\"resected\":true,\"prior_pelvic_radiation\":true,\"symptoms\":[]},"
          "\"neuropathy\":{\"grade\":0,\"persistent\":false},\"metastases\":[],\"prior_radiation_sites\":[]}", &rc);
  CHECK(rc == PW_OK);
  CHECK(pw_whatif_count(w) == 1);
  CHECK(impact_of(w, "planned_surgery_in_days") == PW_WI_REGIMEN);
}

/* Every fact pathwise set is back as it was: absent, "unknown", null, and
** a parent object that was not there. */
static void table_restored(void) {
  pw_error err;
  pw_whatif *w = pw_whatif_new();
  lua_State *L = pw_engine_lua(E);
  const char *json = "{\"ecog\":1,\"metastatic\":true,\"molecular\":{\"kras\":\"unknown\",\"msi\":null},"
                     "\"prior_regimens\":[{\"name\":\"FOLFOX\",\"line\":1}],"
                     "\"metastases\":[{\"site\":\"liver\",\"symptoms\":[]},{\"site\":\"bone\"}]}";
  int top = lua_gettop(L);
  CHECK(pw_engine_decode(E, json, strlen(json), NULL, &err) == PW_OK);
  CHECK(pw_whatif_run(w, E, -1, 0, NULL, &err) == PW_OK);
  CHECK(lua_gettop(L) == top + 1);
  CHECK(pw_whatif_count(w) > 5);
  lua_getfield(L, -1, "molecular");
  lua_getfield(L, -1, "kras");
  CHECK_STR(lua_tostring(L, -1), "unknown");
  lua_getfield(L, -2, "msi");
  CHECK(lua_type(L, -1) == LUA_TLIGHTUSERDATA);
  lua_getfield(L, -3, "nras");
  CHECK(lua_isnil(L, -1));
  lua_pop(L, 4);
  /* fields of list records: the records are the same tables, their unknown field still absent */
  lua_getfield(L, -1, "metastases");
  CHECK(lua_rawlen(L, -1) == 2);
  lua_rawgeti(L, -1, 2);
  lua_getfield(L, -1, "symptoms");
  CHECK(lua_isnil(L, -1));
  lua_getfield(L, -2, "site");
  CHECK_STR(lua_tostring(L, -1), "bone");
  lua_rawgeti(L, -4, 1);
  lua_getfield(L, -1, "symptoms");
  CHECK(lua_istable(L, -1) && lua_rawlen(L, -1) == 0);
  lua_pop(L, 6);
  lua_getfield(L, -1, "prior_regimens");
  lua_rawgeti(L, -1, 1);
  lua_getfield(L, -1, "outcome");
  CHECK(lua_isnil(L, -1));
  lua_pop(L, 3);
  CHECK(impact_of(w, "metastases[1].symptoms") == PW_WI_NONE);   /* explored; applicability undecided */
  CHECK(impact_of(w, "metastases[0].symptoms") == -1);   /* recorded: [] */
  CHECK(impact_of(w, "prior_regimens[0].outcome") == PW_WI_PATHWAY);
  const char *absent[] = {"primary", "neuropathy", "planned_surgery_in_days", "prior_radiation_sites"};
  for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++) {
    lua_getfield(L, -1, absent[i]);
    CHECK(lua_isnil(L, -1));
    lua_pop(L, 1);
  }
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, -2)) { n++; lua_pop(L, 1); }
  CHECK(n == 5);
  lua_settop(L, top);
  pw_whatif_free(w);
}

/* A protocol that fails for one value: that value reports the error, the
** others are still compared, and the run succeeds. */
static void failing_variant(void) {
  static const char proto[] =
    "return { id = 'fragile', version = '1', title = 'fragile', references = { [1] = 'r' },\n"
    "  applies = function(facts, out) return true end,\n"
    "  evaluate = function(facts, out)\n"
    "    if facts.molecular.msi == 'msi_high' then error('no MSI-high branch') end\n"
    "    out.pathway('p')\n"
    "    if facts.ecog == 4 then out.recommend{ id = 'best_supportive_care', text = 'bsc', citations = {1} } end\n"
    "  end }\n";
  pw_error err;
  pw_status rc;
  pw_engine *saved = E;
  E = pw_engine_new(NULL, &err);
  CHECK(pw_engine_load_buffer(E, "fragile.lua", proto, sizeof proto - 1, &err) == PW_OK);
  pw_whatif *w = run("{\"metastatic\":true}", &rc);
  CHECK(rc == PW_OK);
  CHECK(impact_of(w, "ecog") == PW_WI_OPTION);
  CHECK(impact_of(w, "molecular.msi") == PW_WI_NONE);
  pw_buf j = {0};
  pw_whatif_json(w, &j);
  CHECK_CONTAINS(j.data, "\"msi_high\":{\"impact\":\"none\",\"error\":{\"status\":\"protocol\"");
  CHECK_CONTAINS(j.data, "\"4\":{\"impact\":\"option\"");
  pw_buf_reset(&j);
  pw_whatif_text(w, &j);
  CHECK_CONTAINS(j.data, "molecular.msi: cannot tell for some values\n");
  CHECK_CONTAINS(j.data, "msi_high: cannot tell: the evaluation failed (protocol:");
  const char *nochange = strstr(j.data, "  No change whatever the result");
  CHECK(nochange != NULL);
  if (nochange) {   /* a failed evaluation is never "no change" */
    CHECK(!memmem(nochange, strcspn(nochange, "\n"), "molecular.msi,", 14));
    CHECK(memmem(nochange, strcspn(nochange, "\n"), "molecular.nras,", 15) != NULL);
  }
  pw_buf_free(&j);
  pw_engine_free(E);
  E = saved;
}

/* A change of wording only (text, rationale) is shown but is no change of plan. */
static void wording_only(void) {
  static const char proto[] =
    "return { id = 'wording', version = '1', title = 'wording', references = { [1] = 'r' },\n"
    "  applies = function(facts, out) return true end,\n"
    "  evaluate = function(facts, out)\n"
    "    out.pathway('p')\n"
    "    out.recommend{ id = 'ct_reassessment', text = 'ECOG ' .. tostring(facts.ecog), citations = {1} }\n"
    "  end }\n";
  pw_error err;
  pw_status rc;
  pw_engine *saved = E;
  E = pw_engine_new(NULL, &err);
  CHECK(pw_engine_load_buffer(E, "wording.lua", proto, sizeof proto - 1, &err) == PW_OK);
  pw_whatif *w = run("{\"metastatic\":true}", &rc);
  CHECK(rc == PW_OK);
  CHECK(impact_of(w, "ecog") == PW_WI_NONE);
  pw_buf j = {0};
  pw_whatif_json(w, &j);
  CHECK_CONTAINS(j.data, "\"3\":{\"impact\":\"none\",\"changes\":[\"modified\"]");
  CHECK_CONTAINS(j.data, "\"modified\":[{\"item\":\"ct_reassessment\",\"fields\":[\"text\"]}]");
  pw_buf_reset(&j);
  pw_whatif_text(w, &j);
  CHECK_CONTAINS(j.data, "No pending result or missing fact changes the plan");
  pw_buf_free(&j);
  pw_engine_free(E);
  E = saved;
}

static void section_placement(void) {
  pw_buf r = {0};
  pw_buf_adds(&r, "head\n\nMISSING FACTS: ORDER OR ASSESS\n  - a\n  - b\n\nWARNINGS\n  - w\n");
  pw_whatif_insert_section(&r, "\nWHAT\n  x\n", 10);
  CHECK_STR(r.data, "head\n\nMISSING FACTS: ORDER OR ASSESS\n  - a\n  - b\n\nWHAT\n  x\n\nWARNINGS\n  - w\n");
  pw_buf_reset(&r);
  pw_buf_adds(&r, "no such section\n");
  pw_whatif_insert_section(&r, "\nWHAT\n", 6);
  CHECK_STR(r.data, "no such section\n\nWHAT\n");
  pw_buf_free(&r);
}

PW_TEST_MAIN({
  pw_error err;
  E = pw_engine_new(NULL, &err);
  CHECK(E != NULL);
  if (!E) return 1;
  CHECK(pw_engine_load(E, PW_SOURCE_DIR "/scripts/mrc_second_line.lua", &err) == PW_OK);
  result_diff();
  impacts();
  table_restored();
  failing_variant();
  wording_only();
  section_placement();
  pw_engine_free(E);
})
