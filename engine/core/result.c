/*
** result.c: building a result and writing it as JSON or text.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "engine.h"
#include "file.h"
#include "jsonw.h"
#include "knowledge.h"
#include "result.h"

/* Append a string literal: its length is known at compile time. */
#define ADDL(b, lit) pw_buf_add(b, "" lit, sizeof(lit) - 1)

#define VEC_PUSH(vec, out) do { \
    if ((vec).n == (vec).cap) { \
      int cap_ = (vec).cap ? (vec).cap * 2 : 16; \
      void *p_ = realloc((vec).v, (size_t)cap_ * sizeof *(vec).v); \
      if (!p_) { out = NULL; break; } \
      (vec).v = p_; (vec).cap = cap_; \
    } \
    out = &(vec).v[(vec).n++]; \
    memset(out, 0, sizeof *out); \
  } while (0)

void pw_result_reset(pw_result *r) {
  pw_arena_reset(&r->arena);
  r->patient_id = NULL;
  pw_result_clear_plan(r);
}

/* Forget the plan but keep the arena (the facts live in it) and the patient id. */
void pw_result_clear_plan(pw_result *r) {
  r->applicability = r->pathway = r->pathway_rationale = NULL;
  r->applicable = 1;
  memset(&r->pathway_cites, 0, sizeof r->pathway_cites);
  r->items.n = r->missing.n = 0;
  r->warnings.n = r->followup.n = r->outcomes.n = r->trace.n = 0;
  r->facts_sha256[0] = '\0';
  r->text_bytes = 0;
  r->nnotes = 0;
}

void pw_result_free(pw_result *r) {
  pw_arena_free(&r->arena);
  free(r->items.v); free(r->missing.v); free(r->warnings.v);
  free(r->followup.v); free(r->outcomes.v); free(r->trace.v);
  memset(r, 0, sizeof *r);
}

pw_item *pw_result_add_item(pw_result *r) {
  pw_item *it;
  VEC_PUSH(r->items, it);
  if (it) it->action = -1;
  return it;
}

pw_missing *pw_result_add_missing(pw_result *r, const char *fact) {
  pw_missing *m;
  for (int i = 0; i < r->missing.n; i++)
    if (!strcmp(r->missing.v[i].fact, fact)) return &r->missing.v[i];
  VEC_PUSH(r->missing, m);
  if (m) m->fact = pw_arena_strdup(&r->arena, fact, strlen(fact));
  return m;
}

pw_note *pw_result_add_note(pw_result *r, int which) {
  pw_note *n = NULL;
  switch (which) {
  case PW_NOTE_WARN: VEC_PUSH(r->warnings, n); break;
  case PW_NOTE_FOLLOWUP: VEC_PUSH(r->followup, n); break;
  case PW_NOTE_OUTCOME: VEC_PUSH(r->outcomes, n); break;
  default: VEC_PUSH(r->trace, n); break;
  }
  return n;
}

int pw_result_n_recommended(const pw_result *r) {
  int n = 0;
  for (int i = 0; i < r->items.n; i++)
    n += pw_item_recommended(&r->items.v[i]);
  return n;
}

int pw_result_n_blocked(const pw_result *r) {
  int n = 0;
  for (int i = 0; i < r->items.n; i++) n += r->items.v[i].blocked;
  return n;
}

/* ---- JSON ---- */

static const char *source_name(pw_source s) {
  static const char *names[] = {"protocol", "proposed_order", "plugin", "safety"};
  return names[s];
}

static void j_cites(pw_jsonw *w, const char *key, const pw_cites *c) {
  pw_jsonw_key(w, key);
  pw_jsonw_begin_array(w);
  for (int i = 0; i < c->n; i++) pw_jsonw_int(w, c->v[i]);
  pw_jsonw_end_array(w);
}

static void j_strings(pw_jsonw *w, const char *key, const char *const *v, int n) {
  pw_jsonw_key(w, key);
  pw_jsonw_begin_array(w);
  for (int i = 0; i < n; i++) pw_jsonw_str(w, v[i]);
  pw_jsonw_end_array(w);
}

static void j_agents(pw_jsonw *w, uint32_t agents) {
  pw_jsonw_key(w, "agents");
  pw_jsonw_begin_array(w);
  for (int i = 0; i < PW_AG_COUNT; i++)
    if (agents & PW_AGENT_BIT(i)) pw_jsonw_str(w, pw_knowledge_agent(i)->id);
  pw_jsonw_end_array(w);
}

static void j_recommendation(pw_jsonw *w, const pw_item *it, int tracing) {
  pw_jsonw_begin_object(w);
  pw_jsonw_field_str(w, "id", it->id);
  pw_jsonw_field_str(w, "kind", it->kind);   /* resolved when the item was built */
  pw_jsonw_field_str(w, "strength", it->strength);
  pw_jsonw_field_str(w, "text", it->text);
  pw_jsonw_field_str(w, "rationale", it->rationale);
  j_cites(w, "citations", &it->cites);
  j_agents(w, it->agents);
  if (it->group) pw_jsonw_field_str(w, "group", it->group);
  if (it->group) pw_jsonw_field_bool(w, "preferred", it->preferred);
  if (it->target) pw_jsonw_field_int(w, "target", it->target);
  if (tracing && it->evidence) pw_jsonw_field_str(w, "evidence", it->evidence);
  if (tracing && it->nfacts) j_strings(w, "facts", it->facts, it->nfacts);
  pw_jsonw_field_str(w, "source", source_name(it->source));
  pw_jsonw_field_int(w, "line", it->line);
  pw_jsonw_end_object(w);
}

const char *pw_level_name(pw_level l) {
  static const char *names[] = {"patient", "urgent", "standing"};
  return l <= PW_LEVEL_STANDING ? names[l] : "patient";
}

/* Warnings are written urgent first, then patient-specific, then the
** standing reminders; within a level, in the order they were made. */
static const pw_level level_order[] = {PW_LEVEL_URGENT, PW_LEVEL_PATIENT, PW_LEVEL_STANDING};

/* A block by a plugin's rule ("plugin/rule"): local policy, not the kernel. */
static int local_block(const pw_item *it) { return it->blocked && it->rule && strchr(it->rule, '/') != NULL; }

static void j_blocked(pw_jsonw *w, const pw_item *it, int tracing) {
  pw_jsonw_begin_object(w);
  pw_jsonw_field_str(w, "id", it->id);
  j_agents(w, it->agents);
  pw_jsonw_field_str(w, "source", source_name(it->source));
  pw_jsonw_field_str(w, "rule", it->rule);
  if (local_block(it)) {   /* a plugin's rule: local policy, with the plugin's id */
    const char *slash = strchr(it->rule, '/');
    pw_jsonw_field_str(w, "by", "local_policy");
    char plugin[128];
    snprintf(plugin, sizeof plugin, "%.*s", (int)(slash - it->rule), it->rule);
    pw_jsonw_field_str(w, "plugin", plugin);
  }
  pw_jsonw_field_str(w, "reason", it->reason);
  j_cites(w, "citations", &it->rule_cites);
  if (it->text) pw_jsonw_field_str(w, "text", it->text);
  if (it->line) pw_jsonw_field_int(w, "line", it->line);
  if (it->rule_beyond) pw_jsonw_field_str(w, "beyond_guideline", it->rule_beyond);
  if (tracing && it->rule_evidence) pw_jsonw_field_str(w, "evidence", it->rule_evidence);
  pw_jsonw_end_object(w);
}

static void j_missing(pw_jsonw *w, const pw_missing *m) {
  pw_jsonw_begin_object(w);
  pw_jsonw_field_str(w, "fact", m->fact);
  pw_jsonw_field_str(w, "reason", m->why);
  pw_jsonw_field_str(w, "order", m->order);
  pw_jsonw_field_str(w, "test", m->test);
  j_cites(w, "citations", &m->cites);
  pw_jsonw_field_str(w, "source", source_name(m->source));
  pw_jsonw_end_object(w);
}

static void j_note(pw_jsonw *w, const pw_note *n, int with_id, int is_warning) {
  pw_jsonw_begin_object(w);
  if (with_id) pw_jsonw_field_str(w, "id", n->id);
  pw_jsonw_field_str(w, "text", n->text);
  j_cites(w, "citations", &n->cites);
  if (with_id) pw_jsonw_field_str(w, "source", source_name(n->source));
  if (is_warning) pw_jsonw_field_str(w, "level", pw_level_name(n->level));
  if (n->beyond) pw_jsonw_field_str(w, "beyond_guideline", n->beyond);
  pw_jsonw_end_object(w);
}

static void j_notes(pw_jsonw *w, const char *key, const pw_note *v, int n, int with_id) {
  pw_jsonw_key(w, key);
  pw_jsonw_begin_array(w);
  for (int i = 0; i < n; i++) j_note(w, &v[i], with_id, 0);
  pw_jsonw_end_array(w);
}

static void j_warnings(pw_jsonw *w, const pw_note *v, int n) {
  pw_jsonw_key(w, "warnings");
  pw_jsonw_begin_array(w);
  for (size_t l = 0; l < sizeof level_order / sizeof level_order[0]; l++)
    for (int i = 0; i < n; i++)
      if (v[i].level == level_order[l]) j_note(w, &v[i], 1, 1);
  pw_jsonw_end_array(w);
}

/* Is o an unblocked protocol item of group g? */
static int in_group(const pw_item *o, const char *g) {
  return o->group && pw_item_recommended(o) && (!g || !strcmp(o->group, g));
}

static void j_alternatives(pw_jsonw *w, const pw_result *r) {
  pw_jsonw_key(w, "alternatives");
  pw_jsonw_begin_array(w);
  for (int i = 0; i < r->items.n; i++) {
    const pw_item *it = &r->items.v[i];
    if (!in_group(it, NULL)) continue;
    int seen = 0, count = 0;
    for (int j = 0; j < r->items.n; j++) {
      if (!in_group(&r->items.v[j], it->group)) continue;
      if (j < i) seen = 1;
      count++;
    }
    if (seen || count < 2) continue;
    pw_jsonw_begin_object(w);
    pw_jsonw_field_str(w, "group", it->group);
    pw_jsonw_field_str(w, "choose", "one");
    pw_jsonw_key(w, "items");
    pw_jsonw_begin_array(w);
    for (int j = i; j < r->items.n; j++)
      if (in_group(&r->items.v[j], it->group)) pw_jsonw_str(w, r->items.v[j].id);
    pw_jsonw_end_array(w);
    pw_jsonw_end_object(w);
  }
  pw_jsonw_end_array(w);
}

static void j_protocol(pw_jsonw *w, const pw_protocol_info *p, int with_title, const char *file) {
  pw_jsonw_begin_object(w);
  pw_jsonw_field_str(w, "id", p->id);
  pw_jsonw_field_str(w, "version", p->version);
  if (with_title) pw_jsonw_field_str(w, "title", p->title);
  pw_jsonw_field_str(w, "sha256", p->sha256);
  if (file) pw_jsonw_field_str(w, "file", pw_file_name(file));   /* never a host path */
  if (p->base_id) {
    pw_jsonw_key(w, "extends");
    pw_jsonw_begin_object(w);
    pw_jsonw_field_str(w, "id", p->base_id);
    pw_jsonw_field_str(w, "version", p->base_version);
    pw_jsonw_field_str(w, "sha256", p->base_sha256);
    pw_jsonw_end_object(w);
  }
  if (p->plugins_json) {   /* provenance of the plugins, wherever the protocol's is written */
    pw_jsonw_key(w, "plugins");
    pw_jsonw_raw(w, p->plugins_json, strlen(p->plugins_json));
  }
  pw_jsonw_end_object(w);
}

void pw_protocol_info_json(const pw_protocol_info *p, pw_buf *b) {
  pw_protocol_info_json_ex(p, 1, NULL, b);
}

void pw_protocol_info_json_ex(const pw_protocol_info *p, int with_title, const char *file, pw_buf *b) {
  pw_jsonw w;
  pw_jsonw_init(&w, b);
  j_protocol(&w, p, with_title, file);
}

/* The head: engine, protocol, patient, applicability and pathway. */
static void j_head(pw_jsonw *w, const pw_result *r, const pw_protocol_info *p) {
  pw_jsonw_field_int(w, "schema_version", PW_RESULT_SCHEMA);
  pw_jsonw_key(w, "engine");
  pw_jsonw_begin_object(w);
  pw_jsonw_field_str(w, "name", "pathwise");
  pw_jsonw_field_str(w, "version", PW_VERSION);
  pw_jsonw_end_object(w);
  pw_jsonw_key(w, "protocol");
  j_protocol(w, p, 1, NULL);
  pw_jsonw_field_str(w, "patient_id", r->patient_id);
  pw_jsonw_key(w, "applicable");
  if (r->applicable < 0) pw_jsonw_null(w);
  else pw_jsonw_bool(w, r->applicable);
  pw_jsonw_field_str(w, "applicability", r->applicability);
  pw_jsonw_field_str(w, "pathway", r->pathway);
  pw_jsonw_key(w, "pathway_detail");
  pw_jsonw_begin_object(w);
  pw_jsonw_field_str(w, "rationale", r->pathway_rationale);
  j_cites(w, "citations", &r->pathway_cites);
  pw_jsonw_end_object(w);
}

static void j_orders(pw_jsonw *w, const pw_result *r) {
  pw_jsonw_key(w, "orders");
  pw_jsonw_begin_array(w);
  for (int i = 0; i < r->items.n; i++) {
    const pw_item *it = &r->items.v[i];
    if (it->source != PW_SRC_ORDER) continue;
    pw_jsonw_begin_object(w);
    pw_jsonw_field_str(w, "id", it->id);
    j_agents(w, it->agents);
    /* not "allowed": passing the rules is not an approval */
    pw_jsonw_field_str(w, "status", it->blocked ? "blocked" : "no_rule_violated");
    pw_jsonw_end_object(w);
  }
  pw_jsonw_end_array(w);
}

static void j_trace(pw_jsonw *w, const pw_result *r) {
  pw_jsonw_key(w, "trace");
  pw_jsonw_begin_array(w);
  for (int i = 0; i < r->trace.n; i++) {
    const pw_note *n = &r->trace.v[i];
    pw_jsonw_begin_object(w);
    pw_jsonw_field_str(w, "text", n->text);
    if (n->id) pw_jsonw_field_str(w, "rule", n->id);
    if (n->line) pw_jsonw_field_int(w, "line", n->line);
    pw_jsonw_end_object(w);
  }
  pw_jsonw_end_array(w);
}

/* The texts of the references the citations point at: the guideline's and
** any an extension or plugin added ([6] "Institutional policy ..."). */
static void j_references(pw_jsonw *w, const pw_protocol_info *p) {
  pw_jsonw_key(w, "references");
  pw_jsonw_begin_array(w);
  for (int i = 1; i <= PW_MAX_REFS; i++) {
    if (!p->refs[i]) continue;
    pw_jsonw_begin_object(w);
    pw_jsonw_field_int(w, "number", i);
    pw_jsonw_field_str(w, "text", p->refs[i]);
    pw_jsonw_end_object(w);
  }
  pw_jsonw_end_array(w);
}

void pw_result_json(const pw_result *r, const pw_protocol_info *p, pw_buf *b) {
  pw_jsonw w;
  pw_jsonw_init(&w, b);
  pw_jsonw_begin_object(&w);
  j_head(&w, r, p);
  pw_jsonw_key(&w, "recommendations");
  pw_jsonw_begin_array(&w);
  for (int i = 0; i < r->items.n; i++)
    if (pw_item_recommended(&r->items.v[i]))
      j_recommendation(&w, &r->items.v[i], r->tracing);
  pw_jsonw_end_array(&w);
  pw_jsonw_key(&w, "blocked");
  pw_jsonw_begin_array(&w);
  for (int i = 0; i < r->items.n; i++)
    if (r->items.v[i].blocked) j_blocked(&w, &r->items.v[i], r->tracing);
  pw_jsonw_end_array(&w);
  pw_jsonw_key(&w, "missing");
  pw_jsonw_begin_array(&w);
  for (int i = 0; i < r->missing.n; i++) j_missing(&w, &r->missing.v[i]);
  pw_jsonw_end_array(&w);
  j_warnings(&w, r->warnings.v, r->warnings.n);
  j_notes(&w, "followup", r->followup.v, r->followup.n, 1);
  j_notes(&w, "outcomes", r->outcomes.v, r->outcomes.n, 0);
  j_alternatives(&w, r);
  j_orders(&w, r);
  j_references(&w, p);
  if (r->tracing) j_trace(&w, r);
  pw_jsonw_end_object(&w);
}

/* ---- text for people ---- */

static void t_cites(pw_buf *b, const pw_cites *c) {
  if (!c->n) return;
  ADDL(b, " [");
  for (int i = 0; i < c->n; i++) pw_buf_addf(b, i ? ", %d" : "%d", c->v[i]);
  ADDL(b, "]");
}

static void t_section(pw_buf *b, const char *title, int n) {
  pw_buf_addf(b, "\n%s%s\n", title, n ? "" : ": none");
}

static int t_count_level(const pw_result *r, pw_level l) {
  int n = 0;
  for (int i = 0; i < r->warnings.n; i++) n += r->warnings.v[i].level == l;
  return n;
}

/* A guideline item shows its citations; one beyond the guideline says so,
** and names its source on the next line. */
static void t_basis(pw_buf *b, const pw_cites *c, const char *beyond, const char *indent) {
  if (!beyond) { t_cites(b, c); return; }
  pw_buf_addf(b, " [beyond the guideline]\n%sSource: %s", indent, beyond);
}

static void t_warnings(pw_buf *b, const pw_result *r, pw_level l, const char *title, const char *bullet) {
  int n = t_count_level(r, l);
  if (l == PW_LEVEL_URGENT && !n) return;   /* said only when there is one */
  t_section(b, title, n);
  for (int i = 0; i < r->warnings.n; i++) {
    const pw_note *w = &r->warnings.v[i];
    if (w->level != l) continue;
    pw_buf_addf(b, "  %s %s", bullet, w->text);
    t_basis(b, &w->cites, w->beyond, "    ");
    ADDL(b, "\n");
  }
}

/* The head: who, and whether and how the protocol applies; an urgent
** warning comes right after the patient, before anything else. */
static void t_head(pw_buf *b, const pw_result *r, const pw_protocol_info *p) {
  pw_buf_addf(b, "pathwise %s | protocol %s %s (sha256 %.12s)\n", PW_VERSION, p->id, p->version, p->sha256);
  if (p->base_id)   /* an extension: the base it was built on, in full */
    pw_buf_addf(b, "Extends: %s %s (sha256 %s)\n", p->base_id, p->base_version ? p->base_version : "-",
                p->base_sha256);
  pw_buf_addf(b, "Patient: %s\n", r->patient_id ? r->patient_id : "(no id)");
  t_warnings(b, r, PW_LEVEL_URGENT, "URGENT", "!!");
  if (t_count_level(r, PW_LEVEL_URGENT)) ADDL(b, "\n");
  pw_buf_addf(b, "Protocol applies: %s", r->applicable < 0 ? "cannot tell yet" : r->applicable ? "yes" : "no");
  if (r->applicability) pw_buf_addf(b, " (%s)", r->applicability);
  pw_buf_addf(b, "\nPathway: %s", r->pathway ? r->pathway : "none");
  t_cites(b, &r->pathway_cites);
  if (r->pathway_rationale) pw_buf_addf(b, "\n  %s", r->pathway_rationale);
  ADDL(b, "\n");
}

static void t_recommendations(pw_buf *b, const pw_result *r) {
  t_section(b, "RECOMMENDATIONS", pw_result_n_recommended(r));
  for (int i = 0, k = 0; i < r->items.n; i++) {
    const pw_item *it = &r->items.v[i];
    if (it->source != PW_SRC_PROTOCOL || it->blocked) continue;
    pw_buf_addf(b, "  %d. %s (%s", ++k, it->id, it->strength);
    if (it->group) pw_buf_addf(b, "; %s alternative%s", it->group, it->preferred ? ", preferred" : "");
    ADDL(b, ")");
    t_cites(b, &it->cites);
    if (it->text) pw_buf_addf(b, "\n     %s", it->text);
    if (it->rationale) pw_buf_addf(b, "\n     Why: %s", it->rationale);
    if (r->tracing && it->evidence) pw_buf_addf(b, "\n     Guideline: \"%s\"", it->evidence);
    if (r->tracing && it->line) pw_buf_addf(b, "\n     From protocol line %d", it->line);
    ADDL(b, "\n");
  }
  for (int i = 0; i < r->items.n; i++) {   /* alternatives, said in words */
    const pw_item *it = &r->items.v[i];
    if (!in_group(it, NULL)) continue;
    int seen = 0, count = 0;
    for (int j = 0; j < r->items.n; j++)
      if (in_group(&r->items.v[j], it->group)) {
        if (j < i) seen = 1;
        count++;
      }
    if (seen || count < 2) continue;
    pw_buf_addf(b, "  Choose one (%s):", it->group);
    for (int j = i, k = 0; j < r->items.n; j++)
      if (in_group(&r->items.v[j], it->group)) pw_buf_addf(b, "%s %s", k++ ? " or" : "", r->items.v[j].id);
    ADDL(b, "\n");
  }
}

static void t_blocks(pw_buf *b, const pw_result *r, int local) {
  int n = 0;
  for (int i = 0; i < r->items.n; i++) n += r->items.v[i].blocked && local_block(&r->items.v[i]) == local;
  if (local && n == 0) return;   /* the section exists only with a plugin's block */
  t_section(b, local ? "WITHHELD BY LOCAL POLICY" : "BLOCKED BY SAFETY RULES", n);
  for (int i = 0; i < r->items.n; i++) {
    const pw_item *it = &r->items.v[i];
    if (!it->blocked || local_block(it) != local) continue;
    if (local) {
      const char *slash = strchr(it->rule, '/');
      pw_buf_addf(b, "  - %s (%s) by plugin %.*s, rule %s", it->id, source_name(it->source),
                  (int)(slash - it->rule), it->rule, slash + 1);
    } else {
      pw_buf_addf(b, "  - %s (%s) by %s", it->id, source_name(it->source), it->rule);
    }
    t_basis(b, &it->rule_cites, it->rule_beyond, "    ");
    pw_buf_addf(b, "\n    %s\n", it->reason);
    if (r->tracing && it->rule_evidence) pw_buf_addf(b, "    Guideline: \"%s\"\n", it->rule_evidence);
  }
}

static void t_blocked_and_missing(pw_buf *b, const pw_result *r) {
  t_blocks(b, r, 0);
  t_blocks(b, r, 1);
  t_section(b, "MISSING FACTS: ORDER OR ASSESS", r->missing.n);
  for (int i = 0; i < r->missing.n; i++) {
    const pw_missing *m = &r->missing.v[i];
    pw_buf_addf(b, "  - %s: %s", m->fact, m->test ? m->test : "assess");
    if (m->order) pw_buf_addf(b, " (order %s)", m->order);
    t_cites(b, &m->cites);
    if (m->why) pw_buf_addf(b, "\n    %s", m->why);
    ADDL(b, "\n");
  }
}

/* This patient's warnings before the standing "do not" reminders. */
static void t_notes(pw_buf *b, const pw_result *r) {
  t_warnings(b, r, PW_LEVEL_PATIENT, "WARNINGS FOR THIS PATIENT", "-");
  t_warnings(b, r, PW_LEVEL_STANDING, "STANDING REMINDERS: WHAT NOT TO DO", "-");
  const struct { const char *title; const pw_note *v; int n; } lists[] = {
    {"FOLLOW-UP", r->followup.v, r->followup.n},
    {"EXPECTED OUTCOMES", r->outcomes.v, r->outcomes.n}};
  for (size_t s = 0; s < 2; s++) {
    t_section(b, lists[s].title, lists[s].n);
    for (int i = 0; i < lists[s].n; i++) {
      pw_buf_addf(b, "  - %s", lists[s].v[i].text);
      t_cites(b, &lists[s].v[i].cites);
      ADDL(b, "\n");
    }
  }
}

static void t_tail(pw_buf *b, const pw_result *r, const pw_protocol_info *p) {
  int nord = 0;
  for (int i = 0; i < r->items.n; i++) nord += r->items.v[i].source == PW_SRC_ORDER;
  if (nord) {   /* passing the rules is not an approval: never "allowed" */
    t_section(b, "PROPOSED ORDERS", nord);
    for (int i = 0; i < r->items.n; i++)
      if (r->items.v[i].source == PW_SRC_ORDER)
        pw_buf_addf(b, "  - %s: %s%s\n", r->items.v[i].id, r->items.v[i].blocked ? "BLOCKED by " : "no safety rule violated",
                    r->items.v[i].blocked ? r->items.v[i].rule : "");
  }
  if (r->tracing) {
    t_section(b, "TRACE", r->trace.n);
    for (int i = 0; i < r->trace.n; i++) {
      const pw_note *n = &r->trace.v[i];
      if (n->line) pw_buf_addf(b, "  line %d: %s\n", n->line, n->text);
      else pw_buf_addf(b, "  %s\n", n->text);
    }
  }
  int any = 0;
  for (int i = 1; i <= PW_MAX_REFS; i++) any |= p->refs[i] != NULL;
  if (any) {
    ADDL(b, "\nREFERENCES\n");
    for (int i = 1; i <= PW_MAX_REFS; i++)
      if (p->refs[i]) pw_buf_addf(b, "  [%d] %s\n", i, p->refs[i]);
  }
}

void pw_result_text(const pw_result *r, const pw_protocol_info *p, pw_buf *b) {
  t_head(b, r, p);
  t_recommendations(b, r);
  t_blocked_and_missing(b, r);
  t_notes(b, r);
  t_tail(b, r, p);
}
