/*
** result.c: building a result and writing it as JSON or text.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "engine.h"
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
  r->patient_id = r->applicability = r->pathway = r->pathway_rationale = NULL;
  r->applicable = 1;
  memset(&r->pathway_cites, 0, sizeof r->pathway_cites);
  r->items.n = r->missing.n = 0;
  r->warnings.n = r->followup.n = r->outcomes.n = r->trace.n = 0;
  r->facts_sha256[0] = '\0';
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
    n += r->items.v[i].source == PW_SRC_PROTOCOL && !r->items.v[i].blocked;
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

static void j_cites(pw_buf *b, const pw_cites *c) {
  pw_buf_add(b, "[", 1);
  for (int i = 0; i < c->n; i++) {
    if (i) pw_buf_add(b, ",", 1);
    pw_buf_add_int(b, c->v[i]);
  }
  pw_buf_add(b, "]", 1);
}

static void j_key(pw_buf *b, const char *k) {
  pw_buf_add(b, ",\"", 2);
  pw_buf_adds(b, k);
  pw_buf_add(b, "\":", 2);
}

static void j_key_str(pw_buf *b, const char *k, const char *v) {
  j_key(b, k);
  pw_buf_json_str(b, v);
}

static void j_agents(pw_buf *b, uint32_t agents) {
  ADDL(b, ",\"agents\":[");
  for (int i = 0, first = 1; i < PW_AG_COUNT; i++)
    if (agents & PW_AGENT_BIT(i)) {
      if (!first) pw_buf_add(b, ",", 1);
      pw_buf_json_str(b, pw_knowledge_agent(i)->id);
      first = 0;
    }
  ADDL(b, "]");
}

static void j_recommendation(pw_buf *b, const pw_item *it, int tracing) {
  ADDL(b, "{\"id\":");
  pw_buf_json_str(b, it->id);
  j_key_str(b, "kind", it->kind);   /* resolved when the item was built */
  j_key_str(b, "strength", it->strength);
  j_key_str(b, "text", it->text);
  j_key_str(b, "rationale", it->rationale);
  ADDL(b, ",\"citations\":");
  j_cites(b, &it->cites);
  j_agents(b, it->agents);
  if (it->group) j_key_str(b, "group", it->group);
  if (it->group) pw_buf_adds(b, it->preferred ? ",\"preferred\":true" : ",\"preferred\":false");
  if (it->target) { j_key(b, "target"); pw_buf_add_int(b, it->target); }
  if (tracing && it->evidence) j_key_str(b, "evidence", it->evidence);
  if (tracing && it->nfacts) {
    ADDL(b, ",\"facts\":[");
    for (int i = 0; i < it->nfacts; i++) {
      if (i) ADDL(b, ",");
      pw_buf_json_str(b, it->facts[i]);
    }
    ADDL(b, "]");
  }
  j_key_str(b, "source", source_name(it->source));
  j_key(b, "line");
  pw_buf_add_int(b, it->line);
  pw_buf_add(b, "}", 1);
}

static void j_blocked(pw_buf *b, const pw_item *it, int tracing) {
  ADDL(b, "{\"id\":");
  pw_buf_json_str(b, it->id);
  j_agents(b, it->agents);
  j_key_str(b, "source", source_name(it->source));
  j_key_str(b, "rule", it->rule);
  j_key_str(b, "reason", it->reason);
  ADDL(b, ",\"citations\":");
  j_cites(b, &it->rule_cites);
  if (it->text) j_key_str(b, "text", it->text);
  if (it->line) { j_key(b, "line"); pw_buf_add_int(b, it->line); }
  if (tracing && it->rule_evidence) j_key_str(b, "evidence", it->rule_evidence);
  ADDL(b, "}");
}

static void j_notes(pw_buf *b, const char *key, const pw_note *v, int n, int with_id) {
  j_key(b, key);
  pw_buf_add(b, "[", 1);
  for (int i = 0; i < n; i++) {
    pw_buf_adds(b, i ? ",{" : "{");
    if (with_id) { ADDL(b, "\"id\":"); pw_buf_json_str(b, v[i].id); ADDL(b, ","); }
    ADDL(b, "\"text\":");
    pw_buf_json_str(b, v[i].text);
    ADDL(b, ",\"citations\":");
    j_cites(b, &v[i].cites);
    if (with_id) j_key_str(b, "source", source_name(v[i].source));
    ADDL(b, "}");
  }
  ADDL(b, "]");
}

static void j_alternatives(pw_buf *b, const pw_result *r) {
  ADDL(b, ",\"alternatives\":[");
  int first = 1;
  for (int i = 0; i < r->items.n; i++) {
    const pw_item *it = &r->items.v[i];
    if (!it->group || it->blocked || it->source != PW_SRC_PROTOCOL) continue;
    int seen = 0, count = 0;
    for (int j = 0; j < r->items.n; j++) {
      const pw_item *o = &r->items.v[j];
      if (!o->group || o->blocked || o->source != PW_SRC_PROTOCOL || strcmp(o->group, it->group)) continue;
      if (j < i) seen = 1;
      count++;
    }
    if (seen || count < 2) continue;
    pw_buf_adds(b, first ? "{\"group\":" : ",{\"group\":");
    first = 0;
    pw_buf_json_str(b, it->group);
    ADDL(b, ",\"choose\":\"one\",\"items\":[");
    for (int j = i, k = 0; j < r->items.n; j++) {
      const pw_item *o = &r->items.v[j];
      if (!o->group || o->blocked || o->source != PW_SRC_PROTOCOL || strcmp(o->group, it->group)) continue;
      if (k++) ADDL(b, ",");
      pw_buf_json_str(b, o->id);
    }
    ADDL(b, "]}");
  }
  ADDL(b, "]");
}

void pw_protocol_info_json(const pw_protocol_info *p, pw_buf *b) {
  ADDL(b, "{\"id\":");
  pw_buf_json_str(b, p->id);
  j_key_str(b, "version", p->version);
  j_key_str(b, "title", p->title);
  j_key_str(b, "sha256", p->sha256);
  ADDL(b, "}");
}

void pw_result_json(const pw_result *r, const pw_protocol_info *p, pw_buf *b) {
  pw_buf_addf(b, "{\"schema_version\":%d,\"engine\":{\"name\":\"pathwise\",\"version\":\"" PW_VERSION "\"},\"protocol\":",
              PW_RESULT_SCHEMA);
  pw_protocol_info_json(p, b);
  j_key_str(b, "patient_id", r->patient_id);
  pw_buf_adds(b, r->applicable < 0 ? ",\"applicable\":null" : r->applicable ? ",\"applicable\":true" : ",\"applicable\":false");
  j_key_str(b, "applicability", r->applicability);
  j_key_str(b, "pathway", r->pathway);
  ADDL(b, ",\"pathway_detail\":{\"rationale\":");
  pw_buf_json_str(b, r->pathway_rationale);
  ADDL(b, ",\"citations\":");
  j_cites(b, &r->pathway_cites);
  ADDL(b, "},\"recommendations\":[");
  int k = 0;
  for (int i = 0; i < r->items.n; i++) {
    const pw_item *it = &r->items.v[i];
    if (it->source != PW_SRC_PROTOCOL || it->blocked) continue;
    if (k++) ADDL(b, ",");
    j_recommendation(b, it, r->tracing);
  }
  ADDL(b, "],\"blocked\":[");
  k = 0;
  for (int i = 0; i < r->items.n; i++) {
    if (!r->items.v[i].blocked) continue;
    if (k++) ADDL(b, ",");
    j_blocked(b, &r->items.v[i], r->tracing);
  }
  ADDL(b, "],\"missing\":[");
  for (int i = 0; i < r->missing.n; i++) {
    const pw_missing *m = &r->missing.v[i];
    pw_buf_adds(b, i ? ",{\"fact\":" : "{\"fact\":");
    pw_buf_json_str(b, m->fact);
    j_key_str(b, "reason", m->why);
    j_key_str(b, "order", m->order);
    j_key_str(b, "test", m->test);
    ADDL(b, ",\"citations\":");
    j_cites(b, &m->cites);
    j_key_str(b, "source", source_name(m->source));
    ADDL(b, "}");
  }
  ADDL(b, "]");
  j_notes(b, "warnings", r->warnings.v, r->warnings.n, 1);
  j_notes(b, "followup", r->followup.v, r->followup.n, 1);
  j_notes(b, "outcomes", r->outcomes.v, r->outcomes.n, 0);
  j_alternatives(b, r);
  ADDL(b, ",\"orders\":[");
  k = 0;
  for (int i = 0; i < r->items.n; i++) {
    const pw_item *it = &r->items.v[i];
    if (it->source != PW_SRC_ORDER) continue;
    pw_buf_adds(b, k++ ? ",{\"id\":" : "{\"id\":");
    pw_buf_json_str(b, it->id);
    j_agents(b, it->agents);
    pw_buf_adds(b, it->blocked ? ",\"status\":\"blocked\"}" : ",\"status\":\"allowed\"}");
  }
  ADDL(b, "]");
  if (r->tracing) {
    ADDL(b, ",\"trace\":[");
    for (int i = 0; i < r->trace.n; i++) {
      const pw_note *n = &r->trace.v[i];
      pw_buf_adds(b, i ? ",{\"text\":" : "{\"text\":");
      pw_buf_json_str(b, n->text);
      if (n->id) j_key_str(b, "rule", n->id);
      if (n->line) { j_key(b, "line"); pw_buf_add_int(b, n->line); }
      ADDL(b, "}");
    }
    ADDL(b, "]");
  }
  ADDL(b, "}");
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

void pw_result_text(const pw_result *r, const pw_protocol_info *p, pw_buf *b) {
  int nrec = pw_result_n_recommended(r), nblk = pw_result_n_blocked(r);
  pw_buf_addf(b, "pathwise %s | protocol %s %s (sha256 %.12s)\n", PW_VERSION, p->id, p->version, p->sha256);
  pw_buf_addf(b, "Patient: %s\n", r->patient_id ? r->patient_id : "(no id)");
  pw_buf_addf(b, "Protocol applies: %s", r->applicable < 0 ? "cannot tell yet" : r->applicable ? "yes" : "no");
  if (r->applicability) pw_buf_addf(b, " (%s)", r->applicability);
  pw_buf_addf(b, "\nPathway: %s", r->pathway ? r->pathway : "none");
  t_cites(b, &r->pathway_cites);
  if (r->pathway_rationale) pw_buf_addf(b, "\n  %s", r->pathway_rationale);
  ADDL(b, "\n");

  t_section(b, "RECOMMENDATIONS", nrec);
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
    if (!it->group || it->blocked || it->source != PW_SRC_PROTOCOL) continue;
    int seen = 0, count = 0;
    for (int j = 0; j < r->items.n; j++) {
      const pw_item *o = &r->items.v[j];
      if (o->group && !o->blocked && o->source == PW_SRC_PROTOCOL && !strcmp(o->group, it->group)) {
        if (j < i) seen = 1;
        count++;
      }
    }
    if (seen || count < 2) continue;
    pw_buf_addf(b, "  Choose one (%s):", it->group);
    for (int j = i, k = 0; j < r->items.n; j++) {
      const pw_item *o = &r->items.v[j];
      if (o->group && !o->blocked && o->source == PW_SRC_PROTOCOL && !strcmp(o->group, it->group))
        pw_buf_addf(b, "%s %s", k++ ? " or" : "", o->id);
    }
    ADDL(b, "\n");
  }

  t_section(b, "BLOCKED BY SAFETY RULES", nblk);
  for (int i = 0; i < r->items.n; i++) {
    const pw_item *it = &r->items.v[i];
    if (!it->blocked) continue;
    pw_buf_addf(b, "  - %s (%s) by %s", it->id, source_name(it->source), it->rule);
    t_cites(b, &it->rule_cites);
    pw_buf_addf(b, "\n    %s\n", it->reason);
    if (r->tracing && it->rule_evidence) pw_buf_addf(b, "    Guideline: \"%s\"\n", it->rule_evidence);
  }

  t_section(b, "MISSING FACTS: ORDER OR ASSESS", r->missing.n);
  for (int i = 0; i < r->missing.n; i++) {
    const pw_missing *m = &r->missing.v[i];
    pw_buf_addf(b, "  - %s: %s", m->fact, m->test ? m->test : "assess");
    if (m->order) pw_buf_addf(b, " (order %s)", m->order);
    t_cites(b, &m->cites);
    if (m->why) pw_buf_addf(b, "\n    %s", m->why);
    ADDL(b, "\n");
  }

  const struct { const char *title; const pw_note *v; int n; } lists[] = {
    {"WARNINGS", r->warnings.v, r->warnings.n},
    {"FOLLOW-UP", r->followup.v, r->followup.n},
    {"EXPECTED OUTCOMES", r->outcomes.v, r->outcomes.n}};
  for (size_t s = 0; s < 3; s++) {
    t_section(b, lists[s].title, lists[s].n);
    for (int i = 0; i < lists[s].n; i++) {
      pw_buf_addf(b, "  - %s", lists[s].v[i].text);
      t_cites(b, &lists[s].v[i].cites);
      ADDL(b, "\n");
    }
  }
  int nord = 0;
  for (int i = 0; i < r->items.n; i++) nord += r->items.v[i].source == PW_SRC_ORDER;
  if (nord) {
    t_section(b, "PROPOSED ORDERS", nord);
    for (int i = 0; i < r->items.n; i++)
      if (r->items.v[i].source == PW_SRC_ORDER)
        pw_buf_addf(b, "  - %s: %s\n", r->items.v[i].id, r->items.v[i].blocked ? "BLOCKED" : "allowed");
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
