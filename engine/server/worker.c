/*
** worker.c: one evaluation worker process (see worker.h).
**
** The child is forked from the supervisor's libuv process and never goes
** back into libuv: it resets its signals, keeps only its end of the
** socketpair (as fd 3) and stderr, sets its resource limits, builds its
** engines, then loops on blocking read -> evaluate each whole frame ->
** one write of all answers (each payload through the shared ring when it
** fits: ring_put). A batch's answers are flushed early when they
** pile up (256 KiB) or the first has waited 1 ms, so one slow evaluation
** does not hold back answers already made. It exits on EOF (the
** supervisor retiring it) and with its parent (PR_SET_PDEATHSIG).
*/
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"

#if defined(PW_SANITIZE) || defined(__SANITIZE_ADDRESS__)   /* PW_SANITIZE: CMake's, for gcc and clang */
#define PW_ASAN 1
#endif

#define W_FD 3
#define W_FLUSH_BYTES (256u * 1024u)
#define W_FLUSH_NS 1000000ull

uint64_t pw_worker_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t k = write(fd, p, n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return -1;
    p += k;
    n -= (size_t)k;
  }
  return 0;
}

static void send_frame(int fd, int kind, const char *payload, size_t n) {
  pw_wire_hdr h;
  memset(&h, 0, sizeof h);
  h.len = (uint32_t)n;
  h.kind = (uint16_t)kind;
  h.engine = -1;
  if (write_all(fd, (const char *)&h, sizeof h) != 0 || write_all(fd, payload, n) != 0)
    _exit(0);
}

static void close_other_fds(void) {
#ifdef SYS_close_range
  if (syscall(SYS_close_range, W_FD + 1, ~0U, 0) == 0) return;
#endif
  long max = sysconf(_SC_OPEN_MAX);
  if (max < 0 || max > 65536) max = 65536;
  for (long fd = W_FD + 1; fd < max; fd++) close((int)fd);
}

/* Keep the RLIMIT_CPU soft limit about headroom seconds ahead of the CPU
** time used, so only a runaway (a C call the supervisor failed to stop)
** ever reaches it: SIGXCPU then ends the process. */
static void cpu_rearm(uint64_t headroom) {
  struct rlimit rl;
  struct timespec ts;
  if (!headroom || getrlimit(RLIMIT_CPU, &rl) != 0) return;
  if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) return;
  rlim_t used = (rlim_t)ts.tv_sec + 1;
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur > used + headroom / 2) return;
  rlim_t want = used + (rlim_t)headroom;
  if (rl.rlim_max != RLIM_INFINITY && want > rl.rlim_max) want = rl.rlim_max;
  rl.rlim_cur = want;
  (void)setrlimit(RLIMIT_CPU, &rl);
}

static void child_setup(const pw_worker_cfg *cfg, int fd) {
  sigset_t none;
  sigemptyset(&none);
  for (int s = 1; s < NSIG; s++) {
    if (s == SIGKILL || s == SIGSTOP) continue;
    signal(s, SIG_DFL);
  }
  /* the supervisor decides when a worker ends: not a terminal's ^C */
  signal(SIGPIPE, SIG_IGN);
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  signal(SIGUSR1, SIG_IGN);
  signal(SIGUSR2, SIG_IGN);
  sigprocmask(SIG_SETMASK, &none, NULL);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != cfg->parent) _exit(0);
  prctl(PR_SET_NAME, "pathwise-worker");
  if (fd != W_FD) {
    if (dup2(fd, W_FD) < 0) _exit(71);
    close(fd);
  }
  close_other_fds();
  struct rlimit rl = {0, 0};
  setrlimit(RLIMIT_CORE, &rl);   /* a core file would hold patient data */
#ifndef PW_ASAN   /* AddressSanitizer reserves terabytes of address space */
  if (cfg->rlimit_as) {
    rl.rlim_cur = rl.rlim_max = (rlim_t)cfg->rlimit_as;
    setrlimit(RLIMIT_AS, &rl);
  }
#endif
  cpu_rearm(cfg->cpu_headroom_s);
}

typedef struct wbuf {      /* the worker's read buffer */
  char *p;
  size_t cap, len;
} wbuf;

static void wbuf_reserve(wbuf *b, size_t cap) {
  char *nb = realloc(b->p, cap);
  if (!nb) _exit(71);
  b->p = nb;
  b->cap = cap;
}

/* Answer one request frame: append the response frame to out. Returns 1
** when the worker must end (an engine could not be rebuilt). */
static int answer_frame(pw_worker_slot *slot, pw_rpc *r, const pw_wire_hdr *h,
                        const char *line, pw_buf *out) {
  uint64_t t0 = pw_worker_now_ns();
  size_t h0 = out->len;
  pw_wire_hdr rh;
  memset(&rh, 0, sizeof rh);
  pw_buf_add(out, (const char *)&rh, sizeof rh);
  pw_rpc_outcome oc;
  memset(&oc, 0, sizeof oc);
  oc.engine = -1;
  if (t0 > h->deadline_ns) {
    oc.code = PW_RPC_DEADLINE;   /* the supervisor writes the error */
  } else {
    atomic_store_explicit(&slot->since_ns, t0, memory_order_relaxed);
    atomic_store_explicit(&slot->tag, h->tag, memory_order_release);
    pw_rpc_handle(r, h->method, line, h->len, out, &oc);
    atomic_store_explicit(&slot->tag, 0, memory_order_release);
    atomic_fetch_add_explicit(&slot->served, 1, memory_order_relaxed);
    atomic_store_explicit(&slot->state_bytes, oc.state_bytes, memory_order_relaxed);
    atomic_store_explicit(&slot->rebuilds, oc.rebuilds, memory_order_relaxed);
  }
  rh.len = (uint32_t)(out->len - h0 - PW_WIRE_HDR);
  rh.kind = PW_WIRE_RESP;
  rh.engine = (int16_t)oc.engine;
  rh.tag = h->tag;
  rh.eval_ns = pw_worker_now_ns() - t0;
  rh.resp_len = (uint32_t)oc.resp_len;
  rh.code = oc.code;
  memcpy(out->data + h0, &rh, sizeof rh);
  return oc.fatal;
}

/* The answer ring, from the worker's side (worker.h). */
typedef struct wring {
  pw_worker_ring *r;        /* NULL: everything inline */
  uint64_t head;            /* bytes produced */
} wring;

/* Move the payload of the response frame at out[h0..] into the ring when
** it fits, leaving a PW_WIRE_RESP_RING header in out; else leave it inline. */
static void ring_put(wring *wr, pw_buf *out, size_t h0) {
  pw_wire_hdr rh;
  if (!wr->r || out->failed) return;
  memcpy(&rh, out->data + h0, sizeof rh);
  uint64_t n = rh.len, at = wr->head % PW_RING_BYTES, skip = 0;
  if (n < PW_RING_MIN || n > PW_RING_BYTES) return;
  if (at + n > PW_RING_BYTES) skip = PW_RING_BYTES - at;   /* never wrap one payload */
  uint64_t tail = atomic_load_explicit(&wr->r->tail, memory_order_acquire);
  if (wr->head + skip + n - tail > PW_RING_BYTES) return;  /* full: inline */
  uint64_t pos = wr->head + skip;
  memcpy(wr->r->data + pos % PW_RING_BYTES, out->data + h0 + PW_WIRE_HDR, n);
  wr->head = pos + n;
  rh.kind = PW_WIRE_RESP_RING;
  rh.ring_len = rh.len;
  rh.ring_pos = pos;
  rh.len = 0;
  memcpy(out->data + h0, &rh, sizeof rh);
  out->len = h0 + PW_WIRE_HDR;
}

/* Answer every whole frame in b, writing answers as they pile up; returns
** the bytes consumed. */
static size_t answer_frames(const pw_worker_cfg *cfg, pw_worker_slot *slot, pw_rpc *r,
                            wbuf *b, pw_buf *out, wring *wr) {
  size_t pos = 0;
  uint64_t first_pending = 0;
  while (b->len - pos >= PW_WIRE_HDR) {
    pw_wire_hdr h;
    memcpy(&h, b->p + pos, sizeof h);
    if (h.kind != PW_WIRE_REQ || h.len > cfg->max_frame) _exit(70);
    if (b->len - pos - PW_WIRE_HDR < h.len) {
      size_t need = PW_WIRE_HDR + (size_t)h.len;
      if (need > b->cap) {   /* make room for the whole frame */
        memmove(b->p, b->p + pos, b->len - pos);
        b->len -= pos;
        pos = 0;
        wbuf_reserve(b, need + 65536);
      }
      break;
    }
    uint64_t t0 = pw_worker_now_ns();
    size_t h0 = out->len;
    int fatal = answer_frame(slot, r, &h, b->p + pos + PW_WIRE_HDR, out);
    ring_put(wr, out, h0);
    pos += PW_WIRE_HDR + (size_t)h.len;
    if (fatal) {
      (void)write_all(W_FD, out->data, out->len);
      _exit(70);
    }
    if (!first_pending) first_pending = t0;
    if (out->len >= W_FLUSH_BYTES || pw_worker_now_ns() - first_pending >= W_FLUSH_NS) {
      if (write_all(W_FD, out->data, out->len) != 0) _exit(0);
      pw_buf_reset(out);
      first_pending = 0;
    }
  }
  return pos;
}

static void worker_loop(const pw_worker_cfg *cfg, pw_worker_slot *slot, pw_worker_ring *ring,
                        pw_rpc *r) {
  wbuf b = {NULL, 0, 0};
  wring wr = {ring, 0};
  pw_buf out = {0};
  uint64_t last_cpu_check = pw_worker_now_ns();
  wbuf_reserve(&b, 256 * 1024);
  for (;;) {
    if (b.cap - b.len < 65536) wbuf_reserve(&b, b.cap * 2);
    ssize_t n = read(W_FD, b.p + b.len, b.cap - b.len);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    b.len += (size_t)n;
    size_t pos = answer_frames(cfg, slot, r, &b, &out, &wr);
    if (pos) {
      memmove(b.p, b.p + pos, b.len - pos);
      b.len -= pos;
    }
    if (out.len) {
      if (write_all(W_FD, out.data, out.len) != 0) _exit(0);
      pw_buf_reset(&out);
    }
    if (out.cap > 4u * 1024 * 1024) pw_buf_free(&out);
    if (b.cap > 4u * 1024 * 1024 && b.len < 65536) {
      char *nb = realloc(b.p, 256 * 1024);
      if (nb) {
        b.p = nb;
        b.cap = 256 * 1024;
      }
    }
    uint64_t now = pw_worker_now_ns();
    if (now - last_cpu_check > 1000000000ull) {
      cpu_rearm(cfg->cpu_headroom_s);
      last_cpu_check = now;
    }
  }
  pw_buf_free(&out);
  free(b.p);
}

static void worker_child(const pw_worker_cfg *cfg, pw_worker_slot *slot, pw_worker_ring *ring,
                         int fd) {
  child_setup(cfg, fd);
  /* the reason a load failed lists every failing case: room for all */
  char small[256];
  size_t errlen = PW_RPC_LOAD_ERR_MAX;
  char *err = malloc(errlen);
  if (!err) err = small, errlen = sizeof small;
  err[0] = '\0';
  pw_rpc *r = pw_rpc_new(&cfg->rpc, err, errlen);
  if (!r) {
    send_frame(W_FD, PW_WIRE_FAIL, err, strlen(err));
    _exit(0);
  }
  if (err != small) free(err);
  pw_buf ready = {0};
  pw_rpc_ready_payload(r, &ready);
  send_frame(W_FD, PW_WIRE_READY, ready.data, ready.len);
  pw_buf_free(&ready);
  worker_loop(cfg, slot, ring, r);
  /* no pw_rpc_free: a finalizer could hang lua_close; the kernel frees all */
  _exit(0);
}

pid_t pw_worker_spawn(const pw_worker_cfg *cfg, pw_worker_slot *slot, pw_worker_ring *ring,
                      int *fdp) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return -1;
  int sz = 1 << 20;
  setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
  setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
  setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
  setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
  atomic_store(&slot->tag, 0);
  atomic_store(&slot->since_ns, 0);
  atomic_store(&slot->served, 0);
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close(sv[0]);
    close(sv[1]);
    errno = e;
    return -1;
  }
  if (pid == 0) {
    close(sv[0]);
    worker_child(cfg, slot, ring, sv[1]);
    _exit(70);
  }
  close(sv[1]);
  *fdp = sv[0];
  return pid;
}
