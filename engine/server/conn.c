/*
** conn.c: client connections: accepting, reading and framing request
** lines, backpressure, and the one write path every stream uses.
**
** Input: bytes accumulate in c->rb; each complete line goes to
** pw_request_line (request.c). Reading pauses while a connection has
** --max-inflight unanswered requests or --max-write-queue unsent bytes,
** and resumes at half of each. Output: answers are appended to c->out and
** written once per loop iteration (serve.c's check handle calls
** pw_conn_flush). A connection that half-closed is closed once every
** request it sent has been answered and written.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "supervisor.h"

static void conn_process(conn *c);
static void conn_line_clock(conn *c);
static size_t conn_unsent(const conn *c) { return c->out.buf.len + c->out.queued; }
static void conn_alloc(uv_handle_t *h, size_t sug, uv_buf_t *b);
static void conn_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b);

/* ==================================================================== */
/* {====== the write path (connections and worker channels)             */

typedef struct outq_write {
  uv_write_t req;
  pw_outq *o;
  void *owner;
  pw_outq_done done;
  char *data;
  size_t len;
} outq_write;

static void outq_write_cb(uv_write_t *w, int status) {
  outq_write *ow = (outq_write *)w;
  ow->o->queued -= ow->len;
  free(ow->data);
  pw_outq_done done = ow->done;
  void *owner = ow->owner;
  free(ow);
  done(owner, status);
}

/* Write at once what the socket takes; hand the rest, buffer and all, to
** one uv_write. Nothing is written while an earlier write is queued. */
int pw_outq_flush(pw_outq *o, uv_stream_t *st, void *owner, pw_outq_done done) {
  if (!o->buf.len || o->queued) return 0;
  uv_buf_t b = uv_buf_init(o->buf.data, (unsigned)o->buf.len);
  int n = uv_try_write(st, &b, 1);
  if (n == UV_EAGAIN) n = 0;
  if (n < 0) return PW_OUTQ_GONE;
  if ((size_t)n == o->buf.len) {
    pw_buf_reset(&o->buf);
    return 0;
  }
  outq_write *ow = malloc(sizeof *ow);
  if (!ow) return PW_OUTQ_GONE;   /* out of memory: close this one peer */
  ow->o = o;
  ow->owner = owner;
  ow->done = done;
  ow->len = o->buf.len - (size_t)n;
  if (n) memmove(o->buf.data, o->buf.data + n, ow->len);
  ow->data = o->buf.data;          /* hand the buffer over */
  memset(&o->buf, 0, sizeof o->buf);
  uv_buf_t wb = uv_buf_init(ow->data, (unsigned)ow->len);
  o->queued += ow->len;
  if (uv_write(&ow->req, st, &wb, 1, outq_write_cb) != 0) {
    o->queued -= ow->len;
    free(ow->data);
    free(ow);
    return PW_OUTQ_FAILED;
  }
  return 0;
}

/* }====== */

/* ==================================================================== */
/* {====== connections: output and lifetime                             */

void pw_conn_dirty(conn *c) {
  if (c->dirty || c->closing) return;
  c->dirty = 1;
  c->dnext = c->s->dconns;
  c->s->dconns = c;
  pw_serve_wake(c->s);
}

void pw_conn_send(conn *c, const char *p, size_t n) {
  if (c->closing) return;
  if (c->http) {
    pw_httpd_answer(c, p, n);
    return;
  }
  pw_buf_add(&c->out.buf, p, n);
  pw_conn_dirty(c);
}

void pw_conn_error(conn *c, const char *id, size_t idlen, int code, const char *msg) {
  pw_stats_error(c->s, code);
  if (c->closing) return;
  if (c->http) {
    pw_httpd_error(c, code, msg);
    return;
  }
  pw_rpc_error_line(&c->out.buf, id, idlen, code, msg);
  pw_conn_dirty(c);
}

void pw_conn_result_head(conn *c, const char *id, size_t idlen) {
  pw_buf_adds(&c->out.buf, "{\"jsonrpc\":\"2.0\",\"id\":");
  pw_buf_add(&c->out.buf, id, idlen);
  pw_buf_adds(&c->out.buf, ",\"result\":");
}

static void conn_maybe_free(conn *c) {
  if (!c->closed || c->refs) return;
  srv *s = c->s;
  if (c->prev) c->prev->next = c->next;
  else s->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  free(c->rb);
  pw_buf_free(&c->out.buf);
  pw_http_conn_free(c->http);
  free(c);
  pw_serve_maybe_finish(s);
}

void pw_conn_unref(conn *c) {
  c->refs--;
  if (c->closing) conn_maybe_free(c);
  else pw_conn_check(c);
}

static void on_conn_closed(uv_handle_t *h) {
  conn *c = h->data;
  c->closed = 1;
  conn_maybe_free(c);
}

void pw_conn_close(conn *c) {
  if (c->closing) return;
  c->closing = 1;
  c->s->nconns--;
  pw_buf_free(&c->out.buf);
  uv_close((uv_handle_t *)&c->h, on_conn_closed);
}

static void conn_resume(conn *c) {
  srv *s = c->s;
  if (!c->paused || c->closing) return;
  if (c->inflight > s->o.max_inflight / 2 || conn_unsent(c) > s->o.max_wq / 2) return;
  c->paused = 0;
  conn_process(c);
  if (!c->paused && !c->closing && !c->eof && !s->stopping)
    uv_read_start((uv_stream_t *)&c->h, conn_alloc, conn_read);
}

/* after every change: close a finished half-closed connection, resume */
void pw_conn_check(conn *c) {
  if (c->closing) return;
  if ((c->eof || c->close_after_flush) && !c->inflight && !c->out.buf.len && !c->out.queued) {
    pw_conn_close(c);
    return;
  }
  if (c->paused) conn_resume(c);
}

static void conn_write_done(void *owner, int status) {
  conn *c = owner;
  if (c->closing) return;
  if (status < 0) {
    c->s->client_gone++;
    pw_conn_close(c);
    return;
  }
  if (c->out.buf.len) pw_conn_flush(c);
  else pw_conn_check(c);
}

void pw_conn_flush(conn *c) {
  if (c->closing) return;
  int rc = pw_outq_flush(&c->out, (uv_stream_t *)&c->h, c, conn_write_done);
  if (rc != 0) {
    if (rc == PW_OUTQ_GONE) c->s->client_gone++;
    pw_conn_close(c);
    return;
  }
  if (c->out.buf.cap > 1u << 20 && !c->out.buf.len) pw_buf_free(&c->out.buf);
  pw_conn_check(c);
}

/* }====== */

/* ==================================================================== */
/* {====== connections: input                                           */

void pw_conn_pause(conn *c) {
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
  pw_conn_error(c, NULL, 0, PW_RPC_TOO_LARGE, msg);
  c->close_after_flush = 1;
  c->rlen = c->rpos = c->scan = 0;
  pw_conn_pause(c);
}

static void conn_process(conn *c) {
  srv *s = c->s;
  if (c->http) pw_httpd_process(c);
  else while (!c->closing && !c->paused && !c->close_after_flush) {
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
    c->line_ms = 0;   /* a whole line came: the partial-line clock restarts */
    pw_request_line(c, start, len);
    if (c->inflight >= s->o.max_inflight || conn_unsent(c) >= s->o.max_wq) pw_conn_pause(c);
  }
  if (c->rpos && !c->closing) {
    memmove(c->rb, c->rb + c->rpos, c->rlen - c->rpos);
    c->rlen -= c->rpos;
    c->scan -= c->rpos;
    c->rpos = 0;
  }
  conn_line_clock(c);
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
    if (!nb) {   /* libuv reports UV_ENOBUFS: conn_read closes this connection */
      b->base = NULL;
      b->len = 0;
      return;
    }
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
      if (!c->http && !c->paused && !c->close_after_flush && c->rlen > c->rpos &&
          c->rlen - c->rpos <= c->s->o.max_line) {
        /* EOF ends a last line sent without its newline */
        size_t at = c->rpos, len = c->rlen - c->rpos;
        c->rpos = c->scan = c->rlen;
        pw_request_line(c, c->rb + at, len);
      }
      c->eof = 1;
      pw_conn_check(c);
    } else {
      c->s->client_gone++;
      pw_conn_close(c);
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

/* Refuse c with one error line, then close it once that is written. */
static void conn_refuse(conn *c, int code, const char *msg) {
  c->s->conns_rejected++;
  pw_conn_error(c, NULL, 0, code, msg);
  c->close_after_flush = 1;
}

/* May c be served? If not, it gets an error line and closes. */
static int conn_admit(srv *s, conn *c) {
  char msg[120];
  if (s->stopping) {
    conn_refuse(c, PW_RPC_BUSY, "the server is stopping");
    return 0;
  }
  if (s->nconns > s->o.max_conns) {
    snprintf(msg, sizeof msg, "too many connections (--max-connections %u); try again later",
             s->o.max_conns);
    conn_refuse(c, PW_RPC_BUSY, msg);
    return 0;
  }
  if (!peer_allowed(s, c)) {
    snprintf(msg, sizeof msg, "uid %ld (gid %ld) is not allowed to use this server", c->uid,
             c->gid);
    pw_serve_warn("refused a connection from uid %ld gid %ld pid %ld", c->uid, c->gid, c->pid);
    conn_refuse(c, PW_RPC_FORBIDDEN, msg);
    return 0;
  }
  return 1;
}

/* Its peer's credentials (SO_PEERCRED); -1 where unknown (loopback TCP
** has none). */
static void conn_peer(conn *c) {
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
}

/* The listeners, for the shed's pending bits: bit i is shed_listener(s, i). */
#define SHED_LISTENERS 3
static uv_stream_t *shed_listener(srv *s, int i) {
  uv_stream_t *l[SHED_LISTENERS] = {(uv_stream_t *)&s->listener, (uv_stream_t *)&s->http_listener,
                                    (uv_stream_t *)&s->http_tcp};
  return l[i];
}

static void conn_shed(srv *s, uv_stream_t *listener);

/* The spare handle is free again: shed the next waiting connection, of
** whichever listener holds one (libuv stops a listener while a connection
** waits to be accepted, so each must be taken or it never accepts again). */
static void shed_closed(uv_handle_t *h) {
  srv *s = h->data;
  s->shed_busy = 0;
  for (int i = 0; i < SHED_LISTENERS; i++)
    if (s->shed_pending & (1u << i)) {
      conn_shed(s, shed_listener(s, i));
      return;   /* the next one when this one is closed */
    }
}

/* No memory for a connection: accept it on the one spare handle and close
** it at once, so the listener keeps going (libuv pauses it while a
** connection waits to be accepted). While the handle is busy, the listener
** is marked and shed_closed takes its connection. */
static void conn_shed(srv *s, uv_stream_t *listener) {
  unsigned bit = 0;
  for (int i = 0; i < SHED_LISTENERS; i++)
    if (shed_listener(s, i) == listener) bit = 1u << i;
  if (s->shed_busy) {
    s->shed_pending |= bit;
    return;
  }
  s->shed_pending &= ~bit;
  s->conns_rejected++;
  s->shed_busy = 1;
  if (listener->type == UV_TCP) uv_tcp_init(s->loop, &s->shed.tcp);
  else uv_pipe_init(s->loop, &s->shed.pipe, 0);
  s->shed.pipe.data = s;
  (void)uv_accept(listener, (uv_stream_t *)&s->shed.pipe);
  uv_close((uv_handle_t *)&s->shed.pipe, shed_closed);
}

void pw_conn_accept(uv_stream_t *listener, int status) {
  srv *s = listener->data;
  if (status < 0) {   /* EMFILE: libuv's reserve descriptor sheds it */
    s->accept_errors++;
    if (uv_now(s->loop) - s->accept_error_ms >= 1000) {
      pw_serve_warn("accept: %s (%llu so far)", uv_strerror(status),
                   (unsigned long long)s->accept_errors);
      s->accept_error_ms = uv_now(s->loop);
    }
    return;
  }
  conn *c = calloc(1, sizeof *c);
  if (!c) {
    conn_shed(s, listener);
    return;
  }
  c->s = s;
  c->uid = c->gid = c->pid = -1;
  /* every listener but the JSON-RPC one serves HTTP; one of them is TCP */
  int tcp = listener->type == UV_TCP, http = listener != (uv_stream_t *)&s->listener;
  if (tcp) uv_tcp_init(s->loop, &c->tcp);
  else uv_pipe_init(s->loop, &c->h, 0);
  c->h.data = c;
  if (uv_accept(listener, (uv_stream_t *)&c->h) != 0) {
    uv_close((uv_handle_t *)&c->h, (uv_close_cb)free);
    return;
  }
  if (tcp) uv_tcp_nodelay(&c->tcp, 1);   /* answers go out at once */
  else conn_peer(c);
  if (http) {
    pw_http_limits lim = {.max_body = s->o.max_line > 4096 ? s->o.max_line - 4096 : 1};
    c->http = pw_http_conn_new(&lim);
    if (!c->http) {   /* no memory for it: shed, as above */
      s->conns_rejected++;
      uv_close((uv_handle_t *)&c->h, (uv_close_cb)free);
      return;
    }
  }
  c->last_ms = c->http_phase_ms = uv_now(s->loop);   /* an HTTP connection starts idle */
  c->next = s->conns;
  if (s->conns) s->conns->prev = c;
  s->conns = c;
  s->nconns++;
  s->conns_total++;
  if (conn_admit(s, c)) uv_read_start((uv_stream_t *)&c->h, conn_alloc, conn_read);
}

/* c sent nothing for --idle-timeout while it had nothing pending. */
static void conn_idle(conn *c, uint64_t now) {
  srv *s = c->s;
  if (!s->o.idle_s || c->inflight || c->out.queued || c->close_after_flush) return;
  if (now - c->last_ms <= (uint64_t)s->o.idle_s * 1000u) return;
  char msg[120];
  snprintf(msg, sizeof msg, "idle for %u s (--idle-timeout); closing the connection",
           s->o.idle_s);
  pw_conn_error(c, NULL, 0, PW_RPC_BUSY, msg);
  c->close_after_flush = 1;
  pw_conn_pause(c);
}

/* }====== */

/* ==================================================================== */
/* {====== slow clients (issue 12): slowloris, and clients that never   */
/* read. Checked once a second (pw_conn_sweep), after the idle timeout. */

/* After framing: start the clock of a partial line left in rb, or stop
** it. An HTTP request is timed by httpd.c (its headers and its body, each
** with its own limit), not by this clock. */
static void conn_line_clock(conn *c) {
  int partial = !c->http && c->rlen != c->rpos;
  if (c->closing || !partial) c->line_ms = 0;
  else if (!c->line_ms) c->line_ms = uv_now(c->s->loop) | 1;
}

/* ms from since to now; since is a uv_now | 1, possibly 1 ms past now */
static uint64_t ms_since(uint64_t now, uint64_t since) { return now > since ? now - since : 0; }

/* c's unsent answers stayed over half --max-write-queue (where reading,
** once paused, stays paused) without shrinking for --write-timeout (or a
** connection being closed could not flush its last lines that long): its
** client does not read. Nothing more can reach it: close at once. */
static int conn_write_stuck(conn *c, uint64_t now) {
  srv *s = c->s;
  size_t unsent = conn_unsent(c), bound = c->close_after_flush ? 1 : s->o.max_wq / 2 + 1;
  int shrank = unsent < c->stuck_unsent;
  c->stuck_unsent = unsent;
  if (!s->o.write_timeout_s || unsent < bound || shrank) {
    c->stuck_ms = 0;
    return 0;
  }
  if (!c->stuck_ms) c->stuck_ms = now | 1;
  if (ms_since(now, c->stuck_ms) <= (uint64_t)s->o.write_timeout_s * 1000u) return 0;
  s->conns_stalled++;
  pw_serve_warn("closed a connection of uid %ld pid %ld: %zu bytes of answers unread for "
                "%u s (--write-timeout)", c->uid, c->pid, conn_unsent(c),
                s->o.write_timeout_s);
  pw_conn_close(c);
  return 1;
}

/* c's unfinished request line is older than --line-timeout (slowloris).
** The clock stands still while reading is paused by the server. */
static void conn_line_late(conn *c, uint64_t now) {
  srv *s = c->s;
  if (!s->o.line_timeout_s || !c->line_ms || c->close_after_flush || c->eof) return;
  if (c->paused) {
    c->line_ms = now | 1;
    return;
  }
  if (ms_since(now, c->line_ms) <= (uint64_t)s->o.line_timeout_s * 1000u) return;
  char msg[160];
  snprintf(msg, sizeof msg,
           "request line unfinished after %u s (--line-timeout); closing the connection",
           s->o.line_timeout_s);
  s->conns_stalled++;
  c->line_ms = 0;
  pw_conn_error(c, NULL, 0, PW_RPC_BUSY, msg);
  c->close_after_flush = 1;
  pw_conn_pause(c);
}

/* Every tick (serve.c): the one walk over the connections for every
** timeout. An HTTP request's own (httpd.c, in ms) on each tick; the idle,
** write and line timeouts (whole seconds) when second is set, once a
** second, in that order. */
void pw_conn_sweep(srv *s, int second) {
  uint64_t now = uv_now(s->loop);
  for (conn *c = s->conns; c; c = c->next) {
    if (c->http) pw_httpd_sweep(c, now);
    if (!second || c->closing) continue;
    conn_idle(c, now);
    if (!c->closing && !conn_write_stuck(c, now)) conn_line_late(c, now);
  }
}

/* }====== */
