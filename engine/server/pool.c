/*
** pool.c: the worker processes, seen from the supervisor.
**
** Requests go to the least loaded ready worker of the active generation
** (at most --worker-queue each); when none can take one it waits in
** srv.pending, in arrival order. Frames go out through each worker's
** output queue (written once per loop iteration) and answers come back in
** the order sent (an answer's payload inline, or in the worker's shared
** ring: ring_answer); each answer goes on to answer.c.
**
** Losing a worker (it died, its channel failed, or the watchdog killed it)
** is one path, pw_pool_lost: the request it was evaluating (known from the
** shared slot) is answered with an error, the others it held go back to
** the front of srv.pending once, and the generation replaces it (with a
** backoff when workers keep dying young) or, if it was still loading,
** fails. The watchdog (each tick) kills a worker whose evaluation runs
** past deadline + grace or that makes no progress, moves what waits
** behind a stalled worker to the others, and answers what waited too long.
*/
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "supervisor.h"

static void on_respawn(uv_timer_t *t);

static req *req_of(pw_qlink *l) { return l ? PW_QITEM(l, req, link) : NULL; }

/* ==================================================================== */
/* {====== handing requests out                                         */

/* A worker holding requests that has answered none for a while (a slow or
** stuck evaluation, a stopped process) gets no more until it answers, so
** one bad evaluation delays only what was already queued behind it. */
static worker *pick_worker(srv *s) {
  generation *g = s->active;
  worker *best = NULL;
  if (!g) return NULL;
  uint64_t now = pw_worker_now_ns(), stall = SRV_MS(s->stall_ms);
  for (int i = 0; i < g->nw; i++) {
    worker *w = g->w[i];
    if (!w || w->state != W_READY || w->sent.n >= s->o.worker_queue) continue;
    if (w->sent.n && now - w->progress_ns > stall) continue;
    if (!best || w->sent.n < best->sent.n) best = w;
  }
  return best;
}

static void worker_dirty(worker *w) {
  if (w->dirty) return;
  w->dirty = 1;
  w->dnext = w->s->dworkers;
  w->s->dworkers = w;
  pw_serve_wake(w->s);
}

static void worker_send(worker *w, req *r) {
  pw_wire_hdr h;
  memset(&h, 0, sizeof h);
  h.len = r->len;
  h.kind = PW_WIRE_REQ;
  h.method = (int16_t)r->method;
  h.tag = r->tag;
  h.deadline_ns = r->deadline;
  pw_buf_add(&w->out.buf, (const char *)&h, sizeof h);
  pw_buf_add(&w->out.buf, r->line, r->len);
  if (!w->sent.n) w->progress_ns = pw_worker_now_ns();
  pw_queue_push(&w->sent, &r->link);
  worker_dirty(w);
}

void pw_pool_drain(srv *s) {
  req *r;
  while ((r = req_of(s->pending.head))) {
    if (r->answered) {
      pw_queue_pop(&s->pending);
      pw_req_free(r);
      continue;
    }
    worker *w = pick_worker(s);
    if (!w) return;
    pw_queue_pop(&s->pending);
    worker_send(w, r);
  }
}

void pw_pool_dispatch(srv *s, req *r) {
  if (!s->pending.n) {
    worker *w = pick_worker(s);
    if (w) {
      worker_send(w, r);
      return;
    }
  }
  pw_queue_push(&s->pending, &r->link);
}

/* }====== */

/* ==================================================================== */
/* {====== the channel                                                  */

static void worker_maybe_free(worker *w) {
  if (!w->reaped || w->ch_open) return;
  srv *s = w->s;
  generation *g = w->g;
  worker **pp = &s->workers;
  while (*pp && *pp != w) pp = &(*pp)->anext;
  if (*pp) *pp = w->anext;
  /* a retired worker of a draining generation is still in g->w: shutdown
  ** (serve.c finish) walks it */
  if (w->idx >= 0 && w->idx < g->nw && g->w[w->idx] == w) g->w[w->idx] = NULL;
  munmap(w->slot, sizeof *w->slot);
  if (w->ring) munmap(w->ring, sizeof *w->ring);
  pw_buf_free(&w->scratch);
  pw_buf_free(&w->out.buf);
  free(w->rb);
  free(w);
  g->alive--;
  pw_reload_collect(g);
  pw_serve_maybe_finish(s);
}

static void on_ch_closed(uv_handle_t *h) {
  worker *w = h->data;
  w->ch_open = 0;
  worker_maybe_free(w);
}

static void ch_close(worker *w) {
  if (!w->ch_open) return;
  uv_read_stop((uv_stream_t *)&w->ch);
  uv_close((uv_handle_t *)&w->ch, on_ch_closed);
}

static void worker_write_done(void *owner, int status) {
  worker *w = owner;
  if (w->lost || w->retiring) return;
  if (status < 0) {
    pw_pool_lost(w, "its channel failed");
    return;
  }
  if (w->out.buf.len) pw_pool_flush(w);
}

void pw_pool_flush(worker *w) {
  if (w->lost || !w->ch_open) return;
  if (pw_outq_flush(&w->out, (uv_stream_t *)&w->ch, w, worker_write_done) != 0)
    pw_pool_lost(w, "its channel failed");
}

void pw_pool_retire(worker *w) {
  if (w->retiring || w->lost) return;
  w->retiring = 1;
  ch_close(w);   /* EOF: the worker exits */
}

void pw_pool_end(generation *g) {
  for (int i = 0; i < g->nw; i++) {
    worker *w = g->w[i];
    if (!w) continue;
    g->w[i] = NULL;
    if (!w->lost) {
      w->retiring = 1;   /* not a crash: we end it */
      if (!w->reaped) kill(w->pid, SIGKILL);
      ch_close(w);
    }
  }
}

/* }====== */

/* ==================================================================== */
/* {====== losing a worker                                              */

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

/* Make sure w is dead, and say how it ended. */
static void lost_describe(worker *w, const char *why, char *desc, size_t n) {
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
  if (w->killed) snprintf(desc, n, "%s", why);
  else if (w->reaped) describe_status(w->status, desc, n);
  else snprintf(desc, n, "died (%s)", why);   /* status logged when reaped */
}

/* The request w was evaluating (tag running), a request already retried
** once and one past its deadline are answered with an error; the others
** go back to the front of srv.pending, in order. */
static void lost_requests(worker *w, uint64_t running, const char *desc, uint64_t now) {
  srv *s = w->s;
  pw_queue sent = pw_queue_take(&w->sent), back = {0};
  req *r;
  while ((r = req_of(pw_queue_pop(&sent)))) {
    if (r->answered) {
      pw_req_free(r);
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
      if (r->tag == running) pw_answer_log_lost(s, w->g, r, code, msg);
      pw_req_fail(s, r, code, msg);
      pw_req_free(r);
    } else {
      r->retries++;
      pw_queue_push(&back, &r->link);
    }
  }
  pw_queue_push_front(&s->pending, &back);
}

/* What w's loss means for its generation: a loading one fails, an active
** one replaces it, after a backoff while workers keep dying young. */
static void lost_replace(worker *w, const char *desc, uint64_t now) {
  generation *g = w->g;
  if (g->w[w->idx] == w) g->w[w->idx] = NULL;
  if (g->state == GEN_LOADING) {
    char msg[300];
    snprintf(msg, sizeof msg, "a new worker %s while loading the protocols", desc);
    pw_reload_fail(g, msg);
  } else if (g->state == GEN_ACTIVE && !w->s->stopping) {
    uint64_t lived_ms = (now - w->spawned_ns) / 1000000u;
    if (lived_ms < 1000) g->backoff_ms = g->backoff_ms ? g->backoff_ms * 2 : 100;
    else g->backoff_ms = 0;
    if (g->backoff_ms > 5000) g->backoff_ms = 5000;
    if (!g->backoff_ms) pw_pool_spawn(g);
    else uv_timer_start(&g->respawn, on_respawn, g->backoff_ms, 0);
  }
}

void pw_pool_lost(worker *w, const char *why) {
  if (w->lost || w->retiring) return;
  srv *s = w->s;
  generation *g = w->g;
  char desc[160];
  w->lost = 1;
  lost_describe(w, why, desc, sizeof desc);
  ch_close(w);
  uint64_t running = atomic_load_explicit(&w->slot->tag, memory_order_acquire);
  if (w->state == W_READY) g->nready--;
  w->state = W_LOST;
  if (w->killed) s->w_kills++;
  else s->w_crashes++;
  pw_stats_worker_lost(w);
  if (g->state != GEN_DRAINING || w->sent.n)
    pw_serve_warn("worker %d (pid %d, generation %u) %s", w->idx, (int)w->pid, g->num, desc);
  uint64_t now = pw_worker_now_ns();
  lost_requests(w, running, desc, now);
  lost_replace(w, desc, now);
  pw_pool_drain(s);
  pw_serve_maybe_finish(s);
}

/* }====== */

/* ==================================================================== */
/* {====== frames from a worker                                         */

/* A response frame from w: it answers the oldest request w holds. */
static void worker_answer(worker *w, const pw_wire_hdr *h, const char *p) {
  srv *s = w->s;
  generation *g = w->g;
  req *r = req_of(w->sent.head);
  if (!r || r->tag != h->tag) {
    pw_pool_lost(w, "answered out of order (killed)");
    return;
  }
  pw_queue_pop(&w->sent);
  w->progress_ns = pw_worker_now_ns();
  if (h->engine >= 0 && h->engine < g->nstat_idx && g->stat_idx[h->engine] >= 0) {
    proto_stat *ps = &s->proto_stats[g->stat_idx[h->engine]];
    ps->evaluations++;
    if (h->code) ps->errors++;
  }
  pw_stats_worker_answer(w, h->code);
  pw_answer_response(s, r, h, p);
}

/* A PW_WIRE_RESP_RING header: its payload is in w's ring. Checked against
** the supervisor's own tail first; answered from the ring (answer.c only
** copies it), or from a private copy for an HTTP client (httpd.c parses the
** line, and the worker could change ring bytes meanwhile). Then the space
** is the worker's again. */
static void ring_answer(worker *w, const pw_wire_hdr *h) {
  uint64_t pos = h->ring_pos, n = h->ring_len, at = pos % PW_RING_BYTES;
  if (!w->ring || pos < w->ring_tail || pos - w->ring_tail >= PW_RING_BYTES || n < PW_RING_MIN ||
      at + n > PW_RING_BYTES || pos + n - w->ring_tail > PW_RING_BYTES) {
    pw_pool_lost(w, "sent a malformed ring frame (killed)");
    return;
  }
  pw_wire_hdr hh = *h;
  hh.kind = PW_WIRE_RESP;
  hh.len = (uint32_t)n;
  const char *p = w->ring->data + at;
  req *r = req_of(w->sent.head);
  if (r && r->c->http) {
    pw_buf_reset(&w->scratch);
    pw_buf_add(&w->scratch, p, n);
    if (w->scratch.failed) {
      pw_pool_lost(w, "out of memory for its answer (killed)");
      return;
    }
    p = w->scratch.data;
  }
  w->s->ring_answers++;
  worker_answer(w, &hh, p);
  w->ring_tail = pos + n;
  atomic_store_explicit(&w->ring->tail, w->ring_tail, memory_order_release);
  if (w->scratch.cap > (1u << 20)) pw_buf_free(&w->scratch);
}

/* The READY payload: the protocols as a JSON array line, then one id per
** line, in engine order (pw_rpc_ready_payload). */
static void ready_protocols(generation *g, const char *p, size_t n) {
  const char *nl = memchr(p, '\n', n);
  size_t jl = nl ? (size_t)(nl - p) : n;
  g->protocols_json = malloc(jl + 1);
  if (!g->protocols_json) return;   /* the next READY tries again */
  memcpy(g->protocols_json, p, jl);
  g->protocols_json[jl] = '\0';
  g->nstat_idx = 0;
  g->stat_idx = calloc((size_t)g->nprotos + 1, sizeof *g->stat_idx);
  if (!g->stat_idx) return;         /* no per-protocol counters: still serving */
  const char *q = nl ? nl + 1 : p + n, *end = p + n;
  while (q < end && g->nstat_idx <= g->nprotos && *q != '=' && *q != '@') {
    const char *e = memchr(q, '\n', (size_t)(end - q));
    if (!e) e = end;
    char id[256];
    size_t il = (size_t)(e - q);
    if (il >= sizeof id) il = sizeof id - 1;
    memcpy(id, q, il);
    id[il] = '\0';
    g->stat_idx[g->nstat_idx++] = pw_stats_protocol(g->s, id);
    q = e + 1;
  }
}

static void worker_ready(worker *w, const char *p, size_t n) {
  generation *g = w->g;
  w->state = W_READY;
  g->nready++;
  g->backoff_ms = g->backoff_ms > 100 ? g->backoff_ms / 2 : 0;
  if (!g->protocols_json) {
    ready_protocols(g, p, n);
    pw_reloadlog_ready(g, p, n);   /* provenance and base files (after the ids) */
  }
  if (g->state == GEN_LOADING && g->nready == g->nw) pw_reload_activate(g);
  else if (g->state == GEN_ACTIVE) pw_pool_drain(w->s);
}

/* One whole frame; 0 to go on reading w, -1 once w is gone. */
static int worker_frame(worker *w, const pw_wire_hdr *h, const char *p) {
  switch (h->kind) {
    case PW_WIRE_RESP: worker_answer(w, h, p); break;
    case PW_WIRE_RESP_RING: ring_answer(w, h); break;
    case PW_WIRE_READY: worker_ready(w, p, h->len); break;
    case PW_WIRE_FAIL: {
      char *msg = strndup(p, h->len);   /* whole: every failing case */
      const char *m = msg ? msg : "could not load the protocols (out of memory for the reason)";
      if (w->g->state == GEN_LOADING) {
        pw_reload_fail(w->g, m);
      } else {
        pw_serve_warn("worker %d could not load the protocols: %s", w->idx, m);
        pw_pool_lost(w, "could not load the protocols");
      }
      free(msg);
      return -1;
    }
    default: pw_pool_lost(w, "sent an unknown frame (killed)"); return -1;
  }
  return w->lost || w->retiring ? -1 : 0;
}

static void worker_alloc(uv_handle_t *h, size_t sug, uv_buf_t *b) {
  worker *w = h->data;
  (void)sug;
  if (w->rcap - w->rlen < 65536) {
    size_t ncap = w->rcap ? w->rcap * 2 : 262144;
    char *nb = realloc(w->rb, ncap);
    if (!nb) {   /* libuv reports UV_ENOBUFS: worker_read drops the worker */
      b->base = NULL;
      b->len = 0;
      return;
    }
    w->rb = nb;
    w->rcap = ncap;
  }
  b->base = w->rb + w->rlen;
  b->len = w->rcap - w->rlen;
}

static void worker_shift(worker *w, size_t pos) {   /* drop pos bytes read */
  if (!pos) return;
  memmove(w->rb, w->rb + pos, w->rlen - pos);
  w->rlen -= pos;
}

static void worker_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  worker *w = st->data;
  srv *s = w->s;
  (void)b;
  if (n == 0) return;
  if (n < 0) {
    pw_pool_lost(w, n == UV_EOF ? "closed its channel" : "channel read failed");
    return;
  }
  w->rlen += (size_t)n;
  size_t pos = 0;
  while (w->rlen - pos >= PW_WIRE_HDR) {
    pw_wire_hdr h;
    memcpy(&h, w->rb + pos, sizeof h);
    if (h.len > PW_WIRE_MAX_RESP(s->o.max_line)) {
      pw_pool_lost(w, "sent a malformed frame (killed)");
      return;
    }
    if (w->rlen - pos - PW_WIRE_HDR < h.len) {   /* make room for all of it */
      size_t need = PW_WIRE_HDR + (size_t)h.len + 65536;
      if (need > w->rcap) {
        worker_shift(w, pos);
        pos = 0;
        char *nb = realloc(w->rb, need);
        if (!nb) {
          pw_pool_lost(w, "out of memory for its answer (killed)");
          return;
        }
        w->rb = nb;
        w->rcap = need;
      }
      break;
    }
    if (worker_frame(w, &h, w->rb + pos + PW_WIRE_HDR) != 0) return;
    pos += PW_WIRE_HDR + (size_t)h.len;
  }
  worker_shift(w, pos);
  if (w->rcap > (4u << 20) && w->rlen < 65536) {   /* a large frame grew it */
    char *nb = realloc(w->rb, 262144);
    if (nb) {
      w->rb = nb;
      w->rcap = 262144;
    }
  }
  if (w->g->state == GEN_DRAINING && !w->sent.n) pw_pool_retire(w);
  else if (s->pending.n) pw_pool_drain(s);
}

/* }====== */

/* ==================================================================== */
/* {====== starting and reaping                                         */

static worker *worker_start(generation *g, int idx, int check) {
  srv *s = g->s;
  worker *w = calloc(1, sizeof *w);
  if (!w) return NULL;
  w->slot = mmap(NULL, sizeof *w->slot, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                 -1, 0);
  if (w->slot == MAP_FAILED) {
    free(w);
    return NULL;
  }
  w->ring = mmap(NULL, sizeof *w->ring, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                 -1, 0);
  if (w->ring == MAP_FAILED) w->ring = NULL;   /* answers go inline */
  w->s = s;
  w->g = g;
  w->idx = idx;
  g->wcfg.rpc.check_examples = check;
  int fd = -1;
  w->pid = pw_worker_spawn(&g->wcfg, w->slot, w->ring, &fd);
  if (w->pid < 0) {
    pw_serve_err("cannot fork a worker: %s", strerror(errno));
    munmap(w->slot, sizeof *w->slot);
    if (w->ring) munmap(w->ring, sizeof *w->ring);
    free(w);
    return NULL;
  }
  /* its ring holds patient data: the workers forked later must not share it */
  if (w->ring) (void)madvise(w->ring, sizeof *w->ring, MADV_DONTFORK);
  s->w_spawns++;
  w->spawned_ns = w->progress_ns = pw_worker_now_ns();
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

/* A loading generation's workers run the protocols' examples check
** (pw_engine_check_examples, via rpc.c) before they say READY; the
** replacements of an active one load the same sources without it. */
void pw_pool_spawn(generation *g) {
  srv *s = g->s;
  if (s->stopping || g->state == GEN_DRAINING) return;
  for (int i = 0; i < g->nw; i++) {
    if (g->w[i]) continue;
    g->w[i] = worker_start(g, i, g->state == GEN_LOADING);
    if (!g->w[i]) {
      if (g->state == GEN_LOADING) {
        pw_reload_fail(g, "cannot start a worker process");
        return;
      }
      uv_timer_start(&g->respawn, on_respawn, 1000, 0);
    }
  }
}

static void on_respawn(uv_timer_t *t) {
  generation *g = t->data;
  pw_pool_spawn(g);
}

void pw_pool_on_sigchld(uv_signal_t *h, int sig) {
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
      char d[160];
      describe_status(st, d, sizeof d);
      if (w->lost && !w->killed && !w->retiring) pw_serve_warn("worker pid %d: %s", (int)p, d);
      if (!w->lost && !w->retiring) pw_pool_lost(w, d);
      worker_maybe_free(w);
      break;
    }
  }
}

/* }====== */

/* ==================================================================== */
/* {====== the watchdog                                                 */

/* Kill w if one evaluation ran, or w made no progress, past deadline +
** grace. Returns 1 if it did. */
static int watch_kill(srv *s, worker *w, uint64_t running, uint64_t now) {
  uint64_t limit = SRV_HARD_NS(s);
  uint64_t since = atomic_load_explicit(&w->slot->since_ns, memory_order_relaxed);
  int stuck = running && since && now > since && now - since > limit;
  /* progress_ns may be later than now: watch_move gave w work this tick */
  int stalled = w->sent.n && now > w->progress_ns && now - w->progress_ns > limit;
  if (!stuck && !stalled) return 0;
  w->killed = 1;
  kill(w->pid, SIGKILL);
  char why[160];
  snprintf(why, sizeof why, "was killed: %s for more than %u+%u ms",
           stuck ? "one evaluation ran" : "it made no progress", s->o.timeout_ms,
           s->o.grace_ms);
  pw_pool_lost(w, why);
  return 1;
}

/* Move what waits behind a stalled worker to the others: evaluation is a
** pure function and only this process logs, so the stalled worker's late
** answers for them are simply dropped. */
static void watch_move(srv *s, worker *w, uint64_t running) {
  for (pw_qlink *l = w->sent.head; l; l = l->next) {
    req *r = req_of(l);
    if (r->answered || r->tag == running) continue;
    req *cl = malloc(sizeof *cl + r->len);
    if (!cl) continue;    /* stays behind the stalled worker: its deadline answers */
    memcpy(cl, r, sizeof *cl + r->len);
    cl->link.next = NULL;
    cl->tag = ++s->tag_seq;
    r->answered = 1;      /* its answer is the clone's now: no inflight change */
    r->c->refs++;
    s->moved++;
    pw_pool_dispatch(s, cl);
  }
}

/* Answer requests that waited too long behind others (overload). */
static void watch_expire(srv *s, worker *w, uint64_t running, uint64_t now) {
  for (pw_qlink *l = w->sent.head; l; l = l->next) {
    req *r = req_of(l);
    if (now < r->deadline + SRV_MS(s->o.grace_ms)) break;
    if (!r->answered && r->tag != running) {
      char msg[200];
      snprintf(msg, sizeof msg, "no answer within the deadline (%u ms)", s->o.timeout_ms);
      pw_req_fail(s, r, PW_RPC_DEADLINE, msg);
    }
  }
}

void pw_pool_watchdog(srv *s, uint64_t now) {
  for (worker *w = s->workers; w; w = w->anext) {
    if (w->lost || w->retiring || w->state == W_STARTING) continue;
    uint64_t running = atomic_load_explicit(&w->slot->tag, memory_order_acquire);
    if (watch_kill(s, w, running, now)) continue;
    if (w->sent.n && now > w->progress_ns && now - w->progress_ns > SRV_MS(s->stall_ms))
      watch_move(s, w, running);
    watch_expire(s, w, running, now);
  }
  req *r;
  while ((r = req_of(s->pending.head)) && (r->answered || now >= r->deadline)) {
    pw_queue_pop(&s->pending);
    if (!r->answered) {
      char msg[200];
      snprintf(msg, sizeof msg, "no worker was free before the deadline (%u ms)%s",
               s->o.timeout_ms, s->active ? "" : "; the protocols are still loading");
      pw_req_fail(s, r, PW_RPC_DEADLINE, msg);
    }
    pw_req_free(r);
  }
}

/* }====== */
