/*
** test_facts_schema.c: the one facts table is consistent, and the JSON
** Schema committed at docs/schema/facts.schema.json is exactly what the
** table generates today, byte for byte (so the schema cannot drift from
** the code).
**
**   test_facts_schema            check (a ctest)
**   test_facts_schema --write    regenerate docs/schema/facts.schema.json
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "facts.h"
#include "pwtest.h"

#ifndef PW_SOURCE_DIR
#define PW_SOURCE_DIR "."
#endif
#define SCHEMA_FILE PW_SOURCE_DIR "/docs/schema/facts.schema.json"

/* Every field is found at its own path; keys are unique in their object;
** paths are the parent's path, ".", and the key ("[]" after a list of
** records); kinds have what they need. */
static void check_object(const pw_field *obj, const char *prefix) {
  for (int i = 0; i < obj->nkids; i++) {
    const pw_field *k = &obj->kids[i];
    char want[128];
    snprintf(want, sizeof want, "%s%s%s", prefix, *prefix ? "." : "", k->key);
    CHECK_STR(k->path, want);
    CHECK(k->klen == strlen(k->key));
    CHECK(pw_facts_field(k->path) == k);
    for (int j = 0; j < i; j++) CHECK(strcmp(obj->kids[j].key, k->key) != 0);
    if (k->kind == PW_FK_ENUM || k->kind == PW_FK_SET) CHECK(k->names && k->nnames > 0 && k->nnames <= 32);
    if (k->kind == PW_FK_INT) CHECK(k->lo <= k->hi && k->expected);
    if (k->kind == PW_FK_OBJECT || k->kind == PW_FK_RECORDS) CHECK(k->kids && k->nkids > 0);
    if (k->kind == PW_FK_RECORDS || k->kind == PW_FK_SET || k->kind == PW_FK_RT_SITES || k->kind == PW_FK_ORDERS)
      CHECK(k->known_off > 0);
    CHECK(k->doc != NULL);
    if (k->kind == PW_FK_OBJECT) check_object(k, k->path);
    if (k->kind == PW_FK_RECORDS) {
      char p[128];
      snprintf(p, sizeof p, "%s[]", k->path);
      check_object(k, p);
    }
  }
}

static char *read_all(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *s = NULL;
  size_t cap = 0, len = 0, r;
  do {
    if (len + 4096 > cap) s = realloc(s, cap = 2 * cap + 4096);
    r = fread(s + len, 1, cap - len, f);
    len += r;
  } while (r > 0);
  fclose(f);
  *n = len;
  return s;
}

int main(int argc, char **argv) {
  pw_buf b = {0};
  pw_facts_schema_json(&b);
  if (argc == 2 && !strcmp(argv[1], "--write")) {
    FILE *f = fopen(SCHEMA_FILE, "wb");
    int ok = f && fwrite(b.data, 1, b.len, f) == b.len;
    if (f && fclose(f)) ok = 0;
    fprintf(ok ? stdout : stderr, "%s %s\n", ok ? "wrote" : "cannot write", SCHEMA_FILE);
    pw_buf_free(&b);
    return ok ? 0 : 1;
  }
  check_object(&pw_facts_schema, "");
  CHECK(pw_facts_field("") == &pw_facts_schema);
  CHECK(pw_facts_field("primary.nope") == NULL);
  CHECK(pw_facts_field("metastases.site") == NULL);
  CHECK(pw_facts_field("ecog[]") == NULL);
  size_t n = 0;
  char *committed = read_all(SCHEMA_FILE, &n);
  CHECK(committed != NULL);   /* a missing file fails */
  if (committed) {
    int same = n == b.len && memcmp(committed, b.data, n) == 0;
    CHECK(same);
    if (!same)
      fprintf(stderr, "%s differs from what the facts table generates: regenerate it with "
                      "test_facts_schema --write and commit it\n", SCHEMA_FILE);
  }
  free(committed);
  pw_buf_free(&b);
  printf("%d passed, %d failed\n", pwt_pass, pwt_fail);
  return pwt_fail ? 1 : 0;
}
