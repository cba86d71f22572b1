/*
** diff_report.h: what `pathwise diff` says about one changed item, one
** patient and one side, for a committee reading the JSON or HTML report
** (diff.c counts and lays out; this module words and writes the parts).
**
**  - an item's state in one result: recommended (strength, group, first
**    or second choice, position in the plan), a proposed order, blocked
**    (rule, safety or local policy, the plugin's id, the reason), or not
**    offered; as a JSON object (null when absent) and as a short label;
**  - the patient's key facts: ECOG, RAS/BRAF/MSI, the sites with symptoms,
**    surgery timing; as a JSON object and as one line;
**  - whether a result was left with no systemic regimen;
**  - a side's provenance (protocol, base, plugins with id, version,
**    sha256) and the references of both sides, in HTML.
** No allocation beyond the buffers written to, no output.
*/
#ifndef PW_DIFF_REPORT_H
#define PW_DIFF_REPORT_H

#include "engine.h"
#include "jsonw.h"

/* it (NULL: not offered) as a JSON value: {"status":..} or null. */
void pw_dreport_item_json(pw_jsonw *j, const pw_result *r, const pw_item *it);
/* it as a label: "recommended, second choice (#2 in the plan)", "blocked by
** plugin/rule (local policy, plugin p): reason", "not offered". */
void pw_dreport_item_label(pw_buf *o, const pw_result *r, const pw_item *it);

/* The patient's key facts as a JSON object; as one line of text. */
void pw_dreport_facts_json(pw_jsonw *j, const pw_facts *f);
void pw_dreport_facts_label(pw_buf *o, const pw_facts *f);

/* 1 when the result carries the engine's no_systemic_regimen warning. */
int pw_dreport_no_regimen(const pw_result *r);

/* A side's provenance in HTML: protocol id, version, sha256; the base it
** extends; each plugin's id, version, sha256 and file. */
void pw_dreport_side_html(pw_buf *o, const char *label, const pw_protocol_info *p);
/* The references of A and B, number by number, in HTML. */
void pw_dreport_refs_html(pw_buf *o, const pw_protocol_info *a, const pw_protocol_info *b);
/* A side's references as a JSON array of {number, text}. */
void pw_dreport_refs_json(pw_jsonw *j, const pw_protocol_info *p);

#endif
