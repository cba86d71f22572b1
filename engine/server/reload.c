/*
** reload.c: generations of worker processes, protocol reload, and the
** watcher of the protocol files.
**
** A generation is the set of worker processes that load one reading of
** the protocol sources. A reload (at start, on SIGHUP, on the reload
** method, or 200 ms after a watched protocol file changed) reads the
** sources in libuv's thread pool (never on the loop: a FIFO or a hung file
** system must not stall the supervisor), forks a new generation whose workers must load them and pass
** their example cases (pw_engine_check_examples, run by rpc.c in each new
** worker), then swaps it in: new requests go to it, the old generation's
** workers finish what they hold and exit when their channel closes. If any
** new worker fails, the new generation is killed and the old one keeps
** serving; at start, the server stops. One reload runs at a time; a
** request for another while one loads runs once it ends. The watcher
** watches the protocol files, the plugin files and the files `extends`
** loaded; a watched file that changed back to the same bytes reloads
** nothing, and clears a refused reload's error when the files are again
** those that serve. Reloads, refusals and cleared errors are logged
** (operator log in full; clients and the decision log get file names,
** reloadlog.c).
*/
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "command.h"
#include "file.h"
#include "sd.h"
#include "supervisor.h"

/* ==================================================================== */
/* {====== a generation's life                                         */

void pw_reload_release(generation *g) {
  for (int i = 0; i < g->nprotos; i++) {
    free(g->names[i]);
    free(g->srcs[i]);
  }
  free(g->names);
  free(g->srcs);
  free(g->protos);
  free(g->w);
  free(g->stat_idx);
  free(g->protocols_json);
  free(g->files_json);
  free(g->digest_bases);
  free(g->prov_json);
  free(g->base_files);
  free(g);
}

static void generation_free_cb(uv_handle_t *h) { pw_reload_release(h->data); }

void pw_reload_collect(generation *g) {
  srv *s = g->s;
  if (g->state != GEN_DRAINING || g->alive || g == s->active || g == s->loading) return;
  generation **gp = &s->generations;
  while (*gp && *gp != g) gp = &(*gp)->gnext;
  if (*gp) *gp = g->gnext;
  if (!uv_is_closing((uv_handle_t *)&g->respawn))
    uv_close((uv_handle_t *)&g->respawn, generation_free_cb);
}

static int read_file(const char *path, char **out, size_t *len, char *err, size_t errlen) {
  pw_buf b = {0};
  pw_error e;
  /* "-" names a file here, as in --protocols DIR: never standard input */
  if (pw_file_read(strcmp(path, "-") ? path : "./-", SRV_MAX_SOURCE, &b, &e) != PW_OK) {
    pw_buf_free(&b);
    snprintf(err, errlen, "%s", e.msg);
    return -1;
  }
  *out = b.data;
  *len = b.len;
  return 0;
}

static void paths_free(char **v, int k) {
  for (int i = 0; i < k; i++) free(v[i]);
  free(v);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The protocol paths to load, sorted for a directory. */
static int protocol_paths(const srv *s, char ***paths, int *n, char *err, size_t errlen) {
  *paths = NULL;
  *n = 0;
  if (s->o.protocols_dir) {
    DIR *d = opendir(s->o.protocols_dir);
    if (!d) {
      snprintf(err, errlen, "%s: %s", s->o.protocols_dir, strerror(errno));
      return -1;
    }
    struct dirent *de;
    char **v = NULL;
    int k = 0;
    while ((de = readdir(d))) {
      size_t l = strlen(de->d_name);
      if (l < 5 || strcmp(de->d_name + l - 4, ".lua") != 0 || de->d_name[0] == '.') continue;
      char **nv = realloc(v, (size_t)(k + 1) * sizeof *v);
      if (nv) v = nv;
      if (!nv || !(v[k] = malloc(strlen(s->o.protocols_dir) + l + 2))) {
        closedir(d);
        paths_free(v, k);
        snprintf(err, errlen, "%s: out of memory listing the protocols", s->o.protocols_dir);
        return -1;
      }
      sprintf(v[k], "%s/%s", s->o.protocols_dir, de->d_name);
      k++;
    }
    closedir(d);
    if (!k) {
      snprintf(err, errlen, "%s: no *.lua protocol files", s->o.protocols_dir);
      return -1;
    }
    qsort(v, (size_t)k, sizeof *v, cmp_str);
    *paths = v;
    *n = k;
    return 0;
  }
  char **v = calloc((size_t)s->o.nprotocol_files, sizeof *v);
  for (int i = 0; v && i < s->o.nprotocol_files; i++) {
    if ((v[i] = strdup(s->o.protocol_files[i]))) continue;
    paths_free(v, i);
    v = NULL;
  }
  if (!v) {
    snprintf(err, errlen, "out of memory listing the protocols");
    return -1;
  }
  *paths = v;
  *n = s->o.nprotocol_files;
  return 0;
}

/* A generation's sources, read now; 0, or -1 with the reason in err. */
static int generation_read(generation *g, char **paths, int n, char *err, size_t errlen) {
  g->nprotos = n;
  g->names = paths;
  g->srcs = calloc((size_t)n, sizeof *g->srcs);
  g->protos = calloc((size_t)n, sizeof *g->protos);
  if (!g->srcs || !g->protos) {
    snprintf(err, errlen, "out of memory reading the protocols");
    return -1;
  }
  for (int i = 0; i < n; i++) {
    size_t len;
    if (read_file(paths[i], &g->srcs[i], &len, err, errlen) != 0) return -1;
    g->protos[i].name = g->names[i];
    g->protos[i].src = g->srcs[i];
    g->protos[i].len = len;
  }
  return 0;
}

/* What each worker of g is forked with. */
static void generation_config(generation *g) {
  const srv *s = g->s;
  pw_worker_cfg *c = &g->wcfg;
  c->rpc.protocols = g->protos;
  c->rpc.nprotocols = g->nprotos;
  c->rpc.plugins = s->o.cmd.plugins;
  c->rpc.nplugins = s->o.cmd.nplugins;
  c->rpc.limits.memory = s->o.cmd.lim.memory;
  c->rpc.limits.instructions = s->o.cmd.lim.instructions;
  c->rpc.limits.max_input = s->o.max_line;
  c->rpc.limits.scripts_dir = pw_cmd_scripts_dir();   /* where `extends` finds a base last */
  c->rpc.log = s->o.log_path != NULL;
  c->rpc.log_facts = s->o.log_facts;
  c->max_frame = PW_WIRE_MAX_REQ(s->o.max_line);
  c->rlimit_as = s->o.worker_as;
  c->cpu_headroom_s = s->o.worker_cpu;
  c->parent = getpid();
}

/* A generation that never served (its files did not read, or nothing
** changed before its workers were started): its memory. */
static void generation_discard(generation *g) {
  for (int k = 0; k < g->nprotos; k++) {
    if (g->names) free(g->names[k]);
    if (g->srcs) free(g->srcs[k]);
  }
  free(g->names);
  free(g->srcs);
  free(g->protos);
  free(g->files_json);
  free(g->digest_bases);
  free(g->w);
  free(g);
}

/* libuv's thread pool: read g's protocol, plugin and base files (a FIFO,
** a device or a slow file system never stalls the loop, issue 12). Only g
** and the options (read-only once serving) are touched here. */
static void read_work(uv_work_t *wr) {
  generation *g = wr->data;
  const srv *s = g->s;
  char **paths;
  int n;
  g->read_rc = protocol_paths(s, &paths, &n, g->read_err, sizeof g->read_err);
  if (g->read_rc == 0)
    g->read_rc = generation_read(g, paths, n, g->read_err, sizeof g->read_err);
  if (g->read_rc == 0 && pw_reloadlog_files(&s->o, g) != 0) {
    snprintf(g->read_err, sizeof g->read_err, "out of memory reading the plugins");
    g->read_rc = -1;
  }
}

/* g, read: make it a generation (0), or -1 with the reason in g->read_err. */
static int generation_new(generation *g) {
  srv *s = g->s;
  if (g->read_rc != 0) return -1;
  g->nw = s->o.workers;
  if (!(g->w = calloc((size_t)g->nw, sizeof *g->w))) {
    snprintf(g->read_err, sizeof g->read_err, "out of memory starting a generation");
    return -1;
  }
  generation_config(g);
  uv_timer_init(s->loop, &g->respawn);
  g->respawn.data = g;
  g->num = ++s->generation_seq;
  g->gnext = s->generations;
  s->generations = g;
  return 0;
}

/* a (just read) has the same protocol, plugin and base files as b (which
** serves): b's digest must cover the bases b's workers loaded. */
static int same_sources(const generation *a, const generation *b) {
  if (!a || !b || a->nprotos != b->nprotos) return 0;
  if (strcmp(a->digest, b->digest) != 0 || !b->digest_bases ||
      strcmp(b->digest_bases, b->base_files ? b->base_files : "") != 0)
    return 0;
  for (int i = 0; i < a->nprotos; i++) {
    if (strcmp(a->names[i], b->names[i]) != 0 || a->protos[i].len != b->protos[i].len ||
        memcmp(a->protos[i].src, b->protos[i].src, a->protos[i].len) != 0)
      return 0;
  }
  return 1;
}

/* }====== */

/* ==================================================================== */
/* {====== reload requests waiting for their answer                    */

/* 0, or -1 when out of memory (the caller answers the request) */
static int waiter_add(pw_queue *q, conn *c, const char *id, size_t idlen) {
  waiter *wt = malloc(sizeof *wt + idlen);
  if (!wt) return -1;
  wt->c = c;
  wt->idlen = idlen;
  memcpy(wt->id, id, idlen);
  pw_queue_push(q, &wt->link);
  c->refs++;
  c->inflight++;
  return 0;
}

void pw_reload_answer(srv *s, pw_queue *waiters, int code, const char *msg,
                      const char *result) {
  pw_queue all = pw_queue_take(waiters);
  pw_qlink *l;
  while ((l = pw_queue_pop(&all))) {
    waiter *wt = PW_QITEM(l, waiter, link);
    conn *c = wt->c;
    if (code) {
      pw_conn_error(c, wt->id, wt->idlen, code, msg);
    } else if (!c->closing) {
      pw_conn_result_head(c, wt->id, wt->idlen);
      pw_buf_adds(&c->out.buf, result);
      pw_buf_adds(&c->out.buf, "}\n");
      pw_conn_dirty(c);
    }
    s->responses++;
    c->inflight--;
    free(wt);
    pw_conn_unref(c);
  }
}

/* }====== */

/* ==================================================================== */
/* {====== reload                                                      */

static void reload_start(srv *s, const char *reason, int watch, conn *c, const char *id, size_t idlen);

static void reload_again(srv *s) {
  if (!s->reload_again) return;
  s->reload_again = 0;
  reload_start(s, s->last_reload_reason, s->last_reload_watch, NULL, NULL, 0);
}

/* The first generation is ready: start listening. */
static int first_ready(generation *g, double ms) {
  srv *s = g->s;
  if (pw_listen_start(s) != 0 || pw_httpd_listen(s) != 0) {
    s->exit_code = PW_EX_OSERR;
    pw_serve_shutdown(s, "cannot listen");
    return -1;
  }
  pw_serve_say("ready on %s: %d workers, protocols %s, decision log %s%s%s (%.0f ms)",
               s->o.socket, g->nw, g->protocols_json, s->o.log_path ? s->o.log_path : "off",
               s->o.log_path ? ", sync " : "",
               s->o.log_path ? pw_declog_mode_name(s->o.log_sync) : "", ms);
  char m[512];
  snprintf(m, sizeof m, "READY=1\nSTATUS=serving on %s\nMAINPID=%d", s->o.socket,
           (int)getpid());
  pw_serve_notify(m);
  return 0;
}

/* The reload error clears: the files are again those that serve. */
static void error_cleared(srv *s, const generation *g, const char *how) {
  if (!s->last_reload_error) return;
  pw_serve_say("reload error cleared (%s): %s; generation %u serves", s->last_reload_reason, how,
               s->active->num);
  pw_reloadlog_event(s, "error_cleared", g, s->last_reload_error);
  free(s->last_reload_error);
  s->last_reload_error = NULL;
}

/* g replaces old: old's idle workers retire now, the others once done. */
static void replace(generation *g, generation *old, double ms) {
  srv *s = g->s;
  old->state = GEN_DRAINING;
  uv_timer_stop(&old->respawn);
  for (int i = 0; i < old->nw; i++) {
    worker *w = old->w[i];
    if (w && !w->sent.n && !w->lost) pw_pool_retire(w);
  }
  s->reloads_ok++;
  pw_serve_say("reloaded (%s): generation %u serves %s in %.0f ms", s->last_reload_reason,
               g->num, g->protocols_json, ms);
  error_cleared(s, g, "new files loaded");
  pw_reloadlog_event(s, "reload", g, NULL);
  pw_serve_notify("READY=1\nSTATUS=serving (reloaded)");
}

void pw_reload_activate(generation *g) {
  srv *s = g->s;
  generation *old = s->active;
  s->loading = NULL;
  s->active = g;
  g->state = GEN_ACTIVE;
  g->backoff_ms = 0;
  double ms = (double)(pw_worker_now_ns() - g->started_ns) / 1e6;
  pw_reload_watch_bases(s, g);
  if (old) replace(g, old, ms);
  else if (first_ready(g, ms) != 0) return;
  pw_buf res = {0};
  pw_buf_addf(&res, "{\"reloaded\":true,\"generation\":%u,\"protocols\":%s}", g->num,
              g->protocols_json);
  pw_reload_answer(s, &g->waiters, 0, NULL, res.data);
  pw_buf_free(&res);
  pw_pool_drain(s);
  reload_again(s);
}

/* A reload of a serving server tells systemd RELOADING=1 now; READY=1
** follows when it ends, loaded (replace) or refused (refused). */
static void notify_reloading(srv *s, const char *reason) {
  if (!s->active) return;
  char m[160];
  char st[96];
  snprintf(st, sizeof st, "reloading (%s)", reason);
  pw_sd_reloading_msg(m, sizeof m, st);
  pw_serve_notify(m);
}

/* The new sources did not load. With a generation serving, it goes on;
** with none, the server stops with code.
** The operator's log has msg whole; clients (the reply, health) and the
** decision log get it with file names for host paths. */
static void refused(srv *s, const generation *g, pw_queue *waiters, const char *msg, int code) {
  s->reloads_failed++;
  char *mine = pw_file_cut_paths(msg);
  free(s->last_reload_error);
  s->last_reload_error = mine ? mine : strdup("reload refused (out of memory for the reason)");
  const char *shown = s->last_reload_error ? s->last_reload_error : "reload refused";
  if (s->active) {
    char m[1200];
    pw_serve_warn("reload refused (%s): %s; generation %u keeps serving", s->last_reload_reason,
                 msg, s->active->num);
    snprintf(m, sizeof m, "READY=1\nSTATUS=serving generation %u; reload refused: %s",
             s->active->num, shown);
    pw_serve_notify(m);
    pw_buf r = {0};
    pw_buf_addf(&r, "reload refused, the loaded protocols keep serving: %s", shown);
    pw_buf_add(&r, "", 0);
    pw_reload_answer(s, waiters, PW_RPC_RELOAD_FAILED, r.failed ? shown : r.data, NULL);
    pw_buf_free(&r);
    pw_reloadlog_event(s, "reload_refused", g, shown);
  } else {
    pw_serve_err("cannot start: %s", msg);
    if (!s->exit_code) s->exit_code = code;
    pw_reload_answer(s, waiters, PW_RPC_RELOAD_FAILED, msg, NULL);
  }
}

void pw_reload_fail(generation *g, const char *msg) {
  srv *s = g->s;
  if (g->state != GEN_LOADING) return;
  g->state = GEN_DRAINING;
  if (s->loading == g) s->loading = NULL;
  uv_timer_stop(&g->respawn);
  pw_pool_end(g);
  refused(s, g, &g->waiters, msg, PW_EX_CONFIG);
  pw_reload_collect(g);
  if (!s->active) {
    pw_serve_shutdown(s, "the protocols did not load");
    return;
  }
  reload_again(s);
}

/* g's files were read (or the read was cancelled at shutdown): refuse,
** drop it if nothing changed, or start its workers. */
static void read_done(uv_work_t *wr, int status) {
  generation *g = wr->data;
  srv *s = g->s;
  s->reading = NULL;
  if (status == UV_ECANCELED || s->stopping) {
    pw_reload_answer(s, &g->waiters, PW_RPC_BUSY, "the server is stopping", NULL);
    generation_discard(g);
    pw_serve_maybe_finish(s);
    return;
  }
  const char *reason = s->last_reload_reason;
  if (generation_new(g) != 0) {
    notify_reloading(s, reason);
    refused(s, NULL, &g->waiters, g->read_err, PW_EX_NOINPUT);
    generation_discard(g);
    if (!s->active) pw_serve_shutdown(s, "no protocol");
    else reload_again(s);
    return;
  }
  if (!g->waiters.n && s->last_reload_watch && same_sources(g, s->active)) {
    g->state = GEN_DRAINING;   /* nothing changed: drop it quietly */
    error_cleared(s, s->active, "the files on disk are again those that serve");
    pw_reload_collect(g);
    s->generation_seq--;
    reload_again(s);
    return;
  }
  g->state = GEN_LOADING;
  g->started_ns = pw_worker_now_ns();
  s->loading = g;
  notify_reloading(s, reason);
  pw_pool_spawn(g);
}

/* watch: the file watcher asks; a reload whose last request was the
** watcher's, that no client waits on and that finds the files already
** serving, is dropped quietly (see read_done). */
static void reload_start(srv *s, const char *reason, int watch, conn *c, const char *id, size_t idlen) {
  if (c && waiter_add(&s->next_waiters, c, id, idlen) != 0) {
    s->responses++;
    pw_conn_error(c, id, idlen, PW_RPC_INTERNAL, "out of memory: the reload was not started");
    return;
  }
  if (s->stopping) {
    pw_reload_answer(s, &s->next_waiters, PW_RPC_BUSY, "the server is stopping", NULL);
    return;
  }
  if (reason != s->last_reload_reason)
    snprintf(s->last_reload_reason, sizeof s->last_reload_reason, "%s", reason);
  s->last_reload_watch = watch;   /* like the reason: the last request's */
  if (s->loading || s->reading) {
    s->reload_again = 1;
    return;
  }
  /* the files are read in the thread pool; g waits in s->reading with the
  ** requests that asked for it and the base files its digest covers */
  generation *g = calloc(1, sizeof *g);
  const char *bases = s->active && s->active->base_files ? s->active->base_files : "";
  if (g) {
    g->s = s;
    g->read.data = g;
    g->digest_bases = strdup(bases);
  }
  if (!g || !g->digest_bases ||
      uv_queue_work(s->loop, &g->read, read_work, read_done) != 0) {
    if (g) generation_discard(g);
    notify_reloading(s, reason);
    refused(s, NULL, &s->next_waiters, "out of memory starting a generation", PW_EX_NOINPUT);
    if (!s->active) pw_serve_shutdown(s, "no protocol");
    return;
  }
  g->waiters = pw_queue_take(&s->next_waiters);
  s->reading = g;
}

void pw_reload_start(srv *s, const char *reason, conn *c, const char *id, size_t idlen) {
  reload_start(s, reason, 0, c, id, idlen);
}

void pw_reload_timeout(srv *s, uint64_t now) {
  if (s->loading && now - s->loading->started_ns > SRV_MS(SRV_LOAD_TIMEOUT_S * 1000ull)) {
    char msg[120];
    snprintf(msg, sizeof msg, "the new workers did not become ready within %d s",
             SRV_LOAD_TIMEOUT_S);
    pw_reload_fail(s->loading, msg);
  }
}

/* }====== */

/* ==================================================================== */
/* {====== the watcher                                                 */

static void on_debounce(uv_timer_t *t) {
  srv *s = t->data;
  reload_start(s, s->watch_reason[0] ? s->watch_reason : "protocol file changed", 1, NULL, NULL, 0);
}

static int same_name(const char *path, const char *name) {
  return strcmp(pw_file_name(path), name) == 0;
}

/* What the changed file is: a protocol, a plugin, a base; NULL: none of ours. */
static const char *changed_what(const srv *s, const char *name) {
  size_t l = strlen(name);
  for (int i = 0; i < s->o.cmd.nplugins; i++)
    if (same_name(s->o.cmd.plugins[i], name)) return "plugin file changed";
  const char *q = s->active ? s->active->base_files : NULL, *line;
  size_t bl;
  while ((line = pw_lines_next(&q, &bl))) {
    const char *b = line + bl;
    while (b > line && b[-1] != '/') b--;
    if ((size_t)(line + bl - b) == l && !memcmp(b, name, l)) return "base protocol file changed";
  }
  if (s->o.protocols_dir) return l >= 5 && !strcmp(name + l - 4, ".lua") ? "protocol file changed" : NULL;
  for (int i = 0; i < s->o.nprotocol_files; i++)
    if (same_name(s->o.protocol_files[i], name)) return "protocol file changed";
  return NULL;
}

static void on_fs_event(uv_fs_event_t *h, const char *filename, int events, int status) {
  srv *s = h->data;
  (void)events;
  if (status < 0 || s->stopping) return;
  const char *what = filename ? changed_what(s, filename) : "protocol file changed";
  if (!what) return;
  snprintf(s->watch_reason, sizeof s->watch_reason, "%s", what);
  uv_timer_start(&s->debounce, on_debounce, 200, 0);
}

/* Watch the directory of file (or, is_dir, the directory itself), once. */
static void watch_one(srv *s, const char *file, int is_dir) {
  char *d = strdup(file);
  if (!d) {
    pw_serve_warn("cannot watch %s for changes: out of memory", file);
    return;
  }
  char *sl = is_dir ? NULL : strrchr(d, '/');
  if (sl) *(sl == d ? sl + 1 : sl) = '\0';
  else if (!is_dir) strcpy(d, ".");
  for (int k = 0; k < s->nwatch; k++) {
    if (strcmp(s->watch_dir[k], d) == 0) {
      free(d);
      return;
    }
  }
  if (s->nwatch == SRV_MAX_WATCH) {
    pw_serve_warn("cannot watch %s for changes: more than %d directories", d, SRV_MAX_WATCH);
    free(d);
    return;
  }
  uv_fs_event_t *w = &s->watch[s->nwatch];
  uv_fs_event_init(s->loop, w);
  w->data = s;
  int rc = uv_fs_event_start(w, on_fs_event, d, 0);
  if (rc != 0) {
    pw_serve_warn("cannot watch %s for changes: %s", d, uv_strerror(rc));
    uv_close((uv_handle_t *)w, NULL);
    free(d);
    return;
  }
  s->watch_dir[s->nwatch++] = d;
}

void pw_reload_watch(srv *s) {
  if (!s->o.watch) return;
  if (s->o.protocols_dir) watch_one(s, s->o.protocols_dir, 1);
  for (int i = 0; i < s->o.nprotocol_files; i++) watch_one(s, s->o.protocol_files[i], 0);
  for (int i = 0; i < s->o.cmd.nplugins; i++) watch_one(s, s->o.cmd.plugins[i], 0);
  if (s->active) pw_reload_watch_bases(s, s->active);
}

void pw_reload_watch_bases(srv *s, const generation *g) {
  if (!s->o.watch || s->stopping || !s->nwatch || !g->base_files) return;   /* not watching (yet) */
  const char *q = g->base_files, *line;
  size_t l;
  while ((line = pw_lines_next(&q, &l))) {
    char *path = strndup(line, l);
    if (path) watch_one(s, path, 0);
    free(path);
  }
}

/* }====== */
