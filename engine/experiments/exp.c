/*
** exp.c: machinery shared by the experiment commands; see exp.h.
*/
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "exp.h"

/* ---- options ---- */

void exp_opts_init(exp_opts *o) {
  memset(o, 0, sizeof *o);
  o->progress = -1;
}

int exp_usage(const char *cmd, const char *usage, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "pathwise: %s: ", cmd);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n%s", usage);
  return PW_EX_USAGE;
}

int exp_shared_opt(int c, const char *arg, exp_opts *o, const char *cmd, const char *usage) {
  char msg[200];
  if (c == EXP_OPT_PROGRESS || c == EXP_OPT_NO_PROGRESS) {
    o->progress = c == EXP_OPT_PROGRESS;
    return -1;
  }
  int r = c == '?' ? 0 : pw_cmd_option(c, arg, &o->cmd, msg, sizeof msg);
  if (r < 0) return exp_usage(cmd, usage, "%s", msg);
  return r ? -1 : -2;
}

int exp_jobs(const exp_opts *o) {
  return o->cmd.jobs > 0 ? o->cmd.jobs : pw_cmd_cores();
}

int exp_show_progress(const exp_opts *o) {
  return o->progress < 0 ? isatty(STDERR_FILENO) : o->progress;
}

pw_engine *exp_engine(const char *protocol, const exp_opts *o, const char *const *extra,
                      int nextra, int *code) {
  const char *all[PW_MAX_PLUGINS];
  int n = 0;
  for (int i = 0; i < nextra && n < PW_MAX_PLUGINS; i++) all[n++] = extra[i];
  for (int i = 0; i < o->cmd.nplugins; i++) {
    if (n == PW_MAX_PLUGINS) {
      fprintf(stderr, "pathwise: plugin: at most %d plugins per engine\n", PW_MAX_PLUGINS);
      *code = PW_EX_USAGE;
      return NULL;
    }
    all[n++] = o->cmd.plugins[i];
  }
  return pw_cmd_engine(protocol, all, n, &o->cmd.lim, code);
}

double exp_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double exp_pct(uint64_t part, uint64_t whole) {
  return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

/* ---- reading lines ---- */

typedef struct reader {
  int fd;
  char *buf;
  size_t cap, pos, end;
  int eof, skipping;
  long lineno;
  uint64_t bytes;      /* consumed so far */
} reader;

/* Read more into the buffer. Returns bytes read, 0 at end, -1 on error. */
static ssize_t reader_read(reader *r) {
  if (r->pos > 0) {
    memmove(r->buf, r->buf + r->pos, r->end - r->pos);
    r->end -= r->pos;
    r->pos = 0;
  }
  if (r->end == r->cap) {
    size_t cap = r->cap * 2;
    char *p = realloc(r->buf, cap);
    if (!p) { errno = ENOMEM; return -1; }
    r->buf = p;
    r->cap = cap;
  }
  for (;;) {
    ssize_t n = read(r->fd, r->buf + r->end, r->cap - r->end);
    if (n < 0 && errno == EINTR) continue;
    if (n > 0) r->end += (size_t)n;
    if (n == 0) r->eof = 1;
    return n;
  }
}

/* The next line (without its newline). With may_block = 0 it returns 2
** instead of reading when no whole line is buffered. Returns 1 for a
** line, 0 at the end, -1 on a read error, 2 (see above). */
static int reader_next(reader *r, const char **line, size_t *len, int may_block) {
  for (;;) {
    char *nl = r->pos < r->end ? memchr(r->buf + r->pos, '\n', r->end - r->pos) : NULL;
    if (r->skipping) {   /* the rest of an overlong line */
      if (nl) {
        r->bytes += (uint64_t)(nl + 1 - (r->buf + r->pos));
        r->pos = (size_t)(nl + 1 - r->buf);
        r->skipping = 0;
        continue;
      }
      r->bytes += r->end - r->pos;
      r->pos = r->end;
      if (r->eof) { r->skipping = 0; return 0; }
      if (!may_block) return 2;
      if (reader_read(r) < 0) return -1;
      continue;
    }
    if (nl) {
      *line = r->buf + r->pos;
      *len = (size_t)(nl - *line);
      r->bytes += *len + 1;
      r->pos = (size_t)(nl + 1 - r->buf);
      r->lineno++;
      return 1;
    }
    if (r->eof) {
      if (r->pos == r->end) return 0;
      *line = r->buf + r->pos;     /* a last line without a newline */
      *len = r->end - r->pos;
      r->bytes += *len;
      r->pos = r->end;
      r->lineno++;
      return 1;
    }
    if (r->end - r->pos >= EXP_MAX_LINE) {   /* overlong: hand over its start */
      *line = r->buf + r->pos;
      *len = EXP_MAX_LINE;
      r->bytes += EXP_MAX_LINE;
      r->pos += EXP_MAX_LINE;
      r->skipping = 1;
      r->lineno++;
      return 1;
    }
    if (!may_block) return 2;
    if (reader_read(r) < 0) return -1;
  }
}

/* Can a line be had without blocking: one is buffered, the input has
** ended, or the descriptor has data now? */
static int reader_ready(const reader *r) {
  if (r->eof || (r->pos < r->end && memchr(r->buf + r->pos, '\n', r->end - r->pos))) return 1;
  struct pollfd pfd = {r->fd, POLLIN, 0};
  return poll(&pfd, 1, 0) != 0;
}

static int blank(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
  return 1;
}

/* ---- chunks ---- */

#define CHUNK_LINES 256
#define CHUNK_BYTES (1u << 20)

enum { SLOT_EMPTY, SLOT_QUEUED, SLOT_DONE };

typedef struct chunk {
  pw_buf in, out;
  size_t off[CHUNK_LINES], len[CHUNK_LINES];
  long lineno[CHUNK_LINES];
  int n, state;
  uint64_t bytes_end;   /* input consumed once this chunk is done */
} chunk;

/* Fill c with lines. Blocks for the first line only, so a slow stream
** still sees its results promptly. Returns 1 when the input goes on, 0 at
** its end, -1 on a read error. */
static int fill_chunk(reader *r, chunk *c, exp_pipeline *p) {
  const char *line;
  size_t len;
  c->n = 0;
  pw_buf_reset(&c->in);
  pw_buf_reset(&c->out);
  while (c->n < CHUNK_LINES && c->in.len < CHUNK_BYTES) {
    int rc = reader_next(r, &line, &len, c->n == 0);
    if (rc == 2) break;
    if (rc <= 0) { c->bytes_end = r->bytes; return rc; }
    p->lines++;
    if (blank(line, len)) { p->blank++; continue; }
    c->off[c->n] = c->in.len;
    c->len[c->n] = len;
    c->lineno[c->n] = r->lineno;
    pw_buf_add(&c->in, line, len);
    c->n++;
  }
  c->bytes_end = r->bytes;
  return 1;
}

static void run_chunk(exp_pipeline *p, void *worker, chunk *c) {
  for (int i = 0; i < c->n; i++)
    p->process(worker, c->in.data + c->off[i], c->len[i], c->lineno[i], &c->out);
}

/* ---- progress ---- */

typedef struct progress {
  int on;
  double start, last;
  uint64_t total;      /* input size in bytes, 0 when unknown */
} progress;

static void progress_draw(progress *pg, const exp_pipeline *p, uint64_t bytes, int final) {
  if (!pg->on) return;
  double now = exp_now();
  if (!final && now - pg->last < 0.2) return;
  pg->last = now;
  if (final) { fputs("\r\033[K", stderr); fflush(stderr); return; }
  double el = now - pg->start, rate = el > 0 ? (double)p->processed / el : 0;
  char line[160];
  int k = 0;
  if (pg->total) {
    double f = (double)bytes / (double)pg->total;
    if (f > 1) f = 1;
    char bar[31];
    int fill = (int)(f * 30);
    for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    k = snprintf(line, sizeof line, "%5.1f%% [%s] %ld cases  %.0f/s", 100 * f, bar, p->processed, rate);
    if (f > 0.001 && k > 0 && (size_t)k < sizeof line) {
      double eta = el / f - el;
      long s = (long)(eta + 0.5);
      snprintf(line + k, sizeof line - (size_t)k, "  ETA %ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    }
  } else {
    snprintf(line, sizeof line, "%ld cases  %.0f/s  (%.1f s)", p->processed, rate, el);
  }
  fprintf(stderr, "\r%s\033[K", line);
  fflush(stderr);
}

/* ---- the pipeline ---- */

typedef struct shared {
  exp_pipeline *p;
  chunk *slots;
  int nslots;
  long fill, take;      /* chunks queued so far, chunks taken by workers */
  int closed;
  pthread_mutex_t mu;
  pthread_cond_t work, done;
} shared;

typedef struct worker_arg {
  shared *s;
  void *state;
} worker_arg;

static void *worker_main(void *arg) {
  worker_arg *w = arg;
  shared *s = w->s;
  pthread_mutex_lock(&s->mu);
  for (;;) {
    while (s->take == s->fill && !s->closed) pthread_cond_wait(&s->work, &s->mu);
    if (s->take == s->fill) break;
    chunk *c = &s->slots[s->take++ % s->nslots];
    pthread_mutex_unlock(&s->mu);
    run_chunk(s->p, w->state, c);
    pthread_mutex_lock(&s->mu);
    c->state = SLOT_DONE;
    pthread_cond_signal(&s->done);
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

static int emit(exp_pipeline *p, chunk *c) {
  if (c->in.failed || c->out.failed) { errno = ENOMEM; return -1; }   /* records lost: never emit part */
  if (!c->out.len) return 0;
  if (p->emit) return p->emit(p->ud, c->out.data, c->out.len);
  return fwrite(c->out.data, 1, c->out.len, stdout) == c->out.len && !fflush(stdout) ? 0 : -1;
}

static int open_input(const char *path, uint64_t *size) {
  int fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC) : STDIN_FILENO;
  struct stat st;
  *size = 0;
  if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) *size = (uint64_t)st.st_size;
  return fd;
}

/* One run of the pipeline: its input, output slots and errors. */
typedef struct run {
  exp_pipeline *p;
  reader r;
  progress pg;
  chunk *slots;
  int nslots, more, werr, rerr, code;
} run;

/* jobs <= 1: read, process and write one chunk at a time on this thread. */
static void run_serial(run *x) {
  exp_pipeline *p = x->p;
  chunk *c = &x->slots[0];
  while (x->more > 0 && !x->werr) {
    x->more = fill_chunk(&x->r, c, p);
    run_chunk(p, p->workers[0], c);
    p->processed += c->n;
    if (emit(p, c)) x->werr = errno ? errno : EIO;
    progress_draw(&x->pg, p, c->bytes_end, 0);
  }
  if (x->more < 0) x->rerr = errno;
}

/* Write every finished chunk, in order; wait (holding s->mu) while the
** ring is full, the input has ended, or reading would block: results of
** a slow stream go out before more comes. */
static void write_done(run *x, shared *s, long *written) {
  exp_pipeline *p = x->p;
  for (;;) {
    chunk *c = &x->slots[*written % x->nslots];
    if (*written < s->fill && c->state == SLOT_DONE) {
      pthread_mutex_unlock(&s->mu);
      if (!x->werr && emit(p, c)) x->werr = errno ? errno : EIO;
      p->processed += c->n;
      progress_draw(&x->pg, p, c->bytes_end, 0);
      pthread_mutex_lock(&s->mu);
      c->state = SLOT_EMPTY;
      (*written)++;
      continue;
    }
    int must_wait = *written < s->fill &&
      (s->fill - *written >= x->nslots || x->more <= 0 || x->werr || !reader_ready(&x->r));
    if (!must_wait) return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 200000000L;
    if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
    pthread_cond_timedwait(&s->done, &s->mu, &ts);
    pthread_mutex_unlock(&s->mu);
    progress_draw(&x->pg, p, x->r.bytes, 0);
    pthread_mutex_lock(&s->mu);
  }
}

/* The calling thread reads and writes; the workers process chunks. */
static void feed(run *x, shared *s) {
  long written = 0;
  for (;;) {
    pthread_mutex_lock(&s->mu);
    write_done(x, s, &written);
    if (x->more <= 0 || x->werr) {
      int finished = written == s->fill;
      pthread_mutex_unlock(&s->mu);
      if (finished) break;
      continue;
    }
    pthread_mutex_unlock(&s->mu);
    chunk *c = &x->slots[s->fill % x->nslots];   /* empty: fewer than nslots are out */
    x->more = fill_chunk(&x->r, c, x->p);
    if (x->more < 0) x->rerr = errno;
    pthread_mutex_lock(&s->mu);
    if (c->n > 0) {
      c->state = SLOT_QUEUED;
      s->fill++;
      pthread_cond_signal(&s->work);
    }
    pthread_mutex_unlock(&s->mu);
  }
}

static void run_parallel(run *x) {
  exp_pipeline *p = x->p;
  shared s;
  memset(&s, 0, sizeof s);
  s.p = p;
  s.slots = x->slots;
  s.nslots = x->nslots;
  pthread_mutex_init(&s.mu, NULL);
  pthread_cond_init(&s.work, NULL);
  pthread_cond_init(&s.done, NULL);
  worker_arg *args = calloc((size_t)p->jobs, sizeof *args);
  pthread_t *tids = calloc((size_t)p->jobs, sizeof *tids);
  int started = 0;
  for (; args && tids && started < p->jobs; started++) {
    args[started].s = &s;
    args[started].state = p->workers[started];
    if (pthread_create(&tids[started], NULL, worker_main, &args[started])) break;
  }
  if (started < p->jobs) {
    fprintf(stderr, "pathwise: cannot start %d threads (started %d)\n", p->jobs, started);
    x->code = PW_EX_SOFTWARE;
    x->more = 0;
  }
  feed(x, &s);
  pthread_mutex_lock(&s.mu);
  s.closed = 1;
  pthread_cond_broadcast(&s.work);
  pthread_mutex_unlock(&s.mu);
  for (int i = 0; i < started; i++) pthread_join(tids[i], NULL);
  pthread_mutex_destroy(&s.mu);
  pthread_cond_destroy(&s.work);
  pthread_cond_destroy(&s.done);
  free(args);
  free(tids);
}

int exp_pipeline_run(exp_pipeline *p) {
  run x;
  uint64_t size;
  memset(&x, 0, sizeof x);
  x.p = p;
  x.code = PW_EX_OK;
  x.more = 1;
  p->lines = p->blank = p->processed = 0;
  x.r.fd = open_input(p->input, &size);
  if (x.r.fd < 0) {
    fprintf(stderr, "pathwise: cannot read %s: %s\n", p->input, strerror(errno));
    return PW_EX_NOINPUT;
  }
  x.r.cap = 1u << 20;
  x.r.buf = malloc(x.r.cap);
  x.pg.on = p->progress;
  x.pg.total = size;
  x.pg.start = exp_now();
  x.pg.last = x.pg.start - 1;   /* draw at the first chance */
  x.nslots = p->jobs > 1 ? 4 * p->jobs : 1;
  x.slots = calloc((size_t)x.nslots, sizeof *x.slots);
  if (!x.r.buf || !x.slots) {
    free(x.r.buf);
    free(x.slots);
    if (x.r.fd != STDIN_FILENO) close(x.r.fd);
    fprintf(stderr, "pathwise: out of memory\n");
    return PW_EX_SOFTWARE;
  }
  if (p->jobs <= 1) run_serial(&x);
  else run_parallel(&x);
  progress_draw(&x.pg, p, x.r.bytes, 1);
  p->seconds = exp_now() - x.pg.start;
  if (!x.werr && !p->emit && fflush(stdout)) x.werr = errno;
  if (x.rerr) {
    fprintf(stderr, "pathwise: cannot read %s: %s\n", strcmp(p->input, "-") ? p->input : "stdin", strerror(x.rerr));
    x.code = PW_EX_IOERR;
  } else if (x.werr) {
    fprintf(stderr, "pathwise: cannot write output: %s\n", strerror(x.werr));
    x.code = x.werr == ENOMEM ? PW_EX_OSERR : PW_EX_IOERR;
  }
  for (int i = 0; i < x.nslots; i++) { pw_buf_free(&x.slots[i].in); pw_buf_free(&x.slots[i].out); }
  free(x.slots);
  free(x.r.buf);
  if (x.r.fd != STDIN_FILENO) close(x.r.fd);
  return x.code;
}

/* ---- counters: open addressing on FNV-1a ---- */

static uint64_t hash(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static exp_count_entry *slot_of(exp_count_entry *v, size_t cap, const char *key) {
  size_t i = (size_t)hash(key) & (cap - 1);
  while (v[i].key && strcmp(v[i].key, key)) i = (i + 1) & (cap - 1);
  return &v[i];
}

void exp_count_add(exp_counter *c, const char *key, uint64_t n) {
  if (2 * (c->used + 1) > c->cap) {
    size_t cap = c->cap ? 2 * c->cap : 64;
    exp_count_entry *v = calloc(cap, sizeof *v);
    if (!v) { c->failed = 1; return; }   /* reported with the counts */
    for (size_t i = 0; i < c->cap; i++)
      if (c->v[i].key) *slot_of(v, cap, c->v[i].key) = c->v[i];
    free(c->v);
    c->v = v;
    c->cap = cap;
  }
  exp_count_entry *e = slot_of(c->v, c->cap, key);
  if (!e->key) {
    if (!(e->key = strdup(key))) { c->failed = 1; return; }
    c->used++;
  }
  e->n += n;
}

uint64_t exp_count_get(const exp_counter *c, const char *key) {
  if (!c->cap) return 0;
  exp_count_entry *e = slot_of(c->v, c->cap, key);
  return e->key ? e->n : 0;
}

void exp_count_merge(exp_counter *dst, const exp_counter *src) {
  for (size_t i = 0; i < src->cap; i++)
    if (src->v[i].key) exp_count_add(dst, src->v[i].key, src->v[i].n);
}

static int by_count(const void *a, const void *b) {
  const exp_count_entry *x = a, *y = b;
  if (x->n != y->n) return x->n < y->n ? 1 : -1;
  return strcmp(x->key, y->key);
}

exp_count_entry *exp_count_sorted(const exp_counter *c, size_t *n) {
  exp_count_entry *v = malloc((c->used ? c->used : 1) * sizeof *v);
  if (!v) { *n = 0; return NULL; }   /* callers then list nothing */
  size_t k = 0;
  for (size_t i = 0; i < c->cap; i++)
    if (c->v[i].key) v[k++] = c->v[i];
  qsort(v, k, sizeof *v, by_count);
  *n = k;
  return v;
}

void exp_count_free(exp_counter *c) {
  for (size_t i = 0; i < c->cap; i++) free(c->v[i].key);
  free(c->v);
  memset(c, 0, sizeof *c);
}

void exp_text_top_labelled(pw_buf *b, const char *title, const exp_counter *c, size_t top, uint64_t denom,
                           exp_label_fn label, int kind) {
  size_t n, width = 8;
  exp_count_entry *v = exp_count_sorted(c, &n);
  pw_buf lab = {0};   /* the labels shown, each ended by its NUL */
  size_t at[64];
  if (top > 64) top = 64;
  pw_buf_addf(b, "%s\n", title);
  if (c->failed || (!v && c->used)) pw_buf_adds(b, "  (incomplete: out of memory)\n");
  if (n == 0) pw_buf_adds(b, "  (none)\n");
  for (size_t i = 0; i < n && i < top; i++) {
    at[i] = lab.len;
    if (label) label(&lab, kind, v[i].key);
    else pw_buf_adds(&lab, v[i].key);
    pw_buf_add(&lab, "", 1);
    if (lab.len - at[i] - 1 > width) width = lab.len - at[i] - 1;
  }
  if (width > 60) width = 60;
  for (size_t i = 0; i < n && i < top; i++)
    pw_buf_addf(b, "  %-*s %9llu  %5.1f%%\n", (int)width, lab.failed ? v[i].key : lab.data + at[i],
                (unsigned long long)v[i].n, exp_pct(v[i].n, denom));
  if (n > top) pw_buf_addf(b, "  ... and %zu more\n", n - top);
  pw_buf_free(&lab);
  free(v);
}

void exp_text_top(pw_buf *b, const char *title, const exp_counter *c, size_t top, uint64_t denom) {
  exp_text_top_labelled(b, title, c, top, denom, NULL, 0);
}

void exp_json_counts(pw_jsonw *w, const exp_counter *c) {
  size_t n;
  exp_count_entry *v = exp_count_sorted(c, &n);
  if (c->failed || (!v && c->used)) w->b->failed = 1;   /* never write counts as if whole */
  pw_jsonw_begin_object(w);
  for (size_t i = 0; i < n; i++) pw_jsonw_field_int(w, v[i].key, (long long)v[i].n);
  pw_jsonw_end_object(w);
  free(v);
}

void exp_json_field_counts(pw_jsonw *w, const char *key, const exp_counter *c) {
  pw_jsonw_key(w, key);
  exp_json_counts(w, c);
}

/* ---- results, errors, output ---- */

void exp_error_field(const char *msg, char *field, size_t n) {
  /* validator and gate messages read "<path>: <what>"; a path has no spaces */
  const char *colon = strstr(msg, ": ");
  size_t k = colon ? (size_t)(colon - msg) : 0;
  if (!colon || k == 0 || k >= n || memchr(msg, ' ', k)) k = 0;
  if (k == 0) { snprintf(field, n, "$"); return; }
  memcpy(field, msg, k);
  field[k] = '\0';
}

void exp_error_record(pw_buf *out, long lineno, const pw_error *err, const char *field) {
  pw_jsonw w;
  pw_jsonw_init(&w, out);
  pw_jsonw_begin_object(&w);
  pw_jsonw_field_int(&w, "line", lineno);
  pw_jsonw_key(&w, "error");
  pw_jsonw_begin_object(&w);
  pw_jsonw_field_str(&w, "status", pw_status_name(err->code));
  pw_jsonw_field_str(&w, "field", field);   /* NULL writes null */
  pw_jsonw_field_str(&w, "message", err->msg);
  pw_jsonw_end_object(&w);
  pw_jsonw_end_object(&w);
  pw_buf_add(out, "\n", 1);
}

void exp_item_key(const pw_item *it, char *buf, size_t n) {
  if (it->target) snprintf(buf, n, "%s@%d", it->id, it->target);
  else snprintf(buf, n, "%s", it->id);
}

void exp_html(pw_buf *b, const char *s) {
  for (; s && *s; s++) {
    switch (*s) {
    case '<': pw_buf_adds(b, "&lt;"); break;
    case '>': pw_buf_adds(b, "&gt;"); break;
    case '&': pw_buf_adds(b, "&amp;"); break;
    case '"': pw_buf_adds(b, "&quot;"); break;
    case '\'': pw_buf_adds(b, "&#39;"); break;
    default: pw_buf_add(b, s, 1);
    }
  }
}

int exp_write(FILE *f, const char *what, const pw_buf *b) {
  if (b->failed) {
    fprintf(stderr, "pathwise: cannot write %s: out of memory\n", what);
    return PW_EX_OSERR;
  }
  if ((b->len && fwrite(b->data, 1, b->len, f) != b->len) || fflush(f)) {
    fprintf(stderr, "pathwise: cannot write %s: %s\n", what, strerror(errno));
    return PW_EX_IOERR;
  }
  return PW_EX_OK;
}
