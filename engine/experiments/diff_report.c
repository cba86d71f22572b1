/*
** diff_report.c: the wording of `pathwise diff`'s report: items, patients,
** sides (see diff_report.h).
*/
#include <stdio.h>
#include <string.h>
#include "diff_report.h"
#include "exp.h"

/* ---- an item's state ---- */

/* 1-based position of it among the result's recommendations (the order of
** the plan), 0 if it is not one. */
static int plan_order(const pw_result *r, const pw_item *it) {
  int k = 0;
  for (int i = 0; i < r->items.n; i++) {
    const pw_item *x = &r->items.v[i];
    if (!pw_item_recommended(x)) continue;
    k++;
    if (x == it) return k;
  }
  return 0;
}

/* 1-based choice of it within its group (preferred first, then in plan
** order), 0 if it has no group or is not recommended. */
static int group_choice(const pw_result *r, const pw_item *it) {
  if (!it->group || !pw_item_recommended(it)) return 0;
  int k = 1;
  for (int i = 0; i < r->items.n; i++) {
    const pw_item *x = &r->items.v[i];
    if (x == it || !pw_item_recommended(x) || !x->group || strcmp(x->group, it->group)) continue;
    if (x->preferred > it->preferred || (x->preferred == it->preferred && x < it)) k++;
  }
  return k;
}

/* The plugin of a local block ("plugin/rule"), copied whole into b (plugin
** ids have no length limit); NULL for a kernel rule or when out of memory. */
static const char *block_plugin(const pw_item *it, pw_buf *b) {
  const char *slash = it->rule ? strchr(it->rule, '/') : NULL;
  if (!slash) return NULL;
  pw_buf_add(b, it->rule, (size_t)(slash - it->rule));
  return b->failed ? NULL : b->data;
}

void pw_dreport_item_json(pw_jsonw *j, const pw_result *r, const pw_item *it) {
  if (!it) { pw_jsonw_null(j); return; }
  pw_jsonw_begin_object(j);
  if (it->blocked) {
    pw_buf plugin = {0};
    const char *pl = block_plugin(it, &plugin);
    pw_jsonw_field_str(j, "status", "blocked");
    pw_jsonw_field_str(j, "rule", it->rule);
    pw_jsonw_field_str(j, "by", it->rule && strchr(it->rule, '/') ? "local_policy" : "safety_rule");
    pw_jsonw_field_str(j, "plugin", pl);
    pw_jsonw_field_str(j, "reason", it->reason);
    pw_buf_free(&plugin);
  } else if (it->source == PW_SRC_ORDER) {
    pw_jsonw_field_str(j, "status", "proposed_order");
  } else {
    pw_jsonw_field_str(j, "status", "recommended");
    pw_jsonw_field_str(j, "strength", it->strength);
    pw_jsonw_field_str(j, "group", it->group);
    pw_jsonw_key(j, "preferred");
    if (it->group) pw_jsonw_bool(j, it->preferred);
    else pw_jsonw_null(j);
    pw_jsonw_key(j, "choice");
    int c = group_choice(r, it);
    if (c) pw_jsonw_int(j, c);
    else pw_jsonw_null(j);
    pw_jsonw_field_int(j, "order", plan_order(r, it));
    pw_jsonw_key(j, "citations");
    pw_jsonw_begin_array(j);
    for (int i = 0; i < it->cites.n; i++) pw_jsonw_int(j, it->cites.v[i]);
    pw_jsonw_end_array(j);
  }
  pw_jsonw_end_object(j);
}

static const char *ordinal(int n) {
  static const char *const names[] = {"first", "second", "third", "fourth", "fifth"};
  return n >= 1 && n <= 5 ? names[n - 1] : "later";
}

void pw_dreport_item_label(pw_buf *o, const pw_result *r, const pw_item *it) {
  if (!it) { pw_buf_adds(o, "not offered"); return; }
  if (it->blocked) {
    const char *slash = it->rule ? strchr(it->rule, '/') : NULL;
    pw_buf_addf(o, "blocked by %s", it->rule ? it->rule : "?");
    if (slash) pw_buf_addf(o, " (local policy, plugin %.*s)", (int)(slash - it->rule), it->rule);
    else pw_buf_adds(o, " (safety rule)");
    if (it->reason) pw_buf_addf(o, ": %s", it->reason);
    return;
  }
  if (it->source == PW_SRC_ORDER) { pw_buf_adds(o, "proposed order, no rule violated"); return; }
  pw_buf_adds(o, it->strength ? it->strength : "recommended");
  int c = group_choice(r, it);
  if (c) pw_buf_addf(o, ", %s choice%s", ordinal(c), it->preferred ? " (preferred)" : "");
  pw_buf_addf(o, " (#%d in the plan)", plan_order(r, it));
  for (int i = 0; i < it->cites.n; i++) pw_buf_addf(o, i ? ", %d" : " [%d", it->cites.v[i]);
  if (it->cites.n) pw_buf_adds(o, "]");
}

/* ---- the patient's key facts ---- */

/* The name of an enum value at a facts path, NULL when unknown. */
static const char *enum_name(const char *path, int v) {
  const pw_field *f = pw_facts_field(path);
  if (!f || v < 1 || v > f->nnames || v == f->unknown_name) return NULL;
  return f->names[v - 1];
}

/* Calls each(site name, symptom names) for the primary and each metastasis with symptoms. */
typedef void (*site_fn)(void *ud, const char *site, const char *const *sym, int nsym);

static void symptomatic_sites(const pw_facts *f, site_fn each, void *ud) {
  const pw_field *ps = pw_facts_field("primary.symptoms"), *ms = pw_facts_field("metastases[].symptoms");
  const char *names[32];
  int n = 0;
  for (int b = 0; ps && b < ps->nnames && b < 32; b++)
    if (f->primary.symptoms & (1u << b)) names[n++] = ps->names[b];
  if (n) each(ud, "primary", names, n);
  for (int i = 0; i < f->nmets; i++) {
    const pw_met_fact *m = &f->mets[i];
    n = 0;
    for (int b = 0; ms && b < ms->nnames && b < 32; b++)
      if (m->symptoms & (1u << b)) names[n++] = ms->names[b];
    const char *site = enum_name("metastases[].site", m->site);
    if (n) each(ud, site ? site : "unknown site", names, n);
  }
}

static void site_json(void *ud, const char *site, const char *const *sym, int nsym) {
  pw_jsonw *j = ud;
  pw_jsonw_begin_object(j);
  pw_jsonw_field_str(j, "site", site);
  pw_jsonw_key(j, "symptoms");
  pw_jsonw_begin_array(j);
  for (int i = 0; i < nsym; i++) pw_jsonw_str(j, sym[i]);
  pw_jsonw_end_array(j);
  pw_jsonw_end_object(j);
}

static void site_label(void *ud, const char *site, const char *const *sym, int nsym) {
  pw_buf *o = ud;
  pw_buf_addf(o, "%s%s (", o->len && o->data[o->len - 1] != ' ' ? ", " : "", site);
  for (int i = 0; i < nsym; i++) pw_buf_addf(o, "%s%s", i ? ", " : "", sym[i]);
  pw_buf_adds(o, ")");
}

static const char *const mol_paths[] = {"molecular.kras", "molecular.nras", "molecular.braf_v600e", "molecular.msi"};
static const char *const mol_keys[] = {"kras", "nras", "braf_v600e", "msi"};
static const char *const mol_labels[] = {"KRAS", "NRAS", "BRAF V600E", "MSI"};

static int mol_value(const pw_facts *f, int i) {
  return i == 0 ? f->kras : i == 1 ? f->nras : i == 2 ? f->braf_v600e : f->msi;
}

void pw_dreport_facts_json(pw_jsonw *j, const pw_facts *f) {
  pw_jsonw_begin_object(j);
  pw_jsonw_key(j, "ecog");
  if (f->ecog >= 0) pw_jsonw_int(j, f->ecog);
  else pw_jsonw_null(j);
  for (int i = 0; i < 4; i++) pw_jsonw_field_str(j, mol_keys[i], enum_name(mol_paths[i], mol_value(f, i)));
  pw_jsonw_key(j, "symptomatic_sites");
  pw_jsonw_begin_array(j);
  symptomatic_sites(f, site_json, j);
  pw_jsonw_end_array(j);
  pw_jsonw_field_str(j, "surgery", f->surgery == PW_SURGERY_PLANNED ? "planned"
                                   : f->surgery == PW_SURGERY_NONE ? "none" : NULL);
  pw_jsonw_key(j, "planned_surgery_in_days");
  if (f->surgery == PW_SURGERY_PLANNED) pw_jsonw_int(j, f->surgery_days);
  else pw_jsonw_null(j);
  pw_jsonw_end_object(j);
}

void pw_dreport_facts_label(pw_buf *o, const pw_facts *f) {
  if (f->ecog >= 0) pw_buf_addf(o, "ECOG %d", f->ecog);
  else pw_buf_adds(o, "ECOG unknown");
  for (int i = 0; i < 4; i++) {
    const char *v = enum_name(mol_paths[i], mol_value(f, i));
    pw_buf_addf(o, "%s %s %s", i ? "," : ";", mol_labels[i], v ? v : "unknown");
  }
  pw_buf_adds(o, "; symptoms: ");
  size_t before = o->len;
  symptomatic_sites(f, site_label, o);
  if (o->len == before) pw_buf_adds(o, "none known");
  if (f->surgery == PW_SURGERY_PLANNED) pw_buf_addf(o, "; planned surgery in %d days", f->surgery_days);
  else pw_buf_adds(o, f->surgery == PW_SURGERY_NONE ? "; no surgery planned" : "; surgery timing unknown");
}

int pw_dreport_no_regimen(const pw_result *r) {
  for (int i = 0; i < r->warnings.n; i++)
    if (r->warnings.v[i].id && !strcmp(r->warnings.v[i].id, "no_systemic_regimen")) return 1;
  return 0;
}

/* ---- sides ---- */

static void code(pw_buf *o, const char *s) {
  pw_buf_adds(o, "<code>");
  exp_html(o, s ? s : "(none)");
  pw_buf_adds(o, "</code>");
}

/* "<code>id</code> version <code>version</code>" */
static void id_version(pw_buf *o, const char *id, const char *version) {
  code(o, id);
  pw_buf_adds(o, " version ");
  code(o, version);
}

/* sep, then the sha256 in small type. */
static void sha256(pw_buf *o, const char *sep, const char *hex) {
  pw_buf_addf(o, "%s<small>sha256 ", sep);
  exp_html(o, hex);
  pw_buf_adds(o, "</small>");
}

void pw_dreport_side_html(pw_buf *o, const char *label, const pw_protocol_info *p) {
  pw_buf_addf(o, "<tr><th>%s</th><td>protocol ", label);
  id_version(o, p->id, p->version);
  sha256(o, "<br>", p->sha256);
  if (p->base_id) {
    pw_buf_adds(o, "<br>extends ");
    id_version(o, p->base_id, p->base_version);
    sha256(o, " ", p->base_sha256);
  }
  pw_buf_adds(o, "</td><td>");
  if (!p->nplugins) pw_buf_adds(o, "no plugin");
  for (int i = 0; i < p->nplugins; i++) {
    pw_buf_adds(o, i ? "<br>plugin " : "plugin ");
    id_version(o, p->plugins[i].id, p->plugins[i].version ? p->plugins[i].version : "(none given)");
    pw_buf_adds(o, " file ");
    code(o, p->plugins[i].file);
    sha256(o, "<br>", p->plugins[i].sha256);
  }
  pw_buf_adds(o, "</td></tr>\n");
}

void pw_dreport_refs_html(pw_buf *o, const pw_protocol_info *a, const pw_protocol_info *b) {
  pw_buf_adds(o, "<h2 id=\"references\">References</h2>\n<table class=\"t\"><tr><th>#</th><th>A</th><th>B</th></tr>\n");
  for (int i = 1; i <= PW_MAX_REFS; i++) {
    const char *x = a->refs[i], *y = b->refs[i];
    if (!x && !y) continue;
    pw_buf_addf(o, "<tr><td>[%d]</td><td>", i);
    exp_html(o, x ? x : "(none)");
    pw_buf_adds(o, "</td><td>");
    if (x && y && !strcmp(x, y)) pw_buf_adds(o, "<small>same as A</small>");
    else exp_html(o, y ? y : "(none)");
    pw_buf_adds(o, "</td></tr>\n");
  }
  pw_buf_adds(o, "</table>\n");
}

void pw_dreport_refs_json(pw_jsonw *j, const pw_protocol_info *p) {
  pw_jsonw_begin_array(j);
  for (int i = 1; i <= PW_MAX_REFS; i++) {
    if (!p->refs[i]) continue;
    pw_jsonw_begin_object(j);
    pw_jsonw_field_int(j, "number", i);
    pw_jsonw_field_str(j, "text", p->refs[i]);
    pw_jsonw_end_object(j);
  }
  pw_jsonw_end_array(j);
}
