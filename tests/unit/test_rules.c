/*
** test_rules.c: one source per constant and rules found by id (issue 9).
** Every rule the kernel lists can be found by its id (and nothing else
** can); the bevacizumab window the kernel enforces is the one constant
** PW_BEV_SURGERY_WINDOW_DAYS (blocked at it, allowed one day after); each
** class's agents are the agents of that class; the
** engine refuses more than PW_MAX_PLUGINS plugins.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "engine.h"
#include "knowledge.h"
#include "pwtest.h"
#include "safety.h"

/* Each class's agents (a constant table) are exactly the agents of that
** class, and every agent is in one class. */
static void test_class_agents(void) {
  uint32_t all = 0;
  for (int c = 0; c < PW_CLS_COUNT; c++) {
    uint32_t want = 0;
    for (int i = 0; pw_knowledge_agent(i); i++)
      if (pw_knowledge_agent(i)->cls == (pw_class)c) want |= PW_AGENT_BIT(i);
    CHECK(want != 0);
    CHECK(pw_knowledge_class_agents((pw_class)c) == want);
    CHECK((all & want) == 0);
    all |= want;
  }
  CHECK(all == (1u << PW_AG_COUNT) - 1);
  CHECK(pw_knowledge_class_agents(PW_CLS_COUNT) == 0);
}

static void test_rule_by_id(void) {
  CHECK(pw_safety_count() >= 12);
  for (int i = 0; i < pw_safety_count(); i++) {
    const pw_rule_info *r = pw_safety_rule(i);
    CHECK(pw_safety_rule_by_id(r->id) == r);
  }
  CHECK(pw_safety_rule_by_id("ecog_gate") != NULL);
  CHECK(pw_safety_rule_by_id("ecog_gat") == NULL);
  CHECK(pw_safety_rule_by_id("") == NULL);
  const pw_rule_info *bev = pw_safety_rule_by_id("bev_surgery_window");
  CHECK(bev && bev->cites.n == 2 && bev->cites.v[0] == 2 && bev->cites.v[1] == 4);
}

/* The rule blocking a proposed bevacizumab with surgery in `days`. */
static const char *bev_verdict(pw_engine *e, int days) {
  char json[256];
  pw_error err;
  snprintf(json, sizeof json,
           "{\"ecog\":1,\"metastatic\":true,\"planned_surgery_in_days\":%d,\"proposed_orders\":[\"bevacizumab\"]}",
           days);
  if (pw_engine_eval(e, json, strlen(json), PW_EVAL_ORDERS_ONLY, NULL, &err) != PW_OK) return "error";
  const pw_result *r = pw_engine_result(e);
  return r->items.n == 1 && r->items.v[0].blocked ? r->items.v[0].rule : "";
}

static void test_window(pw_engine *e) {
  CHECK_STR(bev_verdict(e, PW_BEV_SURGERY_WINDOW_DAYS), "bev_surgery_window");
  CHECK_STR(bev_verdict(e, PW_BEV_SURGERY_WINDOW_DAYS + 1), "");
}

static void test_plugin_limit(pw_engine *e) {
  char path[] = "/tmp/pw_test_rulesXXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  FILE *f = fdopen(fd, "w");
  CHECK(f && fputs("return { id = \"p\", check = function(facts, items, out) end }\n", f) >= 0);
  fclose(f);
  pw_error err;
  for (int i = 0; i < PW_MAX_PLUGINS; i++) CHECK(pw_engine_add_plugin(e, path, &err) == PW_OK);
  CHECK(pw_engine_add_plugin(e, path, &err) == PW_EPROTOCOL);
  CHECK_CONTAINS(err.msg, "at most 8 plugins");
  remove(path);
}

PW_TEST_MAIN({
  pw_error err;
  pw_engine *e = pw_engine_new(NULL, &err);
  CHECK(e != NULL);
  test_class_agents();
  test_rule_by_id();
  test_window(e);
  test_plugin_limit(e);
  pw_engine_free(e);
})
