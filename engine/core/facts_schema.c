/*
** facts_schema.c: the JSON Schema (draft 2020-12) of the facts, written
** from the one table (pw_facts_schema). docs/schema/facts.schema.json is
** this output; tests/unit/test_facts_schema.c regenerates and compares it.
**
** What the schema says, field by field, is what validation accepts: the
** same types, ranges and names, null wherever null is accepted, at most
** PW_FACTS_MAX_LIST items in a list. Beyond the schema, validation checks
** proposed order ids against the knowledge table, and a field it does not
** know is accepted with a warning (the schema refuses it, so that authors
** find misspellings).
*/
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include "facts.h"

typedef struct sw { pw_buf *b; int depth; } sw;

static void nl(sw *w) {
  pw_buf_adds(w->b, "\n");
  for (int i = 0; i < w->depth; i++) pw_buf_adds(w->b, "  ");
}

/* "key": (after a comma unless first) */
static void key(sw *w, const char *k, int *first) {
  if (!*first) pw_buf_adds(w->b, ",");
  *first = 0;
  nl(w);
  pw_buf_json_str(w->b, k);
  pw_buf_adds(w->b, ": ");
}

static void open_(sw *w, const char *c) { pw_buf_adds(w->b, c); w->depth++; }
static void close_(sw *w, const char *c) { w->depth--; nl(w); pw_buf_adds(w->b, c); }

static void names(sw *w, const pw_field *fd, int with_unknown) {
  int has_unknown = 0;
  pw_buf_adds(w->b, "[");
  for (int i = 0; i < fd->nnames; i++) {
    if (i) pw_buf_adds(w->b, ", ");
    pw_buf_json_str(w->b, fd->names[i]);
    has_unknown |= !strcmp(fd->names[i], "unknown");
  }
  if (with_unknown) pw_buf_adds(w->b, has_unknown ? ", null]" : ", null, \"unknown\"]");
  else pw_buf_adds(w->b, "]");
}

static void field_schema(sw *w, const pw_field *fd);

/* "if" a field allowed only with a sibling's value is there (known),
** "then" the sibling has that value. */
static void only_rules(sw *w, const pw_field *obj, int *first) {
  int any = 0;
  for (int i = 0; i < obj->nkids; i++) {
    const pw_field *k = &obj->kids[i], *sib = NULL;
    if (!k->only_key) continue;
    for (int j = 0; j < obj->nkids; j++)
      if (!strcmp(obj->kids[j].key, k->only_key)) sib = &obj->kids[j];
    if (!sib) continue;
    if (!any) { key(w, "allOf", first); open_(w, "["); }
    if (any) pw_buf_adds(w->b, ",");
    any = 1;
    nl(w);
    pw_buf_addf(w->b, "{\"if\": {\"properties\": {\"%s\": {\"type\": \"%s\"}}, \"required\": [\"%s\"]}, ",
                k->key, k->kind == PW_FK_BOOL ? "boolean" : k->kind == PW_FK_INT ? "integer" : "string", k->key);
    pw_buf_addf(w->b, "\"then\": {\"properties\": {\"%s\": {\"const\": \"%s\"}}, \"required\": [\"%s\"]}}",
                sib->key, sib->names[k->only_value - 1], sib->key);
  }
  if (any) close_(w, "]");
}

/* The keys of an object's schema, at the current level. */
static void object_keys(sw *w, const pw_field *obj, int *first) {
  key(w, "type", first);
  pw_buf_adds(w->b, "\"object\"");
  key(w, "properties", first);
  open_(w, "{");
  int f2 = 1;
  for (int i = 0; i < obj->nkids; i++) {
    if (obj->kids[i].derived) continue;
    key(w, obj->kids[i].key, &f2);
    field_schema(w, &obj->kids[i]);
  }
  close_(w, "}");
  key(w, "additionalProperties", first);
  pw_buf_adds(w->b, "false");
  only_rules(w, obj, first);
}

static void list_of(sw *w, int *first) {
  key(w, "type", first);
  pw_buf_adds(w->b, "\"array\"");
  key(w, "maxItems", first);
  pw_buf_add_int(w->b, PW_FACTS_MAX_LIST);
  key(w, "items", first);
}

/* The schema of a known value of fd. */
static void value_schema(sw *w, const pw_field *fd) {
  int first = 1;
  open_(w, "{");
  switch (fd->kind) {
  case PW_FK_OBJECT: object_keys(w, fd, &first); break;
  case PW_FK_RECORDS: {
    list_of(w, &first);
    open_(w, "{");
    int f2 = 1;
    object_keys(w, fd, &f2);
    close_(w, "}");
    break;
  }
  case PW_FK_INT:
  case PW_FK_SURGERY:
    key(w, "type", &first);
    pw_buf_adds(w->b, "\"integer\"");
    key(w, "minimum", &first);
    pw_buf_add_int(w->b, fd->lo);
    if (fd->hi != INT_MAX) { key(w, "maximum", &first); pw_buf_add_int(w->b, fd->hi); }
    break;
  case PW_FK_BOOL: key(w, "type", &first); pw_buf_adds(w->b, "\"boolean\""); break;
  case PW_FK_STRING:
    key(w, "type", &first);
    pw_buf_adds(w->b, "\"string\"");
    key(w, "minLength", &first);
    pw_buf_adds(w->b, "1");
    key(w, "maxLength", &first);
    pw_buf_adds(w->b, "256");
    break;
  case PW_FK_ENUM: key(w, "enum", &first); names(w, fd, 0); break;
  case PW_FK_SET:
    list_of(w, &first);
    pw_buf_adds(w->b, "{\"enum\": ");
    names(w, fd, 0);
    pw_buf_adds(w->b, "}");
    break;
  case PW_FK_RT_SITES:
  case PW_FK_ORDERS:
    list_of(w, &first);
    pw_buf_adds(w->b, "{\"type\": \"string\", \"minLength\": 1, \"maxLength\": 256}");
    break;
  }
  close_(w, "}");
}

/* A field: its description, and its value or unknown (null or "unknown"). */
static void field_schema(sw *w, const pw_field *fd) {
  int first = 1;
  open_(w, "{");
  if (fd->doc) { key(w, "description", &first); pw_buf_json_str(w->b, fd->doc); }
  if (fd->kind == PW_FK_ENUM) {
    key(w, "enum", &first);
    names(w, fd, 1);
  } else {
    key(w, "anyOf", &first);
    open_(w, "[");
    nl(w);
    value_schema(w, fd);
    pw_buf_adds(w->b, ",");
    nl(w);
    pw_buf_adds(w->b, "{\"enum\": [null, \"unknown\"]}");
    close_(w, "]");
  }
  close_(w, "}");
}

void pw_facts_schema_json(pw_buf *out) {
  sw w = {out, 0};
  int first = 1;
  open_(&w, "{");
  key(&w, "$schema", &first);
  pw_buf_adds(out, "\"https://json-schema.org/draft/2020-12/schema\"");
  key(&w, "title", &first);
  pw_buf_adds(out, "\"pathwise patient facts\"");
  key(&w, "$comment", &first);
  pw_buf_adds(out, "\"Generated from the facts table in engine/core/facts.c: do not edit; "
                   "regenerate with build/tests/unit/test_facts_schema --write\"");
  key(&w, "description", &first);
  pw_buf_json_str(out, "One patient's facts. Every field is optional; absent, null and \"unknown\" mean "
                       "unknown, except that planned_surgery_in_days: null means none planned. An empty object "
                       "is not an empty list, nor the reverse.");
  object_keys(&w, &pw_facts_schema, &first);
  close_(&w, "}");
  pw_buf_adds(out, "\n");
}
