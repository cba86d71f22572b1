/*
** server.c: `pathwise serve`, the supervisor.
**
** One libuv loop in the main process does all I/O: it accepts on the Unix
** socket, frames newline-delimited JSON-RPC 2.0, answers the cheap methods
** itself (health, stats, protocols, rules, reload) and hands evaluate and
** check_orders to pre-forked worker processes over socketpairs. Writes are
** batched: requests and answers are appended to per-worker and
** per-connection buffers and flushed once per loop iteration (uv_check),
** so one read of 64 pipelined requests costs one write to each worker.
**
** Isolation. Each worker is a process with its own engines; the main
** process never runs protocol code. A periodic watchdog kills (SIGKILL) a
** worker whose evaluation runs past deadline + grace or that stops making
** progress; a worker that dies for any reason is replaced. Its request
** being evaluated (known from a shared page) is answered with an error;
** the others it held had not started and go back to the queue (once).
**
** Generations. The workers that load one set of protocol sources are a
** generation. A reload reads the sources, forks a new generation whose
** workers must load them and pass their example cases, then swaps it in:
** new requests go to it, the old generation's workers finish what they
** hold and exit when their channel closes. If any new worker fails, the
** new generation is killed and the old one keeps serving.
**
** The decision log (declog.c) is written by this process only. A response
** to an evaluation is held until its record is durable (--log-sync
** always) or written (batch); a log that has failed turns evaluations into
** errors and health into "degraded".
*/
#include "server.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "command.h"
#include "declog.h"
#include "engine.h"
#include "rpc.h"
#include "sd.h"
#include "worker.h"

#define SUN_PATH_MAX ((int)sizeof(((struct sockaddr_un *)0)->sun_path) - 1)
#define LAT_BUCKETS (32 + 40 * 16)
#define MAX_ALLOW 64

typedef struct srv srv;
typedef struct conn conn;
typedef struct req req;
typedef struct held held;
typedef struct worker worker;
typedef struct gen gen;
typedef struct waiter waiter;

/* ==================================================================== */
/* {====== data                                                         */

typedef struct opts {
  const char *socket;
  unsigned socket_mode;
  const char *protocol_files[64];
  int nprotocol_files;
  const char *protocols_dir;
  const char *plugins[64];
  int nplugins;
  int workers;
  const char *log_path;
  pw_log_sync log_sync;
  unsigned log_interval_ms;
  int log_facts;
  unsigned timeout_ms, grace_ms;
  size_t max_line;
  unsigned max_conns;
  unsigned idle_s;
  size_t max_wq;
  unsigned max_inflight;     /* per connection */
  unsigned worker_queue;     /* per worker */
  size_t memory;
  uint64_t instructions;
  uint64_t worker_as;
  uint64_t worker_cpu;
  long allow_uid[MAX_ALLOW];
  int nallow_uid;
  long allow_gid[MAX_ALLOW];
  int nallow_gid;
  int watch;
} opts;

struct req {
  req *next;
  conn *c;
  uint64_t tag, t_recv, deadline;
  uint16_t method;
  uint8_t answered, retries;
  uint32_t id_off, id_len;   /* id_len 0: notification */
  uint32_t len;
  char line[];
};

struct held {                /* an answer waiting for its log record */
  held *next;
  conn *c;
  uint64_t seq, t_recv;
  int answered;              /* the deadline passed first: an error went out */
  uint32_t id_len;
  size_t len;
  char data[];               /* response line, then the raw id */
};

struct conn {
  uv_pipe_t h;
  srv *s;
  conn *prev, *next;
  conn *dnext;
  int dirty;
  char *rb;
  size_t rlen, rcap, rpos, scan;
  pw_buf out;
  size_t wq;                 /* bytes in uv_write requests */
  unsigned inflight;         /* requests not yet answered */
  unsigned refs;             /* reqs and helds pointing here */
  uint64_t last_ms;
  long uid, gid, pid;
  int paused, eof, closing, closed, close_after_flush;
};

enum { W_STARTING, W_READY, W_LOST };

struct worker {
  srv *s;
  gen *g;
  int idx;
  pid_t pid;
  uv_pipe_t ch;
  int ch_open;
  pw_worker_slot *slot;
  pw_buf out;
  size_t wq;
  int dirty;
  worker *dnext;
  char *rb;
  size_t rlen, rcap;
  req *qh, *qt;
  unsigned nq;
  int state;
  int killed, reaped, retiring, lost;
  int status;
  uint64_t spawned_ns, progress_ns;
  worker *anext;             /* all workers */
};

enum { G_LOADING, G_ACTIVE, G_DRAINING };

struct waiter {
  waiter *next;
  conn *c;
  size_t idlen;
  char id[];
};

struct gen {
  srv *s;
  unsigned num;
  int state;
  pw_rpc_protocol *protos;
  int nprotos;
  char **names, **srcs;
  pw_worker_cfg wcfg;
  worker **w;
  int nw, nready, alive;
  char *protocols_json;
  int *pstat;
  int npstat;
  waiter *waiters;
  uint64_t started_ns;
  unsigned backoff_ms;
  uv_timer_t respawn;
  gen *gnext;
};

typedef struct pstat {
  char *id;
  uint64_t evaluations, errors;
} pstat;

typedef struct codecount {
  int code;
  uint64_t n;
} codecount;

typedef struct wreq {
  uv_write_t req;
  void *owner;
  char *data;
  size_t len;
} wreq;

struct srv {
  uv_loop_t *loop;
  opts o;
  uv_pipe_t listener;
  int listener_init;
  uv_check_t check;
  uv_idle_t idle;            /* active while output waits: no blocking poll */
  int idle_on;
  uv_timer_t tick, debounce, stop_timer;
  uv_signal_t sig_term, sig_int, sig_hup, sig_usr1, sig_chld;
  uv_fs_event_t watch[65];
  int nwatch;
  conn *conns;
  unsigned nconns;
  conn *dconns;
  worker *dworkers;
  worker *workers;
  req *pqh, *pqt;
  unsigned npq;
  gen *gens, *active, *loading;
  unsigned gen_seq;
  held *hh, *ht;
  pw_declog *log;
  uint64_t tag_seq;
  int stopping, finishing;
  int exit_code;
  int lock_fd;
  int activated_fd;     /* > 0: the listening socket systemd passed (sd.h) */
  dev_t sock_dev;
  ino_t sock_ino;
  int sock_bound;
  pw_buf rules_json;
  waiter *next_waiters;
  int reload_again;
  char last_reload_error[1024];
  char last_reload_reason[64];
  uint64_t start_ms;
  pw_gate_limits gate;
  uint64_t stall_ms;         /* see pick_worker */
  /* stats */
  uint64_t requests, responses, errors, by_method[PW_M__COUNT], unknown_method;
  codecount codes[24];
  uint64_t conns_total, conns_rejected, client_gone, accept_errors, accept_error_ms;
  uint64_t w_spawns, w_crashes, w_kills, reloads_ok, reloads_failed, moved;
  uint64_t lat[LAT_BUCKETS];
  uint64_t lat_n, lat_max_us;
  pstat *pst;
  int npst;
};

/* }====== */

static void conn_flush(conn *c);
static void conn_close(conn *c);
static void conn_check(conn *c);
static void conn_process(conn *c);
static void worker_lost(worker *w, const char *why);
static void worker_flush(worker *w);
static void pq_drain(srv *s);
static void maybe_finish(srv *s);
static void reload_start(srv *s, const char *reason, conn *c, const char *id, size_t idlen);
static void gen_fail(gen *g, const char *msg);
static void spawn_missing(gen *g);
static void on_respawn(uv_timer_t *t);
static void gen_maybe_free(gen *g);
static void begin_shutdown(srv *s, const char *why);
static void conn_alloc(uv_handle_t *h, size_t sug, uv_buf_t *b);
static void conn_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b);
static void wake(srv *s);

/* Log lines: under systemd (stderr is the journal stream) each starts with
** its syslog priority, <6> information, <4> warning, <3> error (sd.h). */
static void say_at(int prio, const char *fmt, va_list ap) {
  char m[2048];
  vsnprintf(m, sizeof m, fmt, ap);
  fprintf(stderr, "%spathwise serve: %s\n", pw_sd_prefix(pw_sd_stderr_is_journal(), prio), m);
}
#define SAY_FN(name, prio) \
  static void name(const char *fmt, ...) __attribute__((format(printf, 1, 2))); \
  static void name(const char *fmt, ...) { va_list ap; va_start(ap, fmt); say_at(prio, fmt, ap); va_end(ap); }
SAY_FN(say, PW_SD_INFO)
SAY_FN(say_warn, PW_SD_WARNING)
SAY_FN(say_err, PW_SD_ERR)

static uint64_t now_ns(void) { return pw_worker_now_ns(); }

/* ==================================================================== */
/* {====== stats                                                        */

static void lat_record(srv *s, uint64_t t_recv) {
  uint64_t us = (now_ns() - t_recv) / 1000;
  size_t i;
  if (us < 32) i = (size_t)us;
  else {
    int msb = 63 - __builtin_clzll(us);
    if (msb > 44) msb = 44;
    i = 32 + (size_t)(msb - 5) * 16 + (size_t)((us >> (msb - 4)) & 15);
    if (i >= LAT_BUCKETS) i = LAT_BUCKETS - 1;
  }
  s->lat[i]++;
  s->lat_n++;
  if (us > s->lat_max_us) s->lat_max_us = us;
}

static uint64_t lat_bucket_value(size_t i) {
  if (i < 32) return i;
  size_t e = (i - 32) / 16 + 5, sub = (i - 32) % 16;
  uint64_t lo = (16 + (uint64_t)sub) << (e - 4);
  uint64_t w = (uint64_t)1 << (e - 4);
  return lo + w / 2;
}

static uint64_t lat_pct(const srv *s, double p) {
  if (!s->lat_n) return 0;
  uint64_t want = (uint64_t)(p * (double)s->lat_n + 0.5), acc = 0;
  if (want < 1) want = 1;
  for (size_t i = 0; i < LAT_BUCKETS; i++) {
    acc += s->lat[i];
    if (acc >= want) {
      uint64_t v = lat_bucket_value(i);
      return v > s->lat_max_us ? s->lat_max_us : v;
    }
  }
  return s->lat_max_us;
}

static void count_code(srv *s, int code) {
  s->errors++;
  for (int i = 0; i < 24; i++) {
    if (s->codes[i].code == code || s->codes[i].code == 0) {
      s->codes[i].code = code;
      s->codes[i].n++;
      return;
    }
  }
}

static int pstat_index(srv *s, const char *id) {
  for (int i = 0; i < s->npst; i++)
    if (strcmp(s->pst[i].id, id) == 0) return i;
  pstat *n = realloc(s->pst, (size_t)(s->npst + 1) * sizeof *n);
  if (!n) abort();
  s->pst = n;
  s->pst[s->npst].id = strdup(id);
  s->pst[s->npst].evaluations = s->pst[s->npst].errors = 0;
  return s->npst++;
}

/* }====== */

/* ==================================================================== */
/* {====== connections: output                                          */

static void conn_dirty(conn *c) {
  if (c->dirty || c->closing) return;
  c->dirty = 1;
  c->dnext = c->s->dconns;
  c->s->dconns = c;
  wake(c->s);
}

static void conn_send(conn *c, const char *p, size_t n) {
  if (c->closing) return;
  pw_buf_add(&c->out, p, n);
  conn_dirty(c);
}

static void conn_error(conn *c, const char *id, size_t idlen, int code, const char *msg) {
  count_code(c->s, code);
  if (c->closing) return;
  pw_rpc_error_line(&c->out, id, idlen, code, msg);
  conn_dirty(c);
}

static void conn_maybe_free(conn *c) {
  if (!c->closed || c->refs) return;
  srv *s = c->s;
  if (c->prev) c->prev->next = c->next;
  else s->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  free(c->rb);
  pw_buf_free(&c->out);
  free(c);
  maybe_finish(s);
}

static void on_conn_closed(uv_handle_t *h) {
  conn *c = h->data;
  c->closed = 1;
  conn_maybe_free(c);
}

static void conn_close(conn *c) {
  if (c->closing) return;
  c->closing = 1;
  c->s->nconns--;
  pw_buf_free(&c->out);
  uv_close((uv_handle_t *)&c->h, on_conn_closed);
}

static void conn_resume(conn *c) {
  srv *s = c->s;
  if (!c->paused || c->closing) return;
  if (c->inflight > s->o.max_inflight / 2 || c->out.len + c->wq > s->o.max_wq / 2) return;
  c->paused = 0;
  conn_process(c);
  if (!c->paused && !c->closing && !c->eof && !s->stopping)
    uv_read_start((uv_stream_t *)&c->h, conn_alloc, conn_read);
}

/* after every change: close a finished half-closed connection, resume */
static void conn_check(conn *c) {
  if (c->closing) return;
  if ((c->eof || c->close_after_flush) && !c->inflight && !c->out.len && !c->wq) {
    conn_close(c);
    return;
  }
  if (c->paused) conn_resume(c);
}

static void conn_write_cb(uv_write_t *w, int status) {
  wreq *wr = (wreq *)w;
  conn *c = wr->owner;
  c->wq -= wr->len;
  free(wr->data);
  free(wr);
  if (c->closing) return;
  if (status < 0) {
    c->s->client_gone++;
    conn_close(c);
    return;
  }
  if (c->out.len) conn_flush(c);
  else conn_check(c);
}

static void conn_flush(conn *c) {
  if (c->closing) return;
  if (c->out.len && !c->wq) {
    uv_buf_t b = uv_buf_init(c->out.data, (unsigned)c->out.len);
    int n = uv_try_write((uv_stream_t *)&c->h, &b, 1);
    if (n == UV_EAGAIN) n = 0;
    if (n < 0) {          /* the client went away (EPIPE, ECONNRESET) */
      c->s->client_gone++;
      conn_close(c);
      return;
    }
    if ((size_t)n == c->out.len) {
      pw_buf_reset(&c->out);
    } else {
      wreq *wr = malloc(sizeof *wr);
      if (!wr) abort();
      wr->owner = c;
      wr->len = c->out.len - (size_t)n;
      if (n) memmove(c->out.data, c->out.data + n, wr->len);
      wr->data = c->out.data;      /* hand the buffer over */
      memset(&c->out, 0, sizeof c->out);
      uv_buf_t wb = uv_buf_init(wr->data, (unsigned)wr->len);
      c->wq += wr->len;
      if (uv_write(&wr->req, (uv_stream_t *)&c->h, &wb, 1, conn_write_cb) != 0) {
        c->wq -= wr->len;
        free(wr->data);
        free(wr);
        conn_close(c);
        return;
      }
    }
  }
  if (c->out.cap > 1u << 20 && !c->out.len) pw_buf_free(&c->out);
  conn_check(c);
}

/* }====== */

/* ==================================================================== */
/* {====== requests                                                     */

static void req_free(req *r) {
  conn *c = r->c;
  if (!r->answered) c->inflight--;
  c->refs--;
  free(r);
  if (c->closing) conn_maybe_free(c);
  else conn_check(c);
}

/* An id that is safe to echo (the line passed the gate), else NULL. */
static const char *req_id(srv *s, req *r, size_t *len) {
  *len = 0;
  if (!r->id_len) return NULL;
  pw_gate_info gi;
  char e[8];
  if (pw_gate_check(r->line, r->len, &s->gate, &gi, e, sizeof e) != 0 || !gi.has_id)
    return NULL;
  *len = gi.id_len;
  return r->line + gi.id_off;
}

/* Answer r with an error now (it may stay queued at a worker). */
static void req_fail(srv *s, req *r, int code, const char *msg) {
  if (r->answered) return;
  r->answered = 1;
  r->c->inflight--;
  s->responses++;
  lat_record(s, r->t_recv);
  if (r->id_len) {
    size_t idlen;
    const char *id = req_id(s, r, &idlen);
    conn_error(r->c, id, idlen, code, msg);
  } else {
    count_code(s, code);
  }
}

static void pq_push(srv *s, req *r) {
  r->next = NULL;
  if (s->pqt) s->pqt->next = r;
  else s->pqh = r;
  s->pqt = r;
  s->npq++;
}

static req *pq_pop(srv *s) {
  req *r = s->pqh;
  if (!r) return NULL;
  s->pqh = r->next;
  if (!s->pqh) s->pqt = NULL;
  r->next = NULL;
  s->npq--;
  return r;
}

static void worker_dirty(worker *w) {
  if (w->dirty) return;
  w->dirty = 1;
  w->dnext = w->s->dworkers;
  w->s->dworkers = w;
  wake(w->s);
}

static void worker_send(worker *w, req *r) {
  pw_wire_hdr h;
  memset(&h, 0, sizeof h);
  h.len = r->len;
  h.kind = PW_WIRE_REQ;
  h.proto = (int16_t)r->method;
  h.tag = r->tag;
  h.ns = r->deadline;
  pw_buf_add(&w->out, (const char *)&h, sizeof h);
  pw_buf_add(&w->out, r->line, r->len);
  r->next = NULL;
  if (w->qt) w->qt->next = r;
  else w->qh = r;
  w->qt = r;
  if (!w->nq) {
    w->progress_ns = now_ns();
  }
  w->nq++;
  worker_dirty(w);
}

/* A worker holding requests that has answered none for a while (a slow or
** stuck evaluation, a stopped process) gets no more until it answers, so
** one bad evaluation delays only what was already queued behind it. */
static worker *pick_worker(srv *s) {
  gen *g = s->active;
  worker *best = NULL;
  if (!g) return NULL;
  uint64_t now = now_ns(), stall = (uint64_t)s->stall_ms * 1000000u;
  for (int i = 0; i < g->nw; i++) {
    worker *w = g->w[i];
    if (!w || w->state != W_READY || w->nq >= s->o.worker_queue) continue;
    if (w->nq && now - w->progress_ns > stall) continue;
    if (!best || w->nq < best->nq) best = w;
  }
  return best;
}

static void pq_drain(srv *s) {
  while (s->pqh) {
    req *r = s->pqh;
    if (r->answered) {
      pq_pop(s);
      req_free(r);
      continue;
    }
    worker *w = pick_worker(s);
    if (!w) return;
    pq_pop(s);
    worker_send(w, r);
  }
}

static void dispatch(srv *s, req *r) {
  if (!s->pqh) {
    worker *w = pick_worker(s);
    if (w) {
      worker_send(w, r);
      return;
    }
  }
  pq_push(s, r);
}

/* }====== */

/* ==================================================================== */
/* {====== the decision log's answers                                   */

static void on_log_done(void *arg, uint64_t upto, int ok) {
  srv *s = arg;
  while (s->hh && s->hh->seq <= upto) {
    held *h = s->hh;
    s->hh = h->next;
    if (!s->hh) s->ht = NULL;
    conn *c = h->c;
    if (h->answered) {
      c->refs--;
      free(h);
      if (c->closing) conn_maybe_free(c);
      else conn_check(c);
      continue;
    }
    if (ok) {
      if (h->id_len) conn_send(c, h->data, h->len);
    } else {
      char msg[512];
      const char *why = s->log ? pw_declog_error(s->log) : NULL;
      snprintf(msg, sizeof msg,
               "%s; the evaluation was not recorded, so its result is withheld",
               why ? why : "decision log write failed");
      if (h->id_len) conn_error(c, h->data + h->len, h->id_len, PW_RPC_LOG_FAILED, msg);
      else count_code(s, PW_RPC_LOG_FAILED);
    }
    s->responses++;
    lat_record(s, h->t_recv);
    c->inflight--;
    c->refs--;
    free(h);
    if (c->closing) conn_maybe_free(c);
    else conn_check(c);
  }
  maybe_finish(s);
}

static void on_log_note(void *arg, const char *msg) {
  (void)arg;
  say_warn("decision log: %s", msg);
}

/* }====== */

/* ==================================================================== */
/* {====== workers                                                      */

static void worker_maybe_free(worker *w) {
  if (!w->reaped || w->ch_open) return;
  srv *s = w->s;
  gen *g = w->g;
  worker **pp = &s->workers;
  while (*pp && *pp != w) pp = &(*pp)->anext;
  if (*pp) *pp = w->anext;
  munmap(w->slot, sizeof *w->slot);
  pw_buf_free(&w->out);
  free(w->rb);
  free(w);
  g->alive--;
  gen_maybe_free(g);
  maybe_finish(s);
}

static void gen_release(gen *g) {   /* its memory; the timer is closed */
  for (int i = 0; i < g->nprotos; i++) {
    free(g->names[i]);
    free(g->srcs[i]);
  }
  free(g->names);
  free(g->srcs);
  free(g->protos);
  free(g->w);
  free(g->pstat);
  free(g->protocols_json);
  free(g);
}

static void gen_free_cb(uv_handle_t *h) { gen_release(h->data); }

static void gen_maybe_free(gen *g) {
  srv *s = g->s;
  if (g->state != G_DRAINING || g->alive || g == s->active || g == s->loading) return;
  gen **gp = &s->gens;
  while (*gp && *gp != g) gp = &(*gp)->gnext;
  if (*gp) *gp = g->gnext;
  if (!uv_is_closing((uv_handle_t *)&g->respawn))
    uv_close((uv_handle_t *)&g->respawn, gen_free_cb);
}

static void on_ch_closed(uv_handle_t *h) {
  worker *w = h->data;
  w->ch_open = 0;
  worker_maybe_free(w);
}

static void worker_write_cb(uv_write_t *wr_, int status) {
  wreq *wr = (wreq *)wr_;
  worker *w = wr->owner;
  w->wq -= wr->len;
  free(wr->data);
  free(wr);
  if (w->lost || w->retiring) return;
  if (status < 0) {
    worker_lost(w, "its channel failed");
    return;
  }
  if (w->out.len) worker_flush(w);
}

static void worker_flush(worker *w) {
  if (w->lost || !w->ch_open || !w->out.len || w->wq) return;
  uv_buf_t b = uv_buf_init(w->out.data, (unsigned)w->out.len);
  int n = uv_try_write((uv_stream_t *)&w->ch, &b, 1);
  if (n == UV_EAGAIN) n = 0;
  if (n < 0) {
    worker_lost(w, "its channel failed");
    return;
  }
  if ((size_t)n == w->out.len) {
    pw_buf_reset(&w->out);
    return;
  }
  wreq *wr = malloc(sizeof *wr);
  if (!wr) abort();
  wr->owner = w;
  wr->len = w->out.len - (size_t)n;
  if (n) memmove(w->out.data, w->out.data + n, wr->len);
  wr->data = w->out.data;
  memset(&w->out, 0, sizeof w->out);
  uv_buf_t wb = uv_buf_init(wr->data, (unsigned)wr->len);
  w->wq += wr->len;
  if (uv_write(&wr->req, (uv_stream_t *)&w->ch, &wb, 1, worker_write_cb) != 0) {
    w->wq -= wr->len;
    free(wr->data);
    free(wr);
    worker_lost(w, "its channel failed");
  }
}

static void worker_retire(worker *w) {
  if (w->retiring || w->lost) return;
  w->retiring = 1;
  if (w->ch_open) {
    uv_read_stop((uv_stream_t *)&w->ch);
    uv_close((uv_handle_t *)&w->ch, on_ch_closed);   /* EOF: the worker exits */
  }
}

static void describe_status(int st, char *buf, size_t n) {
  if (WIFSIGNALED(st)) {
    int sig = WTERMSIG(st);
    snprintf(buf, n, "killed by signal %d (%s)", sig, strsignal(sig));
  } else if (WIFEXITED(st)) {
    snprintf(buf, n, "exited with status %d", WEXITSTATUS(st));
  } else {
    snprintf(buf, n, "stopped");
  }
}

static void worker_lost(worker *w, const char *why) {
  if (w->lost || w->retiring) return;
  srv *s = w->s;
  gen *g = w->g;
  char desc[160];
  w->lost = 1;
  if (!w->reaped && w->pid > 0) {
    int st;
    if (!w->killed) {   /* it may have died on its own: say how */
      pid_t p = waitpid(w->pid, &st, WNOHANG);
      if (p == w->pid) {
        w->reaped = 1;
        w->status = st;
      }
    }
    if (!w->reaped) kill(w->pid, SIGKILL);
  }
  if (w->killed) snprintf(desc, sizeof desc, "%s", why);
  else if (w->reaped) describe_status(w->status, desc, sizeof desc);
  else snprintf(desc, sizeof desc, "died (%s)", why);   /* status logged when reaped */
  if (w->ch_open) {
    uv_read_stop((uv_stream_t *)&w->ch);
    uv_close((uv_handle_t *)&w->ch, on_ch_closed);
  }
  uint64_t running = atomic_load_explicit(&w->slot->tag, memory_order_acquire);
  int was_ready = w->state == W_READY;
  w->state = W_LOST;
  if (w->killed) s->w_kills++;
  else s->w_crashes++;
  if (g->state != G_DRAINING || w->nq)
    say_warn("worker %d (pid %d, generation %u) %s", w->idx, (int)w->pid, g->num, desc);

  /* its requests: the one being evaluated gets the blame, the rest go back */
  req *r = w->qh, *rh = NULL, *rt = NULL;
  w->qh = w->qt = NULL;
  w->nq = 0;
  uint64_t now = now_ns();
  while (r) {
    req *next = r->next;
    r->next = NULL;
    if (r->answered) {
      req_free(r);
    } else if (r->tag == running || r->retries || now >= r->deadline) {
      char msg[300];
      int code;
      if (w->killed) {
        code = PW_RPC_DEADLINE;
        snprintf(msg, sizeof msg,
                 "the evaluation did not finish within its deadline (%u ms); its worker was "
                 "stopped and replaced",
                 s->o.timeout_ms);
      } else {
        code = PW_RPC_WORKER_CRASH;
        snprintf(msg, sizeof msg,
                 "the worker evaluating this request %s; it was replaced and other requests "
                 "are unaffected",
                 desc);
      }
      req_fail(s, r, code, msg);
      req_free(r);
    } else {
      r->retries++;
      if (rt) rt->next = r;
      else rh = r;
      rt = r;
    }
    r = next;
  }
  if (rh) {   /* back to the front of the queue, in order */
    unsigned k = 0;
    for (req *q = rh; q; q = q->next) k++;
    rt->next = s->pqh;
    s->pqh = rh;
    if (!s->pqt) s->pqt = rt;
    s->npq += k;
  }
  if (was_ready) g->nready--;
  if (g->w[w->idx] == w) g->w[w->idx] = NULL;
  if (g->state == G_LOADING) {
    char msg[300];
    snprintf(msg, sizeof msg, "a new worker %s while loading the protocols", desc);
    gen_fail(g, msg);
  } else if (g->state == G_ACTIVE && !s->stopping) {
    uint64_t lived_ms = (now - w->spawned_ns) / 1000000u;
    if (lived_ms < 1000) g->backoff_ms = g->backoff_ms ? g->backoff_ms * 2 : 100;
    else g->backoff_ms = 0;
    if (g->backoff_ms > 5000) g->backoff_ms = 5000;
    if (!g->backoff_ms) spawn_missing(g);
    else uv_timer_start(&g->respawn, on_respawn, g->backoff_ms, 0);
  }
  pq_drain(s);
  maybe_finish(s);
}

/* A response frame from w. */
static void worker_answer(worker *w, const pw_wire_hdr *h, const char *p) {
  srv *s = w->s;
  gen *g = w->g;
  req *r = w->qh;
  if (!r || r->tag != h->tag) {
    worker_lost(w, "answered out of order (killed)");
    return;
  }
  w->qh = r->next;
  if (!w->qh) w->qt = NULL;
  w->nq--;
  w->progress_ns = now_ns();
  conn *c = r->c;
  if (h->proto >= 0 && h->proto < g->npstat) {
    pstat *ps = &s->pst[g->pstat[h->proto]];
    ps->evaluations++;
    if (h->code) ps->errors++;
  }
  if (r->answered) {
    req_free(r);
    return;
  }
  size_t rlen = h->aux;
  if (rlen > h->len) rlen = h->len;
  if (h->code == PW_RPC_DEADLINE && rlen == 0) {
    char msg[200];
    snprintf(msg, sizeof msg, "no worker was free before the deadline (%u ms)", s->o.timeout_ms);
    req_fail(s, r, PW_RPC_DEADLINE, msg);
    req_free(r);
    return;
  }
  if (h->code == 0 && s->log) {
    pw_declog_rec rec;
    rec.request_id = r->id_len ? r->line + r->id_off : NULL;
    rec.request_id_len = r->id_len;
    rec.method = pw_rpc_method_name(r->method);
    rec.uid = c->uid;
    rec.gid = c->gid;
    rec.pid = c->pid;
    rec.frag = p + rlen;
    rec.frag_len = h->len - rlen;
    rec.duration_us = h->ns / 1000;
    uint64_t seq = pw_declog_append(s->log, &rec);
    if (!seq) {
      char msg[512];
      const char *why = pw_declog_error(s->log);
      snprintf(msg, sizeof msg,
               "%s; the evaluation was not recorded, so its result is withheld",
               why ? why : "decision log unavailable");
      req_fail(s, r, PW_RPC_LOG_FAILED, msg);
      req_free(r);
      return;
    }
    if (s->o.log_sync != PW_LOG_NONE) {
      held *hd = malloc(sizeof *hd + rlen + r->id_len);
      if (!hd) abort();
      hd->next = NULL;
      hd->c = c;
      hd->seq = seq;
      hd->t_recv = r->t_recv;
      hd->answered = 0;
      hd->len = rlen;
      hd->id_len = r->id_len;
      memcpy(hd->data, p, rlen);
      memcpy(hd->data + rlen, r->line + r->id_off, r->id_len);
      if (s->ht) s->ht->next = hd;
      else s->hh = hd;
      s->ht = hd;
      /* the held answer takes over r's reference to c; inflight stays
      ** counted until the answer is sent */
      free(r);
      return;
    }
  }
  r->answered = 1;
  c->inflight--;
  s->responses++;
  lat_record(s, r->t_recv);
  if (h->code) count_code(s, h->code);
  if (r->id_len) conn_send(c, p, rlen);
  req_free(r);
}

static void gen_activate(gen *g);

static void worker_ready(worker *w, const char *p, size_t n) {
  gen *g = w->g;
  srv *s = w->s;
  w->state = W_READY;
  g->nready++;
  g->backoff_ms = g->backoff_ms > 100 ? g->backoff_ms / 2 : 0;
  if (!g->protocols_json) {
    const char *nl = memchr(p, '\n', n);
    size_t jl = nl ? (size_t)(nl - p) : n;
    g->protocols_json = malloc(jl + 1);
    if (!g->protocols_json) abort();
    memcpy(g->protocols_json, p, jl);
    g->protocols_json[jl] = '\0';
    /* then one protocol id per line */
    g->npstat = 0;
    g->pstat = calloc((size_t)g->nprotos + 1, sizeof *g->pstat);
    if (!g->pstat) abort();
    const char *q = nl ? nl + 1 : p + n, *end = p + n;
    while (q < end && g->npstat <= g->nprotos) {
      const char *e = memchr(q, '\n', (size_t)(end - q));
      if (!e) e = end;
      char id[256];
      size_t il = (size_t)(e - q);
      if (il >= sizeof id) il = sizeof id - 1;
      memcpy(id, q, il);
      id[il] = '\0';
      g->pstat[g->npstat++] = pstat_index(s, id);
      q = e + 1;
    }
  }
  if (g->state == G_LOADING && g->nready == g->nw) gen_activate(g);
  else if (g->state == G_ACTIVE) pq_drain(s);
}

static void worker_alloc(uv_handle_t *h, size_t sug, uv_buf_t *b) {
  worker *w = h->data;
  (void)sug;
  if (w->rcap - w->rlen < 65536) {
    size_t ncap = w->rcap ? w->rcap * 2 : 262144;
    char *nb = realloc(w->rb, ncap);
    if (!nb) abort();
    w->rb = nb;
    w->rcap = ncap;
  }
  b->base = w->rb + w->rlen;
  b->len = w->rcap - w->rlen;
}

static void worker_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  worker *w = st->data;
  srv *s = w->s;
  (void)b;
  if (n == 0) return;
  if (n < 0) {
    worker_lost(w, n == UV_EOF ? "closed its channel" : "channel read failed");
    return;
  }
  w->rlen += (size_t)n;
  size_t pos = 0;
  while (w->rlen - pos >= PW_WIRE_HDR) {
    pw_wire_hdr h;
    memcpy(&h, w->rb + pos, sizeof h);
    if (h.len > s->o.max_line * 4 + (1u << 20)) {
      worker_lost(w, "sent a malformed frame (killed)");
      return;
    }
    if (w->rlen - pos - PW_WIRE_HDR < h.len) {
      size_t need = PW_WIRE_HDR + (size_t)h.len + 65536;
      if (need > w->rcap) {
        memmove(w->rb, w->rb + pos, w->rlen - pos);
        w->rlen -= pos;
        pos = 0;
        char *nb = realloc(w->rb, need);
        if (!nb) abort();
        w->rb = nb;
        w->rcap = need;
      }
      break;
    }
    const char *p = w->rb + pos + PW_WIRE_HDR;
    switch (h.kind) {
      case PW_WIRE_RESP: worker_answer(w, &h, p); break;
      case PW_WIRE_READY: worker_ready(w, p, h.len); break;
      case PW_WIRE_FAIL: {
        char msg[1200];
        snprintf(msg, sizeof msg, "%.*s", (int)(h.len < 1100 ? h.len : 1100), p);
        if (w->g->state == G_LOADING) {
          gen_fail(w->g, msg);
        } else {
          say_warn("worker %d could not load the protocols: %s", w->idx, msg);
          worker_lost(w, "could not load the protocols");
        }
        return;
      }
      default: worker_lost(w, "sent an unknown frame (killed)"); return;
    }
    if (w->lost || w->retiring) return;
    pos += PW_WIRE_HDR + (size_t)h.len;
  }
  if (pos) {
    memmove(w->rb, w->rb + pos, w->rlen - pos);
    w->rlen -= pos;
  }
  if (w->rcap > (4u << 20) && w->rlen < 65536) {
    char *nb = realloc(w->rb, 262144);
    if (nb) {
      w->rb = nb;
      w->rcap = 262144;
    }
  }
  if (w->g->state == G_DRAINING && !w->nq) worker_retire(w);
  else if (s->pqh) pq_drain(s);
}

static worker *worker_start(gen *g, int idx, int check) {
  srv *s = g->s;
  worker *w = calloc(1, sizeof *w);
  if (!w) return NULL;
  w->slot = mmap(NULL, sizeof *w->slot, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                 -1, 0);
  if (w->slot == MAP_FAILED) {
    free(w);
    return NULL;
  }
  w->s = s;
  w->g = g;
  w->idx = idx;
  g->wcfg.rpc.check_examples = check;
  int fd = -1;
  w->pid = pw_worker_spawn(&g->wcfg, w->slot, &fd);
  if (w->pid < 0) {
    say_err("cannot fork a worker: %s", strerror(errno));
    munmap(w->slot, sizeof *w->slot);
    free(w);
    return NULL;
  }
  s->w_spawns++;
  w->spawned_ns = w->progress_ns = now_ns();
  uv_pipe_init(s->loop, &w->ch, 0);
  w->ch.data = w;
  w->ch_open = 1;
  w->anext = s->workers;
  s->workers = w;
  g->alive++;
  if (uv_pipe_open(&w->ch, fd) != 0) {
    close(fd);
    kill(w->pid, SIGKILL);
    w->lost = 1;   /* reaped by SIGCHLD; the record keeps its pid known */
    uv_close((uv_handle_t *)&w->ch, on_ch_closed);
    return NULL;
  }
  uv_read_start((uv_stream_t *)&w->ch, worker_alloc, worker_read);
  return w;
}

static void spawn_missing(gen *g) {
  srv *s = g->s;
  if (s->stopping || g->state == G_DRAINING) return;
  for (int i = 0; i < g->nw; i++) {
    if (g->w[i]) continue;
    g->w[i] = worker_start(g, i, g->state == G_LOADING);
    if (!g->w[i]) {
      if (g->state == G_LOADING) {
        gen_fail(g, "cannot start a worker process");
        return;
      }
      uv_timer_start(&g->respawn, on_respawn, 1000, 0);
    }
  }
}

static void on_respawn(uv_timer_t *t) {
  gen *g = t->data;
  spawn_missing(g);
}

/* }====== */

/* ==================================================================== */
/* {====== generations and reload                                       */

static int read_file(const char *path, char **out, size_t *len, char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return -1;
  }
  pw_buf b = {0};
  char tmp[65536];
  size_t n;
  while ((n = fread(tmp, 1, sizeof tmp, f)) > 0) {
    pw_buf_add(&b, tmp, n);
    if (b.len > (16u << 20)) {
      fclose(f);
      pw_buf_free(&b);
      snprintf(err, errlen, "%s: larger than 16 MiB", path);
      return -1;
    }
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    pw_buf_free(&b);
    snprintf(err, errlen, "%s: read error", path);
    return -1;
  }
  pw_buf_add(&b, "", 0);
  *out = b.data;
  *len = b.len;
  return 0;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The protocol paths to load, sorted for a directory. */
static int protocol_paths(srv *s, char ***paths, int *n, char *err, size_t errlen) {
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
      if (!nv) abort();
      v = nv;
      v[k] = malloc(strlen(s->o.protocols_dir) + l + 2);
      if (!v[k]) abort();
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
  if (!v) abort();
  for (int i = 0; i < s->o.nprotocol_files; i++) {
    v[i] = strdup(s->o.protocol_files[i]);
    if (!v[i]) abort();
  }
  *paths = v;
  *n = s->o.nprotocol_files;
  return 0;
}

static gen *gen_new(srv *s, char *err, size_t errlen) {
  char **paths;
  int n;
  if (protocol_paths(s, &paths, &n, err, errlen) != 0) return NULL;
  gen *g = calloc(1, sizeof *g);
  if (!g) abort();
  g->s = s;
  g->nprotos = n;
  g->names = paths;
  g->srcs = calloc((size_t)n, sizeof *g->srcs);
  g->protos = calloc((size_t)n, sizeof *g->protos);
  if (!g->srcs || !g->protos) abort();
  for (int i = 0; i < n; i++) {
    size_t len;
    if (read_file(paths[i], &g->srcs[i], &len, err, errlen) != 0) {
      for (int k = 0; k < n; k++) {
        free(g->names[k]);
        free(g->srcs[k]);
      }
      free(g->names);
      free(g->srcs);
      free(g->protos);
      free(g);
      return NULL;
    }
    g->protos[i].name = g->names[i];
    g->protos[i].src = g->srcs[i];
    g->protos[i].len = len;
  }
  g->wcfg.rpc.protocols = g->protos;
  g->wcfg.rpc.nprotocols = n;
  g->wcfg.rpc.plugins = s->o.plugins;
  g->wcfg.rpc.nplugins = s->o.nplugins;
  g->wcfg.rpc.limits.memory = s->o.memory;
  g->wcfg.rpc.limits.instructions = s->o.instructions;
  g->wcfg.rpc.limits.max_input = s->o.max_line;
  g->wcfg.rpc.log = s->o.log_path != NULL;
  g->wcfg.rpc.log_facts = s->o.log_facts;
  g->wcfg.max_frame = s->o.max_line + 16;
  g->wcfg.rlimit_as = s->o.worker_as;
  g->wcfg.cpu_headroom_s = s->o.worker_cpu;
  g->wcfg.parent = getpid();
  g->nw = s->o.workers;
  g->w = calloc((size_t)g->nw, sizeof *g->w);
  if (!g->w) abort();
  uv_timer_init(s->loop, &g->respawn);
  g->respawn.data = g;
  g->num = ++s->gen_seq;
  g->gnext = s->gens;
  s->gens = g;
  return g;
}

static int gen_same_sources(const gen *a, const gen *b) {
  if (!a || !b || a->nprotos != b->nprotos) return 0;
  for (int i = 0; i < a->nprotos; i++) {
    if (strcmp(a->names[i], b->names[i]) != 0 || a->protos[i].len != b->protos[i].len ||
        memcmp(a->protos[i].src, b->protos[i].src, a->protos[i].len) != 0)
      return 0;
  }
  return 1;
}

static void waiter_add(waiter **list, conn *c, const char *id, size_t idlen) {
  waiter *wt = malloc(sizeof *wt + idlen);
  if (!wt) abort();
  wt->c = c;
  wt->idlen = idlen;
  memcpy(wt->id, id, idlen);
  wt->next = *list;
  *list = wt;
  c->refs++;
  c->inflight++;
}

static void waiters_answer(srv *s, waiter **list, int code, const char *msg, const char *result) {
  waiter *wt = *list;
  *list = NULL;
  while (wt) {
    waiter *next = wt->next;
    conn *c = wt->c;
    if (code) conn_error(c, wt->id, wt->idlen, code, msg);
    else if (!c->closing) {
      pw_buf_adds(&c->out, "{\"jsonrpc\":\"2.0\",\"id\":");
      pw_buf_add(&c->out, wt->id, wt->idlen);
      pw_buf_adds(&c->out, ",\"result\":");
      pw_buf_adds(&c->out, result);
      pw_buf_adds(&c->out, "}\n");
      conn_dirty(c);
    }
    s->responses++;
    c->inflight--;
    c->refs--;
    free(wt);
    if (c->closing) conn_maybe_free(c);
    else conn_check(c);
    wt = next;
  }
}

static void notify_systemd(const char *msg) { (void)pw_sd_notify(msg); }

/* A reload of a serving server: RELOADING=1 now, READY=1 when it ends. */
static void notify_reloading(srv *s, const char *reason) {
  if (!s->active) return;
  char m[160];
  char st[96];
  snprintf(st, sizeof st, "reloading (%s)", reason);
  pw_sd_reloading_msg(m, sizeof m, st);
  notify_systemd(m);
}

static void notify_reload_refused(srv *s) {
  char m[1200];
  snprintf(m, sizeof m, "READY=1\nSTATUS=serving generation %u; reload refused: %s", s->active->num,
           s->last_reload_error);
  notify_systemd(m);
}

static int sock_listen(srv *s);

static void gen_activate(gen *g) {
  srv *s = g->s;
  gen *old = s->active;
  s->loading = NULL;
  s->active = g;
  g->state = G_ACTIVE;
  g->backoff_ms = 0;
  double ms = (double)(now_ns() - g->started_ns) / 1e6;
  if (old) {
    old->state = G_DRAINING;
    uv_timer_stop(&old->respawn);
    for (int i = 0; i < old->nw; i++) {
      worker *w = old->w[i];
      if (w && !w->nq && !w->lost) worker_retire(w);
    }
    s->reloads_ok++;
    s->last_reload_error[0] = '\0';
    say("reloaded (%s): generation %u serves %s in %.0f ms", s->last_reload_reason, g->num,
        g->protocols_json, ms);
    notify_systemd("READY=1\nSTATUS=serving (reloaded)");
  } else {
    if (sock_listen(s) != 0) {
      s->exit_code = PW_EX_OSERR;
      begin_shutdown(s, "cannot listen");
      return;
    }
    say("ready on %s: %d workers, protocols %s, decision log %s%s%s (%.0f ms)", s->o.socket,
        g->nw, g->protocols_json, s->o.log_path ? s->o.log_path : "off",
        s->o.log_path ? ", sync " : "",
        s->o.log_path ? pw_declog_mode_name(s->o.log_sync) : "", ms);
    char m[512];
    snprintf(m, sizeof m, "READY=1\nSTATUS=serving on %s\nMAINPID=%d", s->o.socket,
             (int)getpid());
    notify_systemd(m);
  }
  pw_buf res = {0};
  pw_buf_addf(&res, "{\"reloaded\":true,\"generation\":%u,\"protocols\":%s}", g->num,
              g->protocols_json);
  waiters_answer(s, &g->waiters, 0, NULL, res.data);
  pw_buf_free(&res);
  pq_drain(s);
  if (s->reload_again) {
    s->reload_again = 0;
    reload_start(s, s->last_reload_reason, NULL, NULL, 0);
  }
}

static void gen_fail(gen *g, const char *msg) {
  srv *s = g->s;
  if (g->state != G_LOADING) return;
  g->state = G_DRAINING;
  if (s->loading == g) s->loading = NULL;
  s->reloads_failed++;
  snprintf(s->last_reload_error, sizeof s->last_reload_error, "%s", msg);
  uv_timer_stop(&g->respawn);
  for (int i = 0; i < g->nw; i++) {
    worker *w = g->w[i];
    if (!w) continue;
    g->w[i] = NULL;
    if (!w->lost) {
      w->retiring = 1;   /* not a crash: we end it */
      if (!w->reaped) kill(w->pid, SIGKILL);
      if (w->ch_open) {
        uv_read_stop((uv_stream_t *)&w->ch);
        uv_close((uv_handle_t *)&w->ch, on_ch_closed);
      }
    }
  }
  char m[1200];
  if (s->active) {
    say_warn("reload refused (%s): %s; generation %u keeps serving", s->last_reload_reason, msg,
        s->active->num);
    snprintf(m, sizeof m, "reload refused, the loaded protocols keep serving: %s", msg);
    notify_reload_refused(s);
  } else {
    say_err("cannot start: %s", msg);
    snprintf(m, sizeof m, "%s", msg);
    if (!s->exit_code) s->exit_code = PW_EX_CONFIG;
  }
  waiters_answer(s, &g->waiters, PW_RPC_RELOAD_FAILED, m, NULL);
  gen_maybe_free(g);
  if (!s->active) {
    begin_shutdown(s, "the protocols did not load");
    return;
  }
  if (s->reload_again) {
    s->reload_again = 0;
    reload_start(s, s->last_reload_reason, NULL, NULL, 0);
  }
}

static void reload_start(srv *s, const char *reason, conn *c, const char *id, size_t idlen) {
  if (c) waiter_add(&s->next_waiters, c, id, idlen);
  if (s->stopping) {
    waiters_answer(s, &s->next_waiters, PW_RPC_BUSY, "the server is stopping", NULL);
    return;
  }
  if (s->loading) {
    s->reload_again = 1;
    snprintf(s->last_reload_reason, sizeof s->last_reload_reason, "%s", reason);
    return;
  }
  snprintf(s->last_reload_reason, sizeof s->last_reload_reason, "%s", reason);
  char err[1024];
  gen *g = gen_new(s, err, sizeof err);
  if (!g) {
    s->reloads_failed++;
    snprintf(s->last_reload_error, sizeof s->last_reload_error, "%s", err);
    if (s->active) {
      notify_reloading(s, reason);
      say_warn("reload refused (%s): %s; generation %u keeps serving", reason, err, s->active->num);
      notify_reload_refused(s);
      char m[1200];
      snprintf(m, sizeof m, "reload refused, the loaded protocols keep serving: %s", err);
      waiters_answer(s, &s->next_waiters, PW_RPC_RELOAD_FAILED, m, NULL);
    } else {
      say_err("cannot start: %s", err);
      s->exit_code = PW_EX_NOINPUT;
      waiters_answer(s, &s->next_waiters, PW_RPC_RELOAD_FAILED, err, NULL);
      begin_shutdown(s, "no protocol");
    }
    return;
  }
  if (!c && !s->next_waiters && strcmp(reason, "protocol file changed") == 0 &&
      gen_same_sources(g, s->active)) {
    g->state = G_DRAINING;   /* nothing changed: drop it quietly */
    gen_maybe_free(g);
    s->gen_seq--;
    return;
  }
  g->waiters = s->next_waiters;
  s->next_waiters = NULL;
  g->state = G_LOADING;
  g->started_ns = now_ns();
  s->loading = g;
  notify_reloading(s, reason);
  spawn_missing(g);
}

/* }====== */

/* ==================================================================== */
/* {====== the cheap methods                                            */

static void add_result_head(conn *c, const char *id, size_t idlen) {
  pw_buf_adds(&c->out, "{\"jsonrpc\":\"2.0\",\"id\":");
  pw_buf_add(&c->out, id, idlen);
  pw_buf_adds(&c->out, ",\"result\":");
}

/* The oldest answer waiting for its record has waited past the deadline. */
static int log_stalled(srv *s) {
  return s->hh && now_ns() - s->hh->t_recv > (uint64_t)s->o.timeout_ms * 1000000u;
}

static const char *health_status(srv *s) {
  if (s->stopping) return "stopping";
  if (s->log && (pw_declog_error(s->log) || log_stalled(s))) return "degraded";
  if (!s->active || s->active->nready < s->active->nw) return "degraded";
  return "ok";
}

static void method_health(srv *s, pw_buf *b) {
  gen *g = s->active;
  pw_buf_addf(b, "{\"status\":\"%s\",\"engine\":\"%s\",\"pid\":%d,\"uptime_s\":%.3f,",
              health_status(s), PW_VERSION, (int)getpid(),
              (double)(uv_now(s->loop) - s->start_ms) / 1000.0);
  pw_buf_addf(b, "\"workers\":{\"configured\":%d,\"ready\":%d,\"generation\":%u,\"pids\":[",
              s->o.workers, g ? g->nready : 0, g ? g->num : 0);
  int first = 1;
  for (int i = 0; g && i < g->nw; i++) {
    if (!g->w[i] || g->w[i]->lost) continue;
    pw_buf_addf(b, "%s%d", first ? "" : ",", (int)g->w[i]->pid);
    first = 0;
  }
  pw_buf_addf(b, "]},\"protocols\":%s,", g && g->protocols_json ? g->protocols_json : "[]");
  if (s->log) {
    const char *e = pw_declog_error(s->log);
    pw_buf_adds(b, "\"decision_log\":{\"enabled\":true,\"path\":");
    pw_buf_json_str(b, s->o.log_path);
    pw_buf_addf(b, ",\"sync\":\"%s\",\"ok\":%s,\"stalled\":%s,\"error\":",
                pw_declog_mode_name(s->o.log_sync), e ? "false" : "true",
                log_stalled(s) ? "true" : "false");
    pw_buf_json_str(b, e);
    pw_buf_adds(b, "},");
  } else {
    pw_buf_adds(b, "\"decision_log\":{\"enabled\":false},");
  }
  pw_buf_addf(b, "\"reload\":{\"in_progress\":%s,\"last_error\":", s->loading ? "true" : "false");
  pw_buf_json_str(b, s->last_reload_error[0] ? s->last_reload_error : NULL);
  pw_buf_addf(b, "},\"connections\":%u}", s->nconns);
}

static void method_stats(srv *s, pw_buf *b) {
  pw_buf_addf(b,
              "{\"requests\":%llu,\"responses\":%llu,\"errors\":%llu,\"in_flight\":%llu,"
              "\"queued\":%u,\"methods\":{",
              (unsigned long long)s->requests, (unsigned long long)s->responses,
              (unsigned long long)s->errors,
              (unsigned long long)(s->requests - s->responses), s->npq);
  for (int m = 1; m < PW_M__COUNT; m++)
    pw_buf_addf(b, "%s\"%s\":%llu", m > 1 ? "," : "", pw_rpc_method_name(m),
                (unsigned long long)s->by_method[m]);
  pw_buf_addf(b, ",\"unknown\":%llu},\"error_codes\":{", (unsigned long long)s->unknown_method);
  for (int i = 0; i < 24 && s->codes[i].code; i++)
    pw_buf_addf(b, "%s\"%d\":%llu", i ? "," : "", s->codes[i].code,
                (unsigned long long)s->codes[i].n);
  pw_buf_addf(b,
              "},\"latency_us\":{\"count\":%llu,\"p50\":%llu,\"p90\":%llu,\"p99\":%llu,"
              "\"p999\":%llu,\"max\":%llu},\"protocols\":{",
              (unsigned long long)s->lat_n, (unsigned long long)lat_pct(s, 0.50),
              (unsigned long long)lat_pct(s, 0.90), (unsigned long long)lat_pct(s, 0.99),
              (unsigned long long)lat_pct(s, 0.999), (unsigned long long)s->lat_max_us);
  for (int i = 0; i < s->npst; i++) {
    if (i) pw_buf_add(b, ",", 1);
    pw_buf_json_str(b, s->pst[i].id);
    pw_buf_addf(b, ":{\"evaluations\":%llu,\"errors\":%llu}",
                (unsigned long long)s->pst[i].evaluations, (unsigned long long)s->pst[i].errors);
  }
  pw_buf_addf(b,
              "},\"connections\":{\"open\":%u,\"total\":%llu,\"rejected\":%llu,"
              "\"vanished\":%llu},\"workers\":{\"spawned\":%llu,\"crashed\":%llu,"
              "\"killed\":%llu,\"requests_moved\":%llu,\"served\":[",
              s->nconns, (unsigned long long)s->conns_total,
              (unsigned long long)s->conns_rejected, (unsigned long long)s->client_gone,
              (unsigned long long)s->w_spawns, (unsigned long long)s->w_crashes,
              (unsigned long long)s->w_kills, (unsigned long long)s->moved);
  gen *g = s->active;
  int first = 1;
  for (int i = 0; g && i < g->nw; i++) {
    if (!g->w[i] || g->w[i]->lost) continue;
    pw_buf_addf(b, "%s%llu", first ? "" : ",",
                (unsigned long long)atomic_load(&g->w[i]->slot->served));
    first = 0;
  }
  pw_buf_addf(b, "]},\"reloads\":{\"ok\":%llu,\"failed\":%llu}",
              (unsigned long long)s->reloads_ok, (unsigned long long)s->reloads_failed);
  if (s->log) {
    pw_declog_stats ls;
    pw_declog_get_stats(s->log, &ls);
    pw_buf_addf(b,
                ",\"decision_log\":{\"records\":%llu,\"commits\":%llu,\"syncs\":%llu,"
                "\"bytes\":%llu,\"last_seq\":%llu,\"lost\":%llu}",
                (unsigned long long)ls.records, (unsigned long long)ls.commits,
                (unsigned long long)ls.syncs, (unsigned long long)ls.bytes,
                (unsigned long long)ls.last_seq, (unsigned long long)ls.lost);
  }
  pw_buf_add(b, "}", 1);
}

static void local_method(conn *c, int m, const char *id, size_t idlen) {
  srv *s = c->s;
  if (m == PW_M_RELOAD) {
    if (idlen) {
      reload_start(s, "reload method", c, id, idlen);
    } else {
      s->responses++;
      reload_start(s, "reload method", NULL, NULL, 0);
    }
    return;
  }
  s->responses++;
  if (!idlen || c->closing) return;   /* a notification gets no answer */
  add_result_head(c, id, idlen);
  switch (m) {
    case PW_M_HEALTH: method_health(s, &c->out); break;
    case PW_M_STATS: method_stats(s, &c->out); break;
    case PW_M_RULES: pw_buf_add(&c->out, s->rules_json.data, s->rules_json.len); break;
    case PW_M_PROTOCOLS:
      pw_buf_adds(&c->out, s->active && s->active->protocols_json ? s->active->protocols_json
                                                                  : "[]");
      break;
    default: pw_buf_adds(&c->out, "null"); break;
  }
  pw_buf_add(&c->out, "}\n", 2);
  conn_dirty(c);
}

/* }====== */

/* ==================================================================== */
/* {====== connections: input                                          */

/* Answer a line the gate refused (its message in e), or, with e NULL, one
** it passed that is still no JSON-RPC request object. */
static void parse_error(conn *c, const char *e) {
  char msg[400];
  snprintf(msg, sizeof msg, "Parse error: %s", e ? e : "not a JSON-RPC request object");
  conn_error(c, NULL, 0, PW_RPC_PARSE_ERROR, msg);
}

static int id_ok(const char *id, size_t n) {
  if (n == 4 && memcmp(id, "null", 4) == 0) return 1;
  if (id[0] == '"') return n <= 258;
  return id[0] == '-' || (id[0] >= '0' && id[0] <= '9');
}

static void handle_line(conn *c, const char *p, size_t n) {
  srv *s = c->s;
  static const char *const keys[] = {"jsonrpc", "method", "id"};
  pw_span sp[3];
  char e[300];   /* the gate's message when it refuses the line */
  while (n && (p[n - 1] == '\r' || p[n - 1] == ' ' || p[n - 1] == '\t')) n--;
  size_t i = 0;
  while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r')) i++;
  if (i == n) return;
  s->requests++;
  if (p[i] == '[') {
    s->responses++;
    conn_error(c, NULL, 0, PW_RPC_INVALID_REQUEST,
               "batch requests are not supported: send one request object per line");
    return;
  }
  if (pw_rpc_members(p, n, keys, 3, sp, PW_RPC_FIRST) != 0) {
    s->responses++;
    parse_error(c, pw_gate_check(p, n, &s->gate, NULL, e, sizeof e) ? e : NULL);
    return;
  }
  const char *id = sp[2].len ? p + sp[2].off : NULL;
  size_t idlen = sp[2].len;
  char method[64], ver[8];
  int m = PW_M_NONE;
  const char *bad = NULL;
  if (id && !id_ok(id, idlen)) bad = "id: expected a string, a number or null";
  else if (!sp[0].len || pw_rpc_string(p + sp[0].off, sp[0].len, ver, sizeof ver) != 3 ||
           strcmp(ver, "2.0") != 0)
    bad = "jsonrpc: expected \"2.0\"";
  else if (!sp[1].len || pw_rpc_string(p + sp[1].off, sp[1].len, method, sizeof method) < 0)
    bad = "method: expected a method name string";
  else m = pw_rpc_method_num(method, strlen(method));

  if (m == PW_M_EVALUATE || m == PW_M_CHECK_ORDERS || m == PW_M_EVALUATE_FHIR) {
    s->by_method[m]++;
    if (s->log && pw_declog_error(s->log)) {
      char msg[512];
      pw_gate_info gi;
      s->responses++;
      /* the id is echoed only once the whole line passed the gate */
      if (pw_gate_check(p, n, &s->gate, &gi, e, sizeof e) != 0) {
        parse_error(c, e);
        return;
      }
      snprintf(msg, sizeof msg, "%s; evaluations are refused until it is fixed (SIGUSR1 reopens)",
               pw_declog_error(s->log));
      if (gi.has_id) conn_error(c, p + gi.id_off, gi.id_len, PW_RPC_LOG_FAILED, msg);
      else count_code(s, PW_RPC_LOG_FAILED);
      return;
    }
    req *r = malloc(sizeof *r + n);
    if (!r) abort();
    memcpy(r->line, p, n);
    r->len = (uint32_t)n;
    r->next = NULL;
    r->c = c;
    r->tag = ++s->tag_seq;
    r->t_recv = now_ns();
    r->deadline = r->t_recv + (uint64_t)s->o.timeout_ms * 1000000u;
    r->method = (uint16_t)m;
    r->answered = r->retries = 0;
    r->id_off = (uint32_t)sp[2].off;
    r->id_len = (uint32_t)idlen;
    c->inflight++;
    c->refs++;
    dispatch(s, r);
    return;
  }
  /* everything else is answered here, after the full check */
  if (pw_gate_check(p, n, &s->gate, NULL, e, sizeof e) != 0) {
    s->responses++;
    parse_error(c, e);
    return;
  }
  if (bad) {
    s->responses++;
    conn_error(c, NULL, 0, PW_RPC_INVALID_REQUEST, bad);
    return;
  }
  if (m == PW_M_NONE) {
    char msg[200];
    s->responses++;
    s->unknown_method++;
    snprintf(msg, sizeof msg,
             "method '%.60s' not found; methods: evaluate, check_orders, protocols, rules, "
             "reload, health, stats",
             method);
    if (id) conn_error(c, id, idlen, PW_RPC_METHOD_NOT_FOUND, msg);
    else count_code(s, PW_RPC_METHOD_NOT_FOUND);
    return;
  }
  s->by_method[m]++;
  local_method(c, m, id, id ? idlen : 0);
}

static void conn_pause(conn *c) {
  if (c->paused) return;
  c->paused = 1;
  uv_read_stop((uv_stream_t *)&c->h);
}

static void too_large(conn *c) {
  char msg[160];
  snprintf(msg, sizeof msg,
           "request line longer than %zu bytes (--max-line); closing the connection",
           c->s->o.max_line);
  c->s->requests++;
  c->s->responses++;
  conn_error(c, NULL, 0, PW_RPC_TOO_LARGE, msg);
  c->close_after_flush = 1;
  c->rlen = c->rpos = c->scan = 0;
  conn_pause(c);
}

static void conn_process(conn *c) {
  srv *s = c->s;
  while (!c->closing && !c->paused && !c->close_after_flush) {
    char *start = c->rb + c->rpos;
    char *nl = c->rlen > c->scan ? memchr(c->rb + c->scan, '\n', c->rlen - c->scan) : NULL;
    if (!nl) {
      c->scan = c->rlen;
      if (c->rlen - c->rpos > s->o.max_line) too_large(c);
      break;
    }
    size_t len = (size_t)(nl - start);
    c->rpos = c->scan = (size_t)(nl - c->rb) + 1;
    if (len > s->o.max_line) {
      too_large(c);
      break;
    }
    handle_line(c, start, len);
    if (c->inflight >= s->o.max_inflight || c->out.len + c->wq >= s->o.max_wq) conn_pause(c);
  }
  if (c->rpos && !c->closing) {
    memmove(c->rb, c->rb + c->rpos, c->rlen - c->rpos);
    c->rlen -= c->rpos;
    c->scan -= c->rpos;
    c->rpos = 0;
  }
  if (c->rcap > (1u << 20) && c->rlen < 65536) {
    char *nb = realloc(c->rb, 65536);
    if (nb) {
      c->rb = nb;
      c->rcap = 65536;
    }
  }
}

static void conn_alloc(uv_handle_t *h, size_t sug, uv_buf_t *b) {
  conn *c = h->data;
  (void)sug;
  if (c->rcap - c->rlen < 16384) {
    size_t ncap = c->rcap ? c->rcap * 2 : 65536;
    size_t lim = c->s->o.max_line + 65536;
    if (ncap > lim) ncap = lim;
    if (ncap < c->rlen + 16384) ncap = c->rlen + 16384;
    char *nb = realloc(c->rb, ncap);
    if (!nb) abort();
    c->rb = nb;
    c->rcap = ncap;
  }
  b->base = c->rb + c->rlen;
  b->len = c->rcap - c->rlen;
}

static void conn_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  conn *c = st->data;
  (void)b;
  if (n == 0 || c->closing) return;
  if (n < 0) {
    uv_read_stop(st);
    if (n == UV_EOF) {   /* half-closed: answer what came, then close */
      if (!c->paused && !c->close_after_flush && c->rlen > c->rpos &&
          c->rlen - c->rpos <= c->s->o.max_line) {
        /* EOF ends a last line sent without its newline */
        size_t at = c->rpos, len = c->rlen - c->rpos;
        c->rpos = c->scan = c->rlen;
        handle_line(c, c->rb + at, len);
      }
      c->eof = 1;
      conn_check(c);
    } else {
      c->s->client_gone++;
      conn_close(c);
    }
    return;
  }
  c->rlen += (size_t)n;
  c->last_ms = uv_now(c->s->loop);
  if (c->paused || c->close_after_flush) return;
  conn_process(c);
}

static int peer_allowed(srv *s, conn *c) {
  if (!s->o.nallow_uid && !s->o.nallow_gid) return 1;
  for (int i = 0; i < s->o.nallow_uid; i++)
    if (c->uid >= 0 && s->o.allow_uid[i] == c->uid) return 1;
  for (int i = 0; i < s->o.nallow_gid; i++)
    if (c->gid >= 0 && s->o.allow_gid[i] == c->gid) return 1;
  return 0;
}

static void on_connection(uv_stream_t *server, int status) {
  srv *s = server->data;
  if (status < 0) {   /* EMFILE: libuv's reserve descriptor sheds it */
    s->accept_errors++;
    if (uv_now(s->loop) - s->accept_error_ms >= 1000) {
      say_warn("accept: %s (%llu so far)", uv_strerror(status), (unsigned long long)s->accept_errors);
      s->accept_error_ms = uv_now(s->loop);
    }
    return;
  }
  conn *c = calloc(1, sizeof *c);
  if (!c) abort();
  c->s = s;
  uv_pipe_init(s->loop, &c->h, 0);
  c->h.data = c;
  if (uv_accept(server, (uv_stream_t *)&c->h) != 0) {
    uv_close((uv_handle_t *)&c->h, (uv_close_cb)free);
    return;
  }
  c->uid = c->gid = c->pid = -1;
  uv_os_fd_t fd;
  if (uv_fileno((uv_handle_t *)&c->h, &fd) == 0) {
    struct ucred uc;
    socklen_t l = sizeof uc;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &l) == 0) {
      c->uid = (long)uc.uid;
      c->gid = (long)uc.gid;
      c->pid = (long)uc.pid;
    }
  }
  c->last_ms = uv_now(s->loop);
  c->next = s->conns;
  if (s->conns) s->conns->prev = c;
  s->conns = c;
  s->nconns++;
  s->conns_total++;
  if (s->stopping) {
    s->conns_rejected++;
    conn_error(c, NULL, 0, PW_RPC_BUSY, "the server is stopping");
    c->close_after_flush = 1;
    return;
  }
  if (s->nconns > s->o.max_conns) {
    char msg[120];
    s->conns_rejected++;
    snprintf(msg, sizeof msg, "too many connections (--max-connections %u); try again later",
             s->o.max_conns);
    conn_error(c, NULL, 0, PW_RPC_BUSY, msg);
    c->close_after_flush = 1;
    return;
  }
  if (!peer_allowed(s, c)) {
    char msg[120];
    s->conns_rejected++;
    snprintf(msg, sizeof msg, "uid %ld (gid %ld) is not allowed to use this server", c->uid,
             c->gid);
    say_warn("refused a connection from uid %ld gid %ld pid %ld", c->uid, c->gid, c->pid);
    conn_error(c, NULL, 0, PW_RPC_FORBIDDEN, msg);
    c->close_after_flush = 1;
    return;
  }
  uv_read_start((uv_stream_t *)&c->h, conn_alloc, conn_read);
}

/* }====== */

/* ==================================================================== */
/* {====== the loop's housekeeping                                     */

static void on_idle(uv_idle_t *h) { (void)h; }

static void wake(srv *s) {
  if (s->idle_on || s->finishing) return;
  s->idle_on = 1;
  uv_idle_start(&s->idle, on_idle);
}

static void on_check(uv_check_t *h) {
  srv *s = h->data;
  while (s->dworkers) {
    worker *w = s->dworkers;
    s->dworkers = w->dnext;
    w->dirty = 0;
    worker_flush(w);
  }
  if (s->log) pw_declog_kick(s->log);
  while (s->dconns) {
    conn *c = s->dconns;
    s->dconns = c->dnext;
    c->dirty = 0;
    conn_flush(c);
  }
  if (s->idle_on && !s->dworkers && !s->dconns) {
    s->idle_on = 0;
    uv_idle_stop(&s->idle);
  }
}

static void watchdog(srv *s) {
  uint64_t now = now_ns();
  uint64_t limit = ((uint64_t)s->o.timeout_ms + s->o.grace_ms) * 1000000u;
  for (worker *w = s->workers; w; w = w->anext) {
    if (w->lost || w->retiring || w->state == W_STARTING) continue;
    uint64_t tag = atomic_load_explicit(&w->slot->tag, memory_order_acquire);
    uint64_t since = atomic_load_explicit(&w->slot->since_ns, memory_order_relaxed);
    int stuck = tag && since && now > since && now - since > limit;
    int stalled = w->nq && now - w->progress_ns > limit;
    if (stuck || stalled) {
      w->killed = 1;
      kill(w->pid, SIGKILL);
      char why[160];
      snprintf(why, sizeof why, "was killed: %s for more than %u+%u ms",
               stuck ? "one evaluation ran" : "it made no progress", s->o.timeout_ms,
               s->o.grace_ms);
      worker_lost(w, why);
      continue;
    }
    /* move what waits behind a stalled worker to the others: evaluation is
    ** a pure function and only this process logs, so the stalled worker's
    ** late answers for them are simply dropped */
    if (w->nq && now - w->progress_ns > (uint64_t)s->stall_ms * 1000000u) {
      for (req *r = w->qh; r; r = r->next) {
        if (r->answered || r->tag == tag) continue;
        req *cl = malloc(sizeof *cl + r->len);
        if (!cl) abort();
        memcpy(cl, r, sizeof *cl + r->len);
        cl->next = NULL;
        cl->tag = ++s->tag_seq;
        r->answered = 1;      /* its answer is the clone's now: no inflight change */
        r->c->refs++;
        s->moved++;
        dispatch(s, cl);
      }
    }
    /* answer requests that waited too long behind others (overload) */
    for (req *r = w->qh; r; r = r->next) {
      if (now < r->deadline + (uint64_t)s->o.grace_ms * 1000000u) break;
      if (!r->answered && r->tag != tag) {
        char msg[200];
        snprintf(msg, sizeof msg, "no answer within the deadline (%u ms)", s->o.timeout_ms);
        req_fail(s, r, PW_RPC_DEADLINE, msg);
      }
    }
  }
  while (s->pqh && (s->pqh->answered || now >= s->pqh->deadline)) {
    req *r = pq_pop(s);
    if (!r->answered) {
      char msg[200];
      snprintf(msg, sizeof msg, "no worker was free before the deadline (%u ms)%s",
               s->o.timeout_ms, s->active ? "" : "; the protocols are still loading");
      req_fail(s, r, PW_RPC_DEADLINE, msg);
    }
    req_free(r);
  }
  /* answers still waiting for their log record past deadline + grace */
  for (held *h = s->hh; h; h = h->next) {
    if (now < h->t_recv + ((uint64_t)s->o.timeout_ms + s->o.grace_ms) * 1000000u) break;
    if (h->answered) continue;
    h->answered = 1;
    s->responses++;
    lat_record(s, h->t_recv);
    h->c->inflight--;
    if (h->id_len)
      conn_error(h->c, h->data + h->len, h->id_len, PW_RPC_DEADLINE,
                 "the decision log did not confirm the record within the deadline; the result "
                 "is withheld (the record may still be written)");
    else
      count_code(s, PW_RPC_DEADLINE);
    if (!h->c->closing) conn_check(h->c);
  }
  /* a new generation that takes too long to load fails */
  if (s->loading && now - s->loading->started_ns > 60ull * 1000000000u)
    gen_fail(s->loading, "the new workers did not become ready within 60 s");
}

static void idle_sweep(srv *s) {
  if (!s->o.idle_s) return;
  uint64_t now = uv_now(s->loop), lim = (uint64_t)s->o.idle_s * 1000u;
  for (conn *c = s->conns; c; c = c->next) {
    if (c->closing || c->inflight || c->wq || c->close_after_flush) continue;
    if (now - c->last_ms > lim) {
      char msg[120];
      snprintf(msg, sizeof msg, "idle for %u s (--idle-timeout); closing the connection",
               s->o.idle_s);
      conn_error(c, NULL, 0, PW_RPC_BUSY, msg);
      c->close_after_flush = 1;
      conn_pause(c);
    }
  }
}

static void on_tick(uv_timer_t *t) {
  srv *s = t->data;
  watchdog(s);
  if (uv_now(s->loop) / 1000 != (uv_now(s->loop) - uv_timer_get_repeat(t)) / 1000) idle_sweep(s);
  maybe_finish(s);
}

static void on_sigchld(uv_signal_t *h, int sig) {
  srv *s = h->data;
  (void)sig;
  for (;;) {
    int st;
    pid_t p = waitpid(-1, &st, WNOHANG);
    if (p <= 0) break;
    for (worker *w = s->workers; w; w = w->anext) {
      if (w->pid != p || w->reaped) continue;
      w->reaped = 1;
      w->status = st;
      if (w->lost && !w->killed && !w->retiring) {
        char d[160];
        describe_status(st, d, sizeof d);
        say_warn("worker pid %d: %s", (int)p, d);
      }
      if (!w->lost && !w->retiring) {
        char d[160];
        describe_status(st, d, sizeof d);
        worker_lost(w, d);
      }
      worker_maybe_free(w);
      break;
    }
  }
}

static void on_debounce(uv_timer_t *t) {
  srv *s = t->data;
  reload_start(s, "protocol file changed", NULL, NULL, 0);
}

static void on_fs_event(uv_fs_event_t *h, const char *filename, int events, int status) {
  srv *s = h->data;
  (void)events;
  if (status < 0 || s->stopping) return;
  if (filename) {
    size_t l = strlen(filename);
    if (s->o.protocols_dir) {
      if (l < 5 || strcmp(filename + l - 4, ".lua") != 0) return;
    } else {
      int hit = 0;
      for (int i = 0; i < s->o.nprotocol_files; i++) {
        const char *b = strrchr(s->o.protocol_files[i], '/');
        b = b ? b + 1 : s->o.protocol_files[i];
        if (strcmp(b, filename) == 0) hit = 1;
      }
      if (!hit) return;
    }
  }
  uv_timer_start(&s->debounce, on_debounce, 200, 0);
}

static void start_watching(srv *s) {
  if (!s->o.watch) return;
  const char *dirs[65];
  int nd = 0;
  char *own[65];
  int nown = 0;
  if (s->o.protocols_dir) dirs[nd++] = s->o.protocols_dir;
  for (int i = 0; i < s->o.nprotocol_files && nd < 64; i++) {
    char *d = strdup(s->o.protocol_files[i]);
    if (!d) abort();
    char *sl = strrchr(d, '/');
    if (sl) *(sl == d ? sl + 1 : sl) = '\0';
    else strcpy(d, ".");
    int dup = 0;
    for (int k = 0; k < nd; k++) dup |= strcmp(dirs[k], d) == 0;
    if (dup) {
      free(d);
      continue;
    }
    dirs[nd++] = d;
    own[nown++] = d;
  }
  for (int i = 0; i < nd; i++) {
    uv_fs_event_init(s->loop, &s->watch[s->nwatch]);
    s->watch[s->nwatch].data = s;
    int rc = uv_fs_event_start(&s->watch[s->nwatch], on_fs_event, dirs[i], 0);
    if (rc != 0) {
      say_warn("cannot watch %s for protocol changes: %s", dirs[i], uv_strerror(rc));
      uv_close((uv_handle_t *)&s->watch[s->nwatch], NULL);
      continue;
    }
    s->nwatch++;
  }
  for (int i = 0; i < nown; i++) free(own[i]);
}

/* }====== */

/* ==================================================================== */
/* {====== the socket file                                            */

static int sock_prepare(srv *s) {
  const char *path = s->o.socket;
  size_t l = strlen(path);
  if (l == 0 || (int)l > SUN_PATH_MAX) {
    say_err("socket path is %zu bytes long; a Unix socket path must be 1 to %d bytes: %s", l,
        SUN_PATH_MAX, path);
    return PW_EX_USAGE;
  }
  char *lock = malloc(l + 6);
  if (!lock) abort();
  sprintf(lock, "%s.lock", path);
  s->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (s->lock_fd < 0) {
    say_err("cannot open the lock file %s: %s", lock, strerror(errno));
    free(lock);
    return PW_EX_CANTCREAT;
  }
  if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
    say_err("another pathwise server holds %s: is one already serving %s?", lock, path);
    free(lock);
    return PW_EX_UNAVAILABLE;
  }
  free(lock);
  struct stat st;
  if (lstat(path, &st) != 0) {
    if (errno == ENOENT) return 0;
    say_err("%s: %s", path, strerror(errno));
    return PW_EX_CANTCREAT;
  }
  if (!S_ISSOCK(st.st_mode)) {
    say_err("%s exists and is not a socket; refusing to replace it", path);
    return PW_EX_CANTCREAT;
  }
  if (st.st_uid != geteuid()) {
    say_err("%s belongs to uid %ld, not to us; refusing to replace it", path, (long)st.st_uid);
    return PW_EX_CANTCREAT;
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    say_err("socket: %s", strerror(errno));
    return PW_EX_OSERR;
  }
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path, path, l);
  int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
  int e = errno;
  close(fd);
  if (rc == 0 || e == EAGAIN) {
    say_err("a server is already listening on %s", path);
    return PW_EX_UNAVAILABLE;
  }
  if (e != ECONNREFUSED) {
    say_err("cannot tell whether %s is in use: %s", path, strerror(e));
    return PW_EX_UNAVAILABLE;
  }
  if (unlink(path) != 0) {
    say_err("cannot remove the stale socket %s: %s", path, strerror(errno));
    return PW_EX_CANTCREAT;
  }
  say_warn("removed a stale socket file %s", path);
  return 0;
}

static int sock_listen(srv *s) {
  uv_pipe_init(s->loop, &s->listener, 0);
  s->listener.data = s;
  s->listener_init = 1;
  if (s->activated_fd > 0) {   /* systemd owns the file: adopt, never unlink */
    int rc = uv_pipe_open(&s->listener, s->activated_fd);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&s->listener, 256, on_connection);
    if (rc != 0) say_err("cannot listen on the socket from systemd: %s", uv_strerror(rc));
    return rc != 0 ? -1 : 0;
  }
  /* the file is born with its final mode: no chmod after, no widening */
  mode_t old = umask((mode_t)(~s->o.socket_mode & 0777));
  int rc = uv_pipe_bind(&s->listener, s->o.socket);
  umask(old);
  if (rc != 0) {
    say_err("cannot bind %s: %s", s->o.socket, uv_strerror(rc));
    return -1;
  }
  struct stat st;
  if (lstat(s->o.socket, &st) == 0) {
    s->sock_dev = st.st_dev;
    s->sock_ino = st.st_ino;
    s->sock_bound = 1;
  }
  rc = uv_listen((uv_stream_t *)&s->listener, 256, on_connection);
  if (rc != 0) {
    say_err("cannot listen on %s: %s", s->o.socket, uv_strerror(rc));
    return -1;
  }
  return 0;
}

static void sock_unlink(srv *s) {
  struct stat st;
  if (!s->sock_bound) return;
  s->sock_bound = 0;
  if (lstat(s->o.socket, &st) == 0 && st.st_dev == s->sock_dev && st.st_ino == s->sock_ino)
    unlink(s->o.socket);
}

/* }====== */

/* ==================================================================== */
/* {====== shutdown                                                    */

static void close_if(uv_handle_t *h) {
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void walk_close(uv_handle_t *h, void *arg) {
  (void)arg;
  close_if(h);
}

static void on_stop_timer(uv_timer_t *t) {
  srv *s = t->data;
  if (!s->finishing) {
    /* in-flight work did not end in time: answer it and go */
    say_warn("stopping: giving up on %llu unanswered requests",
        (unsigned long long)(s->requests - s->responses));
    for (worker *w = s->workers; w; w = w->anext)
      if (!w->lost && !w->retiring) {
        w->killed = 1;
        worker_lost(w, "was stopped at shutdown");
      }
    while (s->pqh) {
      req *r = pq_pop(s);
      req_fail(s, r, PW_RPC_BUSY, "the server is stopping");
      req_free(r);
    }
    for (conn *c = s->conns; c; c = c->next) conn_close(c);
    maybe_finish(s);
    return;
  }
  /* workers that ignore EOF */
  for (worker *w = s->workers; w; w = w->anext)
    if (!w->reaped) kill(w->pid, SIGKILL);
}

static void finish(srv *s) {
  s->finishing = 1;
  for (gen *g = s->gens; g; g = g->gnext) {
    uv_timer_stop(&g->respawn);
    for (int i = 0; i < g->nw; i++)
      if (g->w[i]) worker_retire(g->w[i]);
  }
  if (s->log) {
    char err[300];
    if (pw_declog_close(s->log, err, sizeof err) != 0) {
      say_err("decision log: %s", err);
      if (!s->exit_code) s->exit_code = PW_EX_CANTCREAT;
    }
    s->log = NULL;
  }
  close_if((uv_handle_t *)&s->check);
  close_if((uv_handle_t *)&s->idle);
  s->idle_on = 0;
  close_if((uv_handle_t *)&s->tick);
  close_if((uv_handle_t *)&s->debounce);
  close_if((uv_handle_t *)&s->sig_term);
  close_if((uv_handle_t *)&s->sig_int);
  close_if((uv_handle_t *)&s->sig_hup);
  close_if((uv_handle_t *)&s->sig_usr1);
  uv_timer_start(&s->stop_timer, on_stop_timer, 3000, 0);
  maybe_finish(s);
}

static void maybe_finish(srv *s) {
  if (!s->stopping) return;
  if (s->finishing) {
    /* wait for the workers to be reaped, then let the loop end */
    if (s->workers) return;
    close_if((uv_handle_t *)&s->sig_chld);
    close_if((uv_handle_t *)&s->stop_timer);
    for (gen *g = s->gens; g; g = g->gnext)
      close_if((uv_handle_t *)&g->respawn);
    return;
  }
  if (s->pqh || s->hh || s->loading) return;
  for (worker *w = s->workers; w; w = w->anext)
    if (w->nq && !w->lost) return;
  if (s->log && pw_declog_busy(s->log)) return;
  if (s->conns) return;
  finish(s);
}

static void begin_shutdown(srv *s, const char *why) {
  if (s->stopping) return;
  s->stopping = 1;
  say("%s: stopping (finishing %llu requests in flight)", why,
      (unsigned long long)(s->requests - s->responses));
  notify_systemd("STOPPING=1");
  if (s->listener_init) close_if((uv_handle_t *)&s->listener);
  sock_unlink(s);
  for (int i = 0; i < s->nwatch; i++) close_if((uv_handle_t *)&s->watch[i]);
  uv_timer_stop(&s->debounce);
  if (s->loading) gen_fail(s->loading, "the server is stopping");
  waiters_answer(s, &s->next_waiters, PW_RPC_BUSY, "the server is stopping", NULL);
  for (conn *c = s->conns; c; c = c->next) {
    if (c->closing) continue;
    uv_read_stop((uv_stream_t *)&c->h);
    c->eof = 1;
    c->rlen = c->rpos = c->scan = 0;
  }
  for (conn *c = s->conns, *n; c; c = n) {
    n = c->next;
    conn_check(c);
  }
  uv_timer_start(&s->stop_timer, on_stop_timer,
                 (uint64_t)s->o.timeout_ms + s->o.grace_ms + 2000, 0);
  maybe_finish(s);
}

static void on_signal(uv_signal_t *h, int sig) {
  srv *s = h->data;
  if (sig == SIGHUP) {
    say("SIGHUP: reloading the protocols");
    reload_start(s, "SIGHUP", NULL, NULL, 0);
  } else if (sig == SIGUSR1) {
    if (s->log) {
      say("SIGUSR1: reopening the decision log");
      pw_declog_reopen(s->log);
    }
  } else {
    if (s->stopping && !s->finishing) {
      say_warn("%s again: stopping now", strsignal(sig));
      on_stop_timer(&s->stop_timer);
      return;
    }
    begin_shutdown(s, strsignal(sig));
  }
}

/* }====== */

/* ==================================================================== */
/* {====== options                                                      */

static void usage(FILE *f) {
  fprintf(f,
"usage: pathwise serve --socket PATH [options]\n"
"\n"
"Serve evaluations over a local Unix socket: newline-delimited JSON-RPC 2.0,\n"
"one request object per line. Methods: evaluate {facts, protocol?, format?,\n"
"trace?}, check_orders {facts, orders}, protocols, rules, reload, health, stats.\n"
"Evaluations run in supervised worker processes; see README (Server).\n"
"\n"
"Protocols (default: $PATHWISE_PROTOCOL, else the bundled guideline):\n"
"  --protocol FILE         load FILE (repeatable)\n"
"  --protocols DIR         load every DIR/*.lua\n"
"  --plugin FILE           add a local-rule plugin (repeatable)\n"
"  --no-watch              do not reload when a protocol file changes\n"
"Socket:\n"
"  --socket PATH           the socket file (at most %d bytes); PATH.lock beside it\n"
"  --socket-mode MODE      octal mode the file is created with (default 0660)\n"
"  --allow-uid UID[,UID]   only these peer uids may connect (repeatable)\n"
"  --allow-gid GID[,GID]   ... or peers whose primary gid is one of these\n"
"Workers and limits:\n"
"  --workers N             worker processes (default: the number of cores)\n"
"  --timeout MS            deadline of one request (default 2000)\n"
"  --grace MS              after the deadline, before a worker is killed (default 250)\n"
"  --instructions N        Lua instruction budget per evaluation (engine default)\n"
"  --memory BYTES          memory cap of one Lua state (engine default)\n"
"  --worker-memory MIB     RLIMIT_AS of a worker process (default 1024, 0 = none)\n"
"  --worker-cpu SEC        RLIMIT_CPU headroom of a worker (default 30, 0 = none)\n"
"  --max-line BYTES        longest request line (default 1048576)\n"
"  --max-connections N     (default 256)\n"
"  --max-inflight N        unanswered requests per connection before reading\n"
"                          pauses (default 1024)\n"
"  --max-write-queue BYTES unsent answers per connection before reading pauses\n"
"                          (default 8388608)\n"
"  --worker-queue N        requests handed to one worker at a time (default 16)\n"
"  --idle-timeout SEC      close connections idle this long (default 300, 0 = never)\n"
"Decision log:\n"
"  --log FILE              append one JSON line per evaluation (created 0600)\n"
"  --log-sync MODE         always (default): answer after fdatasync (group commit);\n"
"                          batch: answer after write, fdatasync every interval;\n"
"                          none: answer at once\n"
"  --log-sync-interval MS  batch mode period (default 1000)\n"
"  --log-facts             also log the facts as received (default: their sha256)\n"
"\n"
"Signals: SIGHUP reloads the protocols, SIGUSR1 reopens the log, SIGTERM and\n"
"SIGINT stop accepting, finish what is in flight, flush the log, remove the\n"
"socket and exit 0.\n"
"systemd: READY=1, RELOADING=1 then READY=1 on reload, STOPPING=1 ($NOTIFY_SOCKET);\n"
"log lines carry <3>/<4>/<6> priorities when stderr is the journal\n"
"($JOURNAL_STREAM); a socket passed by pathwise.socket ($LISTEN_FDS) is adopted\n"
"when it is bound to --socket (exit 78 when it is not), and left in place.\n"
"exit codes: 0 stopped cleanly, 64 usage, 66 no protocol file, 69 already\n"
"running, 71/73 system errors, 78 a protocol did not load or pass its examples\n"
"or a passed socket does not fit\n",
          SUN_PATH_MAX);
}

static int parse_u64(const char *s, uint64_t *v, int base) {
  char *end;
  if (!s || !*s || *s == '-') return -1;
  errno = 0;
  unsigned long long x = strtoull(s, &end, base);
  if (errno || *end) return -1;
  *v = x;
  return 0;
}

static int parse_ids(const char *arg, long *list, int *n) {
  char *copy = strdup(arg), *save = NULL;
  if (!copy) abort();
  for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    uint64_t v;
    if (parse_u64(t, &v, 10) != 0 || v > 0x7fffffff || *n >= MAX_ALLOW) {
      free(copy);
      return -1;
    }
    list[(*n)++] = (long)v;
  }
  free(copy);
  return 0;
}

static int default_workers(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

enum {
  O_SOCKET = 256, O_SOCKET_MODE, O_PROTOCOL, O_PROTOCOLS, O_PLUGIN, O_WORKERS, O_LOG,
  O_LOG_SYNC, O_LOG_INTERVAL, O_LOG_FACTS, O_TIMEOUT, O_GRACE, O_MAX_LINE, O_MAX_CONNS,
  O_IDLE, O_MAX_WQ, O_MAX_INFLIGHT, O_WORKER_QUEUE, O_MEMORY, O_INSTR, O_WORKER_MEM,
  O_WORKER_CPU, O_ALLOW_UID, O_ALLOW_GID, O_NO_WATCH, O_HELP
};

static int parse_opts(int argc, char **argv, opts *o) {
  static const struct option lo[] = {
    {"socket", required_argument, 0, O_SOCKET},
    {"socket-mode", required_argument, 0, O_SOCKET_MODE},
    {"protocol", required_argument, 0, O_PROTOCOL},
    {"protocols", required_argument, 0, O_PROTOCOLS},
    {"plugin", required_argument, 0, O_PLUGIN},
    {"workers", required_argument, 0, O_WORKERS},
    {"log", required_argument, 0, O_LOG},
    {"log-sync", required_argument, 0, O_LOG_SYNC},
    {"log-sync-interval", required_argument, 0, O_LOG_INTERVAL},
    {"log-facts", no_argument, 0, O_LOG_FACTS},
    {"timeout", required_argument, 0, O_TIMEOUT},
    {"grace", required_argument, 0, O_GRACE},
    {"max-line", required_argument, 0, O_MAX_LINE},
    {"max-connections", required_argument, 0, O_MAX_CONNS},
    {"idle-timeout", required_argument, 0, O_IDLE},
    {"max-write-queue", required_argument, 0, O_MAX_WQ},
    {"max-inflight", required_argument, 0, O_MAX_INFLIGHT},
    {"worker-queue", required_argument, 0, O_WORKER_QUEUE},
    {"memory", required_argument, 0, O_MEMORY},
    {"instructions", required_argument, 0, O_INSTR},
    {"worker-memory", required_argument, 0, O_WORKER_MEM},
    {"worker-cpu", required_argument, 0, O_WORKER_CPU},
    {"allow-uid", required_argument, 0, O_ALLOW_UID},
    {"allow-gid", required_argument, 0, O_ALLOW_GID},
    {"no-watch", no_argument, 0, O_NO_WATCH},
    {"help", no_argument, 0, O_HELP},
    {0, 0, 0, 0}
  };
  memset(o, 0, sizeof *o);
  o->socket_mode = 0660;
  o->log_sync = PW_LOG_ALWAYS;
  o->log_interval_ms = 1000;
  o->timeout_ms = 2000;
  o->grace_ms = 250;
  o->max_line = 1u << 20;
  o->max_conns = 256;
  o->idle_s = 300;
  o->max_wq = 8u << 20;
  o->max_inflight = 1024;
  o->worker_queue = 16;
  o->worker_as = 1024ull << 20;
  o->worker_cpu = 30;
  o->watch = 1;
  optind = 1;
  opterr = 0;
  for (;;) {
    int c = getopt_long(argc, argv, "h", lo, NULL);
    if (c == -1) break;
    uint64_t v = 0;
    const char *a = optarg;
    switch (c) {
      case 'h':
      case O_HELP: usage(stdout); return 1;
      case O_SOCKET: o->socket = a; break;
      case O_SOCKET_MODE:
        if (parse_u64(a, &v, 8) != 0 || v > 0777 || (v & 0600) != 0600) {
          say_err("--socket-mode: expected an octal mode that lets the owner read and write, "
              "such as 0660 or 0600; got '%s'", a);
          return -1;
        }
        o->socket_mode = (unsigned)v;
        break;
      case O_PROTOCOL:
        if (o->nprotocol_files >= 64) { say_err("--protocol: at most 64"); return -1; }
        o->protocol_files[o->nprotocol_files++] = a;
        break;
      case O_PROTOCOLS: o->protocols_dir = a; break;
      case O_PLUGIN:
        if (o->nplugins >= 64) { say_err("--plugin: at most 64"); return -1; }
        o->plugins[o->nplugins++] = a;
        break;
      case O_LOG: o->log_path = a; break;
      case O_LOG_SYNC:
        if (strcmp(a, "always") == 0) o->log_sync = PW_LOG_ALWAYS;
        else if (strcmp(a, "batch") == 0) o->log_sync = PW_LOG_BATCH;
        else if (strcmp(a, "none") == 0) o->log_sync = PW_LOG_NONE;
        else { say_err("--log-sync: expected always, batch or none; got '%s'", a); return -1; }
        break;
      case O_LOG_FACTS: o->log_facts = 1; break;
      case O_NO_WATCH: o->watch = 0; break;
      case O_ALLOW_UID:
        if (parse_ids(a, o->allow_uid, &o->nallow_uid) != 0) {
          say_err("--allow-uid: expected numeric uids separated by commas; got '%s'", a);
          return -1;
        }
        break;
      case O_ALLOW_GID:
        if (parse_ids(a, o->allow_gid, &o->nallow_gid) != 0) {
          say_err("--allow-gid: expected numeric gids separated by commas; got '%s'", a);
          return -1;
        }
        break;
      case '?':
        if (optopt) say_err("option -%c: unknown or missing its value (see --help)", optopt);
        else say_err("%s: unknown option or missing value (see --help)", argv[optind - 1]);
        return -1;
      default: {
        if (parse_u64(a, &v, 10) != 0) {
          say_err("%s: expected a non-negative integer; got '%s'", argv[optind - 1], a);
          return -1;
        }
        int bad = 0;
        switch (c) {
          case O_WORKERS: bad = v < 1 || v > 256; o->workers = (int)v; break;
          case O_LOG_INTERVAL: bad = v < 1 || v > 3600000; o->log_interval_ms = (unsigned)v; break;
          case O_TIMEOUT: bad = v < 1 || v > 3600000; o->timeout_ms = (unsigned)v; break;
          case O_GRACE: bad = v > 600000; o->grace_ms = (unsigned)v; break;
          case O_MAX_LINE: bad = v < 1024 || v > (256u << 20); o->max_line = (size_t)v; break;
          case O_MAX_CONNS: bad = v < 1 || v > 100000; o->max_conns = (unsigned)v; break;
          case O_IDLE: bad = v > 86400 * 7; o->idle_s = (unsigned)v; break;
          case O_MAX_WQ: bad = v < 65536; o->max_wq = (size_t)v; break;
          case O_MAX_INFLIGHT: bad = v < 1 || v > 1000000; o->max_inflight = (unsigned)v; break;
          case O_WORKER_QUEUE: bad = v < 1 || v > 100000; o->worker_queue = (unsigned)v; break;
          case O_MEMORY: bad = v < 65536; o->memory = (size_t)v; break;
          case O_INSTR: o->instructions = v; break;
          case O_WORKER_MEM: bad = v > (1u << 22); o->worker_as = v << 20; break;
          case O_WORKER_CPU: o->worker_cpu = v; break;
          default: bad = 1;
        }
        if (bad) {
          say_err("%s: %s is out of range (see --help)", argv[optind - 1], a);
          return -1;
        }
      }
    }
  }
  if (optind < argc) {
    say_err("unexpected argument '%s' (see --help)", argv[optind]);
    return -1;
  }
  if (!o->socket) {
    say_err("--socket PATH is required (see --help)");
    return -1;
  }
  if (o->protocols_dir && o->nprotocol_files) {
    say_err("give --protocol FILE or --protocols DIR, not both");
    return -1;
  }
  if (!o->protocols_dir && !o->nprotocol_files)
    o->protocol_files[o->nprotocol_files++] = pw_cmd_default_protocol();
  if (!o->workers) o->workers = default_workers();
  if (o->worker_as && o->memory && o->worker_as < o->memory * 2 + (64u << 20)) {
    say_err("--worker-memory must leave room for --memory (at least twice it plus 64 MiB)");
    return -1;
  }
  return 0;
}

/* }====== */

int pw_serve_main(int argc, char **argv) {
  srv *s = calloc(1, sizeof *s);
  if (!s) return PW_EX_OSERR;
  int rc = parse_opts(argc, argv, &s->o);
  if (rc != 0) {
    free(s);
    return rc > 0 ? PW_EX_OK : PW_EX_USAGE;
  }
  signal(SIGPIPE, SIG_IGN);
  s->lock_fd = -1;
  /* the workers' decode uses the gate's default depth and width too, so a
  ** line is judged the same here and there */
  s->gate.max_bytes = s->o.max_line;
  s->gate.max_depth = 0;
  s->gate.max_members = 0;
  s->stall_ms = s->o.timeout_ms / 10;
  if (s->stall_ms < 10) s->stall_ms = 10;
  if (s->stall_ms > 200) s->stall_ms = 200;
  char sd_err[400];
  s->activated_fd = pw_sd_listen_fd(s->o.socket, sd_err, sizeof sd_err);
  if (s->activated_fd < 0) {
    say_err("%s", sd_err);
    free(s);
    return PW_EX_CONFIG;
  }
  if (s->activated_fd > 0) say("socket activation: serving %s on the socket from systemd", s->o.socket);
  rc = s->activated_fd > 0 ? 0 : sock_prepare(s);
  if (rc != 0) {
    if (s->lock_fd >= 0) close(s->lock_fd);
    free(s);
    return rc;
  }
  s->loop = uv_default_loop();
  s->start_ms = uv_now(s->loop);
  pw_rules_json(&s->rules_json);
  pw_buf_add(&s->rules_json, "", 0);
  if (s->o.log_path) {
    pw_declog_opts lo;
    char note[1024];
    memset(&lo, 0, sizeof lo);
    lo.path = s->o.log_path;
    lo.sync = s->o.log_sync;
    lo.interval_ms = s->o.log_interval_ms;
    lo.cb = on_log_done;
    lo.note = on_log_note;
    lo.arg = s;
    s->log = pw_declog_open(s->loop, &lo, note, sizeof note);
    if (!s->log) {
      say_err("cannot open the decision log: %s", note);
      close(s->lock_fd);
      free(s);
      return PW_EX_CANTCREAT;
    }
    if (note[0]) say_warn("decision log: %s", note);
  }
  uv_check_init(s->loop, &s->check);
  s->check.data = s;
  uv_check_start(&s->check, on_check);
  uv_idle_init(s->loop, &s->idle);
  s->idle.data = s;
  uv_timer_init(s->loop, &s->tick);
  s->tick.data = s;
  uint64_t period = s->o.grace_ms / 4;
  if (period < 10) period = 10;
  if (period > 100) period = 100;
  uv_timer_start(&s->tick, on_tick, period, period);
  uv_timer_init(s->loop, &s->debounce);
  s->debounce.data = s;
  uv_timer_init(s->loop, &s->stop_timer);
  s->stop_timer.data = s;
  struct { uv_signal_t *h; int sig; } sigs[] = {
    {&s->sig_term, SIGTERM}, {&s->sig_int, SIGINT}, {&s->sig_hup, SIGHUP},
    {&s->sig_usr1, SIGUSR1}};
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
    uv_signal_init(s->loop, sigs[i].h);
    sigs[i].h->data = s;
    uv_signal_start(sigs[i].h, on_signal, sigs[i].sig);
  }
  uv_signal_init(s->loop, &s->sig_chld);
  s->sig_chld.data = s;
  uv_signal_start(&s->sig_chld, on_sigchld, SIGCHLD);

  reload_start(s, "start", NULL, NULL, 0);
  if (!s->stopping) start_watching(s);
  uv_run(s->loop, UV_RUN_DEFAULT);

  sock_unlink(s);
  if (s->log) {   /* never got as far as finish() */
    char err[300];
    pw_declog_close(s->log, err, sizeof err);
    s->log = NULL;
    uv_run(s->loop, UV_RUN_DEFAULT);
  }
  if (uv_loop_close(s->loop) != 0) {
    uv_walk(s->loop, walk_close, NULL);
    uv_run(s->loop, UV_RUN_DEFAULT);
    uv_loop_close(s->loop);
  }
  if (s->lock_fd >= 0) close(s->lock_fd);
  while (s->gens) {   /* their timers were closed with the loop */
    gen *g = s->gens;
    s->gens = g->gnext;
    gen_release(g);
  }
  int code = s->exit_code;
  if (!code) say("stopped");
  pw_buf_free(&s->rules_json);
  for (int i = 0; i < s->npst; i++) free(s->pst[i].id);
  free(s->pst);
  free(s);
  return code;
}
