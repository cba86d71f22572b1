/*
** reloadlog.c: the provenance of reloads. Which files a generation read
** (each file's name, role and sha256, and one digest over the plugin and
** base files, so a watched file put back unchanged reloads nothing), what
** its workers reported (each protocol's provenance and the host paths of
** the bases its `extends` loaded), the decision-log events of reloads
** (loaded, refused, error cleared).
*/
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cds.h"
#include "file.h"
#include "pathwise.h"
#include "sha256.h"
#include "supervisor.h"

/* One {"file","role","sha256"} of files_json; the file's bytes (or a
** marker when it cannot be read) go into the digest. */
static void add_file(pw_buf *files, pw_buf *dg, const char *path, const char *role,
                     const char *src, size_t len, int readable) {
  char hex[65];
  if (files->len > 1) pw_buf_add(files, ",", 1);
  pw_buf_adds(files, "{\"file\":");
  pw_buf_json_str(files, pw_file_name(path));
  pw_buf_adds(files, ",\"role\":");
  pw_buf_json_str(files, role);
  pw_buf_adds(files, ",\"sha256\":");
  if (readable) pw_sha256_hex(src, len, hex);
  pw_buf_json_str(files, readable ? hex : NULL);
  pw_buf_adds(files, "}");
  if (!dg) return;
  pw_buf_add(dg, path, strlen(path) + 1);
  pw_buf_add(dg, readable ? "+" : "-", 1);
  if (readable) pw_buf_add(dg, src, len);
}

static void add_read(pw_buf *files, pw_buf *dg, const char *path, const char *role) {
  pw_buf b = {0};
  int ok = pw_file_read(path, SRV_MAX_SOURCE, &b, NULL) == PW_OK;
  add_file(files, dg, path, role, b.data, b.len, ok);
  pw_buf_free(&b);
}

int pw_reloadlog_files(const srv_opts *o, generation *g) {
  pw_buf files = {0}, dg = {0};
  pw_buf_add(&files, "[", 1);
  for (int i = 0; i < g->nprotos; i++)
    add_file(&files, NULL, g->names[i], "protocol", g->protos[i].src, g->protos[i].len, 1);
  for (int i = 0; i < o->cmd.nplugins; i++) add_read(&files, &dg, o->cmd.plugins[i], "plugin");
  const char *q = g->digest_bases, *line;
  size_t l;
  while ((line = pw_lines_next(&q, &l))) {
    char *path = strndup(line, l);
    if (path) add_read(&files, &dg, path, "base");
    free(path);
  }
  pw_buf_add(&files, "]", 1);
  pw_sha256_hex(dg.data ? dg.data : "", dg.len, g->digest);
  int failed = dg.failed;
  pw_buf_free(&dg);
  pw_buf_add(&files, "", 0);
  if (files.failed || failed || !g->digest_bases) {
    pw_buf_free(&files);
    return -1;
  }
  g->files_json = files.data;
  return 0;
}

void pw_reloadlog_ready(generation *g, const char *p, size_t n) {
  pw_buf prov = {0}, bases = {0};
  for (const char *q = p, *end = p + n; q < end;) {
    const char *nl = memchr(q, '\n', (size_t)(end - q));
    size_t l = (size_t)((nl ? nl : end) - q);
    if (l > 1 && q[0] == '=') {
      pw_buf_add(&prov, prov.len ? "," : "[", 1);
      pw_buf_add(&prov, q + 1, l - 1);
    } else if (l > 1 && q[0] == '@') {
      pw_buf_add(&bases, q + 1, l - 1);
      pw_buf_add(&bases, "\n", 1);
    }
    q += l + 1;
  }
  pw_buf_add(&prov, prov.len ? "]" : "[]", prov.len ? 1 : 2);
  pw_buf_add(&prov, "", 0);
  pw_buf_add(&bases, "", 0);
  if (prov.failed) pw_buf_free(&prov);
  if (bases.failed) pw_buf_free(&bases);
  free(g->prov_json);
  free(g->base_files);
  g->prov_json = prov.data;
  g->base_files = bases.data;
}

/* The object of a JSON array of objects that begins at or after *pos, as
** [start, end); *pos moves past it. NULL when none is left (no strings hold
** braces unbalanced: prov_json is ours, written by
** pw_engine_provenance_json). */
static const char *next_object(const char **pos, const char **end) {
  const char *p = *pos ? strchr(*pos, '{') : NULL;
  int depth = 0, str = 0;
  for (const char *q = p; q && *q; q++) {
    if (str) {
      if (*q == '\\' && q[1]) q++;
      else if (*q == '"') str = 0;
      continue;
    }
    if (*q == '"') str = 1;
    else if (*q == '{') depth++;
    else if (*q == '}' && --depth == 0) {
      *end = *pos = q + 1;
      return p;
    }
  }
  return NULL;
}

/* Does the protocol object o[0..n) answer to want: its id, or (cds) a CDS
** service id of its (pw_cds_service: the id, '-', a hook)? */
static int object_named(const char *o, size_t n, const char *want, int cds) {
  static const char *const keys[] = {"id"};
  pw_span sp[1];
  char id[256];
  if (pw_rpc_members(o, n, keys, 1, sp, PW_RPC_FIRST) != 0 || !sp[0].len ||
      pw_rpc_string(o + sp[0].off, sp[0].len, id, sizeof id) < 0)
    return 0;
  if (!cds) return strcmp(id, want) == 0;
  pw_cds_protocol p = {id, "", ""};
  int ei;
  return pw_cds_service(want, &p, 1, &ei) >= 0;
}

int pw_reloadlog_protocol(const generation *g, const char *want, int cds, pw_buf *b) {
  if (!g || !g->prov_json) return -2;
  const char *pos = g->prov_json, *o, *e;
  while ((o = next_object(&pos, &e))) {
    if (want && !object_named(o, (size_t)(e - o), want, cds)) continue;
    pw_buf_add(b, o, (size_t)(e - o));
    return 0;
  }
  return -1;
}

void pw_reloadlog_event(srv *s, const char *kind, const generation *g, const char *error) {
  const generation *serving = s->active;
  if (!s->log || !serving) return;   /* none serves: the server stops, its stderr says why */
  pw_buf f = {0};
  pw_buf_addf(&f, "\"schema_version\":%d,\"engine\":\"%s\",\"protocol\":", PW_RESULT_SCHEMA, PW_VERSION);
  if (pw_reloadlog_protocol(serving, NULL, 0, &f) != 0)   /* the first, or one of nulls */
    pw_buf_adds(&f, "{\"id\":null,\"version\":null,\"sha256\":null}");
  if (!strcmp(kind, "reload_refused")) {
    pw_buf_addf(&f, ",\"error\":{\"code\":%d,\"kind\":\"reload\",\"message\":", PW_RPC_RELOAD_FAILED);
    pw_buf_json_str(&f, error ? error : "");
    pw_buf_adds(&f, "}");
  }
  pw_buf_adds(&f, ",\"event\":{\"kind\":");
  pw_buf_json_str(&f, kind);
  pw_buf_adds(&f, ",\"reason\":");
  pw_buf_json_str(&f, s->last_reload_reason);
  if (g) pw_buf_addf(&f, ",\"generation\":%u", g->num);
  pw_buf_addf(&f, ",\"serving\":%u,\"files\":%s", serving->num, g && g->files_json ? g->files_json : "[]");
  if (g && g == serving) pw_buf_addf(&f, ",\"protocols\":%s", g->prov_json ? g->prov_json : "[]");
  if (!strcmp(kind, "error_cleared")) {
    pw_buf_adds(&f, ",\"cleared\":");
    pw_buf_json_str(&f, error ? error : "");
  }
  pw_buf_adds(&f, "}");
  pw_declog_rec rec;
  memset(&rec, 0, sizeof rec);
  rec.method = "reload";
  rec.uid = (long)getuid();
  rec.gid = (long)getgid();
  rec.pid = (long)getpid();
  rec.frag = f.data;
  rec.frag_len = f.len;
  if (f.failed || !pw_declog_append(s->log, &rec))
    pw_serve_warn("decision log: the %s event was not recorded", kind);
  pw_buf_free(&f);
}
