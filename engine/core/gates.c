/*
** gates.c: the release gates `pathwise check` and every server reload run
** after the example cases (pw_engine_check_examples calls them):
**  - a built-in cohort: PW_GATE_COHORT cases generated with a fixed seed
**    (cohortgen.c) must all evaluate without an error, so a protocol or
**    plugin that raises on real-looking patients cannot be loaded; every
**    failing case is listed (none left out) with the file at fault;
**  - a lint over the protocol's and plugins' source: a string literal
**    compared (== or ~=) with a facts field must be one of the field's
**    enum names (facts.primary.site == "colon_lft" is always false).
*/
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cohortgen.h"
#include "file.h"
#include "jsonw.h"
#include "runtime.h"

#define PW_GATE_COHORT 200
#define PW_GATE_SEED 20260311u

/* Which loaded file the message names: the protocol or a plugin. */
static const char *file_at_fault(const pw_engine *e, const char *msg, char *buf, size_t n) {
  for (int i = 0; i < e->nplugins; i++)
    if (e->plugins[i].name && strstr(msg, e->plugins[i].name)) return e->plugins[i].name;
  if (e->path) return e->path;
  if (e->src_name) return e->src_name;
  const char *l = strstr(msg, ".lua:"), *b = l;   /* loaded from a buffer: the chunk name in the message */
  while (b && b > msg && b[-1] != ' ') b--;
  if (l && (size_t)(l + 4 - b) < n) { snprintf(buf, n, "%.*s", (int)(l + 4 - b), b); return buf; }
  return e->info.id;
}

int pw_gate_cohort(pw_engine *e, pw_buf *out) {
  pw_cohort c;
  pw_buf line = {0};
  int failed = 0;
  pw_cohort_init(&c, PW_GATE_SEED, 0);
  for (int i = 1; i <= PW_GATE_COHORT; i++) {
    pw_error err;
    pw_buf_reset(&line);
    pw_cohort_next(&c, &line);
    if (line.failed) { pw_buf_adds(out, "FAIL built-in cohort: out of memory\n"); failed++; break; }
    if (pw_engine_eval(e, line.data, line.len, 0, NULL, &err) == PW_OK || err.code == PW_EINPUT) continue;
    if (err.code == PW_EMEMORY) {   /* the host is out of memory: stop, the state may not take more */
      pw_buf_addf(out, "FAIL built-in cohort case %d: %s\n", i, err.msg);
      failed++;
      break;
    }
    char fb[256];
    const char *who = file_at_fault(e, err.msg, fb, sizeof fb);
    int plugin = 0;
    for (int k = 0; k < e->nplugins; k++) plugin |= who == e->plugins[k].name;
    pw_buf_addf(out, "FAIL built-in cohort case %d (%s, in %s): %s: %s\n", i,
                plugin ? "plugin" : "protocol", who, pw_status_name(err.code), err.msg);
    pw_buf_adds(out, "     facts: ");
    pw_buf_add(out, line.data, line.len);
    failed++;
  }
  pw_buf_free(&line);
  pw_buf_addf(out, "built-in cohort: %d cases (seed %u), %d failed\n", PW_GATE_COHORT, PW_GATE_SEED, failed);
  return failed;
}

/* ---- lint: string literals compared with facts fields ---- */

typedef struct tok { int kind; const char *s; size_t n; int line; } tok;   /* kind: 'n' name chain, 's' string, '=' or '~' op, 0 other */

/* The next token of src at *i (comments and long strings skipped). */
static tok next_tok(const char *s, size_t len, size_t *i, int *line) {
  tok t = {0, NULL, 0, 0};
  for (;;) {
    while (*i < len && isspace((unsigned char)s[*i])) { if (s[*i] == '\n') (*line)++; (*i)++; }
    if (*i + 1 < len && s[*i] == '-' && s[*i + 1] == '-') {
      while (*i < len && s[*i] != '\n') (*i)++;   /* a long comment's other lines lex as code: harmless here */
      continue;
    }
    break;
  }
  t.line = *line;
  if (*i >= len) { t.kind = -1; return t; }
  char ch = s[*i];
  if (ch == '"' || ch == '\'') {
    size_t j = *i + 1;
    while (j < len && s[j] != ch && s[j] != '\n') j += s[j] == '\\' ? 2 : 1;
    t.kind = 's'; t.s = s + *i + 1; t.n = j - *i - 1;
    *i = j < len ? j + 1 : len;
    return t;
  }
  if (isalpha((unsigned char)ch) || ch == '_') {
    size_t j = *i;
    while (j < len && (isalnum((unsigned char)s[j]) || s[j] == '_' || s[j] == '.' ||
                       (s[j] == '[' && j + 1 < len && s[j + 1] != '[' && s[j + 1] != '='))) {
      if (s[j] == '[') { while (j < len && s[j] != ']' && s[j] != '\n') j++; }
      j++;
    }
    t.kind = 'n'; t.s = s + *i; t.n = j - *i;
    *i = j;
    return t;
  }
  if ((ch == '=' || ch == '~') && *i + 1 < len && s[*i + 1] == '=') { t.kind = ch; *i += 2; return t; }
  (*i)++;
  return t;
}

/* "facts.metastases[k].site" -> "metastases[].site"; 0 when not a facts path. */
static int schema_path(const tok *t, char *p, size_t n) {
  if (t->n < 7 || memcmp(t->s, "facts.", 6)) return 0;
  size_t k = 0;
  for (size_t j = 6; j < t->n && k + 3 < n; j++) {
    if (t->s[j] == '[') { p[k++] = '['; p[k++] = ']'; while (j < t->n && t->s[j] != ']') j++; continue; }
    p[k++] = t->s[j];
  }
  p[k] = 0;
  return 1;
}

static void lint_pair(const tok *name, const tok *lit, const char *file, pw_buf *out, int *bad) {
  char path[128];
  if (!schema_path(name, path, sizeof path)) return;
  const pw_field *fd = pw_facts_field(path);
  if (!fd || fd->kind != PW_FK_ENUM) return;
  for (int k = 0; k < fd->nnames; k++)
    if (strlen(fd->names[k]) == lit->n && !memcmp(fd->names[k], lit->s, lit->n) && k + 1 != fd->unknown_name) return;
  pw_buf_addf(out, "FAIL lint %s:%d: facts.%s compared with \"%.*s\", which it never holds (values:", file, lit->line,
              path, (int)lit->n, lit->s);
  for (int k = 0; k < fd->nnames; k++)
    if (k + 1 != fd->unknown_name) pw_buf_addf(out, " %s", fd->names[k]);
  pw_buf_adds(out, "; unknown reads as nil)\n");
  (*bad)++;
}

static int lint_src(const char *file, const pw_buf src, pw_buf *out) {
  int bad = 0, line = 1;
  tok w[3] = {{0, NULL, 0, 0}, {0, NULL, 0, 0}, {0, NULL, 0, 0}};
  size_t i = 0;
  for (;;) {
    tok t = next_tok(src.data, src.len, &i, &line);
    if (t.kind < 0) break;
    w[0] = w[1]; w[1] = w[2]; w[2] = t;
    if (w[1].kind != '=' && w[1].kind != '~') continue;
    if (w[0].kind == 'n' && w[2].kind == 's') lint_pair(&w[0], &w[2], file, out, &bad);
    if (w[0].kind == 's' && w[2].kind == 'n') lint_pair(&w[2], &w[0], file, out, &bad);
  }
  return bad;
}

static int lint_file(const char *file, pw_buf *out) {
  pw_buf src = {0};
  pw_error err;
  int bad = pw_file_read(file, PW_MAX_SOURCE, &src, &err) == PW_OK ? lint_src(file, src, out) : 0;
  pw_buf_free(&src);
  return bad;
}

/* The protocol's source as it was loaded (a file or, in the server's
** workers, a buffer: both are linted), then each plugin's file. */
int pw_gate_lint(pw_engine *e, pw_buf *out) {
  pw_buf src = {e->src, e->src_len, e->src_len, 0};
  int bad = e->src ? lint_src(e->src_name, src, out) : 0;
  for (int i = 0; i < e->nplugins; i++)
    if (e->plugins[i].name) bad += lint_file(e->plugins[i].name, out);
  return bad;
}

/* ---- provenance: each plugin's id, version and sha256 next to the protocol's ---- */

static char *dup_or_null(const char *s, int *bad) {
  char *d = s ? strdup(s) : NULL;
  if (s && !d) *bad = 1;
  return d;
}

/* Appends one plugin to p->plugins and rewrites p->plugins_json from them
** with the JSON writer. Returns -1 (p unchanged) when out of memory or full. */
int pw_plugin_provenance(pw_protocol_info *p, const char *id, const char *version, const char *sha256,
                         const char *file) {
  if (p->nplugins >= PW_MAX_PLUGINS) return -1;
  struct pw_plugin_prov *pp = &p->plugins[p->nplugins];
  int bad = 0;
  pp->id = dup_or_null(id, &bad);
  pp->version = dup_or_null(version, &bad);
  pp->file = dup_or_null(pw_file_name(file), &bad);   /* never a host path */
  snprintf(pp->sha256, sizeof pp->sha256, "%s", sha256);
  pw_buf b = {0};
  pw_jsonw w;
  pw_jsonw_init(&w, &b);
  pw_jsonw_begin_array(&w);
  for (int i = 0; i <= p->nplugins; i++) {
    pw_jsonw_begin_object(&w);
    pw_jsonw_field_str(&w, "id", p->plugins[i].id);
    pw_jsonw_field_str(&w, "version", p->plugins[i].version);
    pw_jsonw_field_str(&w, "sha256", p->plugins[i].sha256);
    pw_jsonw_field_str(&w, "file", p->plugins[i].file);
    pw_jsonw_end_object(&w);
  }
  pw_jsonw_end_array(&w);
  if (bad || b.failed) {
    free(pp->id); free(pp->version); free(pp->file);
    memset(pp, 0, sizeof *pp);
    pw_buf_free(&b);
    return -1;
  }
  p->nplugins++;
  free(p->plugins_json);
  p->plugins_json = b.data;
  return 0;
}

/* The base's and the loaded plugins' provenance (id, version, sha256, file), for `pathwise check`. */
void pw_engine_plugins_text(const pw_engine *e, pw_buf *out) {
  if (e->info.base_id)
    pw_buf_addf(out, "extends %s %s\nbase sha256 %s\n", e->info.base_id,
                e->info.base_version ? e->info.base_version : "-", e->info.base_sha256);
  if (e->info.plugins_json) pw_buf_addf(out, "plugins %s\n", e->info.plugins_json);
}
