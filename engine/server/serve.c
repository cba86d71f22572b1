/*
** serve.c: `pathwise serve`: startup, the loop's housekeeping, signals
** and shutdown.
**
** One libuv loop in this process does all I/O. Output is batched: whoever
** appends to a connection's or a worker's output marks it dirty and wakes
** the loop; the check handle (after each poll) writes every dirty worker
** channel, kicks the decision log, then writes every dirty connection, so
** one read of 64 pipelined requests costs one write to each worker. A
** timer ticks every grace/4 ms (10..100) for the watchdog (pool.c), held
** answers past their deadline (answer.c), a reload that takes too long
** (reload.c) and, once a second, idle connections (conn.c) and the heap's
** free pages (stats.c).
**
** Shutdown (SIGTERM, SIGINT, or the protocols failing at start): stop
** accepting and reading, answer what is in flight, then finish: retire
** the workers, close the log and the handles, and let the loop end once
** every worker is reaped. A second signal, or timeout + grace + 2 s,
** gives up on what is still in flight.
*/
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "command.h"
#include "engine.h"
#include "sd.h"
#include "server.h"
#include "supervisor.h"

/* Log lines: under systemd (stderr is the journal stream) each starts with
** its syslog priority, <6> information, <4> warning, <3> error (sd.h). */
static void say_at(int prio, const char *fmt, va_list ap) {
  char m[2048];
  vsnprintf(m, sizeof m, fmt, ap);
  fprintf(stderr, "%spathwise serve: %s\n", pw_sd_prefix(pw_sd_stderr_is_journal(), prio), m);
}

#define SAY_FN(name, prio)                      \
  void name(const char *fmt, ...) {             \
    va_list ap;                                 \
    va_start(ap, fmt);                          \
    say_at(prio, fmt, ap);                      \
    va_end(ap);                                 \
  }
SAY_FN(pw_serve_say, PW_SD_INFO)
SAY_FN(pw_serve_warn, PW_SD_WARNING)
SAY_FN(pw_serve_err, PW_SD_ERR)

void pw_serve_notify(const char *msg) { (void)pw_sd_notify(msg); }

/* ==================================================================== */
/* {====== the loop's housekeeping                                      */

static void on_idle(uv_idle_t *h) { (void)h; }

void pw_serve_wake(srv *s) {
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
    pw_pool_flush(w);
  }
  if (s->log) pw_declog_kick(s->log);
  while (s->dconns) {
    conn *c = s->dconns;
    s->dconns = c->dnext;
    c->dirty = 0;
    pw_conn_flush(c);
  }
  if (s->idle_on && !s->dworkers && !s->dconns) {
    s->idle_on = 0;
    uv_idle_stop(&s->idle);
  }
}

static void on_tick(uv_timer_t *t) {
  srv *s = t->data;
  uint64_t now = pw_worker_now_ns();
  pw_pool_watchdog(s, now);
  pw_answer_sweep(s, now);
  pw_reload_timeout(s, now);
  int second = uv_now(s->loop) / 1000 != (uv_now(s->loop) - uv_timer_get_repeat(t)) / 1000;
  pw_conn_sweep(s, second);
  if (second) pw_stats_heap_trim(s);
  pw_serve_maybe_finish(s);
}

/* }====== */

/* ==================================================================== */
/* {====== shutdown                                                     */

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
    pw_serve_warn("stopping: giving up on %llu unanswered requests",
                 (unsigned long long)(s->requests - s->responses));
    for (worker *w = s->workers; w; w = w->anext)
      if (!w->lost && !w->retiring) {
        w->killed = 1;
        pw_pool_lost(w, "was stopped at shutdown");
      }
    pw_qlink *l;
    while ((l = pw_queue_pop(&s->pending))) {
      req *r = PW_QITEM(l, req, link);
      pw_req_fail(s, r, PW_RPC_BUSY, "the server is stopping");
      pw_req_free(r);
    }
    for (conn *c = s->conns; c; c = c->next) pw_conn_close(c);
    pw_serve_maybe_finish(s);
    return;
  }
  /* workers that ignore EOF */
  for (worker *w = s->workers; w; w = w->anext)
    if (!w->reaped) kill(w->pid, SIGKILL);
  if (s->reading) {   /* the loop cannot end while a thread reads */
    if (s->workers) {
      uv_timer_start(&s->stop_timer, on_stop_timer, 1000, 0);
      return;
    }
    pw_serve_err("stopping: reading the protocol files still hangs (a FIFO or a slow file "
                 "system?); exiting without waiting for it");
    _exit(s->exit_code ? s->exit_code : PW_EX_IOERR);
  }
}

static void finish(srv *s) {
  s->finishing = 1;
  for (generation *g = s->generations; g; g = g->gnext) {
    uv_timer_stop(&g->respawn);
    for (int i = 0; i < g->nw; i++)
      if (g->w[i]) pw_pool_retire(g->w[i]);
  }
  if (s->log) {
    char err[300];
    if (pw_declog_close(s->log, err, sizeof err) != 0) {
      pw_serve_err("decision log: %s", err);
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
  pw_serve_maybe_finish(s);
}

void pw_serve_maybe_finish(srv *s) {
  if (!s->stopping) return;
  if (s->finishing) {
    /* wait for the workers to be reaped, then let the loop end */
    if (s->workers || s->reading) return;   /* a hung read: on_stop_timer */
    close_if((uv_handle_t *)&s->sig_chld);
    close_if((uv_handle_t *)&s->stop_timer);
    for (generation *g = s->generations; g; g = g->gnext)
      close_if((uv_handle_t *)&g->respawn);
    return;
  }
  if (s->pending.n || s->held.n || s->loading) return;
  for (worker *w = s->workers; w; w = w->anext)
    if (w->sent.n && !w->lost) return;
  if (s->log && pw_declog_busy(s->log)) return;
  if (s->conns) return;
  finish(s);
}

void pw_serve_shutdown(srv *s, const char *why) {
  if (s->stopping) return;
  s->stopping = 1;
  pw_serve_say("%s: stopping (finishing %llu requests in flight)", why,
               (unsigned long long)(s->requests - s->responses));
  pw_serve_notify("STOPPING=1");
  if (s->listener_init) close_if((uv_handle_t *)&s->listener);
  if (s->http_init) close_if((uv_handle_t *)&s->http_listener);
  if (s->http_tcp_init) close_if((uv_handle_t *)&s->http_tcp);
  pw_listen_unlink(s);
  pw_httpd_unlink(s);
  for (int i = 0; i < s->nwatch; i++) close_if((uv_handle_t *)&s->watch[i]);
  uv_timer_stop(&s->debounce);
  if (s->loading) pw_reload_fail(s->loading, "the server is stopping");
  if (s->reading) {   /* read_done frees it (ECANCELED, or once the read ends) */
    (void)uv_cancel((uv_req_t *)&s->reading->read);
    pw_reload_answer(s, &s->reading->waiters, PW_RPC_BUSY, "the server is stopping", NULL);
  }
  pw_reload_answer(s, &s->next_waiters, PW_RPC_BUSY, "the server is stopping", NULL);
  for (conn *c = s->conns; c; c = c->next) {
    if (c->closing) continue;
    uv_read_stop((uv_stream_t *)&c->h);
    c->eof = 1;
    c->rlen = c->rpos = c->scan = 0;
  }
  for (conn *c = s->conns, *n; c; c = n) {
    n = c->next;
    pw_conn_check(c);
  }
  uv_timer_start(&s->stop_timer, on_stop_timer,
                 (uint64_t)s->o.timeout_ms + s->o.grace_ms + 2000, 0);
  pw_serve_maybe_finish(s);
}

static void on_signal(uv_signal_t *h, int sig) {
  srv *s = h->data;
  if (sig == SIGHUP) {
    pw_serve_say("SIGHUP: reloading the protocols");
    pw_reload_start(s, "SIGHUP", NULL, NULL, 0);
  } else if (sig == SIGUSR1) {
    if (s->log) {
      pw_serve_say("SIGUSR1: reopening the decision log");
      pw_declog_reopen(s->log);
    }
  } else {
    if (s->stopping && !s->finishing) {
      pw_serve_warn("%s again: stopping now", strsignal(sig));
      on_stop_timer(&s->stop_timer);
      return;
    }
    pw_serve_shutdown(s, strsignal(sig));
  }
}

/* }====== */

/* ==================================================================== */
/* {====== startup                                                      */

static void warm_work(uv_work_t *w) { (void)w; }
static void warm_after(uv_work_t *w, int status) { (void)w, (void)status; }

static int open_log(srv *s) {
  pw_declog_opts lo;
  char note[1024];
  /* libuv creates its thread pool at the first uv_queue_work and abort()s
  ** if it cannot: have that happen now, at start, not at the first commit
  ** while serving (issue 12, never die) */
  if (uv_queue_work(s->loop, &s->warm, warm_work, warm_after) != 0) {
    pw_serve_say("cannot start the thread pool for the decision log");
    return -1;
  }
  memset(&lo, 0, sizeof lo);
  lo.path = s->o.log_path;
  lo.sync = s->o.log_sync;
  lo.interval_ms = s->o.log_interval_ms;
  lo.cb = pw_answer_log_done;
  lo.note = pw_answer_log_note;
  lo.arg = s;
  s->log = pw_declog_open(s->loop, &lo, note, sizeof note);
  if (!s->log) {
    pw_serve_err("cannot open the decision log: %s", note);
    return -1;
  }
  if (note[0]) pw_serve_warn("decision log: %s", note);
  return 0;
}

static void start_handles(srv *s) {
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
  uv_signal_start(&s->sig_chld, pw_pool_on_sigchld, SIGCHLD);
}

/* After the loop: close what is left, free everything; the exit code. */
static int teardown(srv *s) {
  pw_listen_unlink(s);
  pw_httpd_unlink(s);
  pw_jwt_free(s->jwt);
  s->jwt = NULL;
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
  while (s->generations) {   /* their timers were closed with the loop */
    generation *g = s->generations;
    s->generations = g->gnext;
    pw_reload_release(g);
  }
  int code = s->exit_code;
  if (!code) pw_serve_say("stopped");
  pw_buf_free(&s->rules_json);
  free(s->last_reload_error);
  for (int i = 0; i < s->nwatch; i++) free(s->watch_dir[i]);
  for (int i = 0; i < s->nproto_stats; i++) free(s->proto_stats[i].id);
  free(s->proto_stats);
  free(s);
  return code;
}

/* Socket activation (sd.h): a socket systemd passed is served as is, with
** no lock file and no stale-file check (systemd owns the file); one that
** does not fit --socket stops the start with 78. */
static int adopt_socket(srv *s) {
  char err[400];
  s->activated_fd = pw_sd_listen_fd(s->o.socket, err, sizeof err);
  if (s->activated_fd < 0) {
    pw_serve_err("%s", err);
    return PW_EX_CONFIG;
  }
  if (s->activated_fd > 0)
    pw_serve_say("socket activation: serving %s on the socket from systemd", s->o.socket);
  return 0;
}

/* Started with stdin, stdout or stderr closed, the server's own descriptors
** (libuv's epoll, the lock file, the socket) would take 0-2 and diagnostics
** would land in them: hold each closed one on /dev/null first. */
static int std_fds_reopen(void) {
  for (int fd = 0; fd <= 2; fd++) {
    if (fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
    int nfd = open("/dev/null", O_RDWR);   /* the lowest free number: fd */
    if (nfd < 0) return -1;
    if (nfd != fd) {
      close(nfd);
      return -1;
    }
  }
  return 0;
}

int pw_serve_main(int argc, char **argv) {
  if (std_fds_reopen() != 0) return PW_EX_OSERR;
  srv *s = calloc(1, sizeof *s);
  if (!s) return PW_EX_OSERR;
  int rc = pw_options_parse(argc, argv, &s->o);
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
  rc = adopt_socket(s);
  if (rc == 0 && !s->activated_fd) rc = pw_listen_prepare(s);
  if (rc != 0) {
    if (s->lock_fd >= 0) close(s->lock_fd);
    free(s);
    return rc;
  }
  s->loop = uv_default_loop();
  s->start_ms = uv_now(s->loop);
  pw_rules_json(&s->rules_json);
  pw_buf_add(&s->rules_json, "", 0);
  if (s->o.log_path && open_log(s) != 0) {
    close(s->lock_fd);
    pw_buf_free(&s->rules_json);
    free(s);
    return PW_EX_CANTCREAT;
  }
  start_handles(s);
  pw_reload_start(s, "start", NULL, NULL, 0);
  if (!s->stopping) pw_reload_watch(s);
  uv_run(s->loop, UV_RUN_DEFAULT);
  return teardown(s);
}

/* }====== */
