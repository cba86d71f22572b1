/*
** pw_echo.c: the ceiling for the socket benchmark.
**
**   pw_echo --socket PATH [--reply-bytes N]
**
** A minimal server with pathwise's framing: a Unix stream socket,
** newline-delimited JSON-RPC requests, one reply line per request with the
** request's id echoed, {"jsonrpc":"2.0","id":ID,"result":"xxxx..."} padded
** to N bytes (newline included; default 6144, about what `evaluate`
** answers for the index case). It parses nothing but the id, evaluates
** nothing and logs nothing: one thread, epoll, replies to everything read
** in one go written in one go. `health` answers {"pid":...} so that the
** load client can account the server's CPU. SIGTERM/SIGINT: exit 0.
*/
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

typedef struct conn {
  int fd;
  char *in, *out;
  size_t ilen, icap, olen, ocap, osent;
} conn;

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static char *pad;        /* the reply's padding */
static size_t pad_len;

static void reserve(char **b, size_t *cap, size_t need) {
  if (need <= *cap) return;
  size_t c = *cap ? *cap : 65536;
  while (c < need) c *= 2;
  char *p = realloc(*b, c);
  if (!p) { perror("realloc"); exit(71); }
  *b = p;
  *cap = c;
}

static void out_add(conn *c, const char *s, size_t n) {
  reserve(&c->out, &c->ocap, c->olen + n);
  memcpy(c->out + c->olen, s, n);
  c->olen += n;
}

/* One request line: echo its id (raw text up to ',' or '}'). */
static void answer(conn *c, const char *line, size_t len) {
  const char *id = memmem(line, len, "\"id\":", 5);
  const char *idv = "null";
  size_t idn = 4;
  if (id) {
    idv = id + 5;
    const char *e = idv;
    while (e < line + len && *e != ',' && *e != '}') e++;
    idn = (size_t)(e - idv);
  }
  if (memmem(line, len, "\"method\":\"health\"", 17)) {
    char b[160];
    int n = snprintf(b, sizeof b, "{\"jsonrpc\":\"2.0\",\"id\":%.*s,\"result\":{\"status\":\"ok\",\"pid\":%d}}\n",
                     (int)idn, idv, (int)getpid());
    out_add(c, b, (size_t)n);
    return;
  }
  out_add(c, "{\"jsonrpc\":\"2.0\",\"id\":", 22);
  out_add(c, idv, idn);
  out_add(c, ",\"result\":\"", 11);
  size_t used = 22 + idn + 11 + 3;   /* "}\n after the padding */
  out_add(c, pad, pad_len > used ? pad_len - used : 0);
  out_add(c, "\"}\n", 3);
}

static int flush(conn *c) {
  while (c->osent < c->olen) {
    ssize_t w = send(c->fd, c->out + c->osent, c->olen - c->osent, MSG_NOSIGNAL);
    if (w < 0) return errno == EAGAIN ? 0 : -1;
    c->osent += (size_t)w;
  }
  c->osent = c->olen = 0;
  return 0;
}

static void drop(int ep, conn *c) {
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  free(c->in);
  free(c->out);
  free(c);
}

int main(int argc, char **argv) {
  static const struct option lo[] = {
    {"socket", required_argument, 0, 's'}, {"reply-bytes", required_argument, 0, 'r'},
    {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  const char *path = NULL;
  long reply = 6144;
  int o;
  while ((o = getopt_long(argc, argv, "s:r:h", lo, NULL)) != -1) {
    switch (o) {
    case 's': path = optarg; break;
    case 'r': reply = atol(optarg); break;
    default:
      fprintf(o == 'h' ? stdout : stderr, "usage: pw_echo --socket PATH [--reply-bytes N]\n");
      return o == 'h' ? 0 : 64;
    }
  }
  if (!path || reply < 64 || reply > (16 << 20)) {
    fprintf(stderr, "pw_echo: give --socket PATH (and 64 <= --reply-bytes <= 16 MiB)\n");
    return 64;
  }
  pad_len = (size_t)reply;
  pad = malloc(pad_len);
  memset(pad, 'x', pad_len);

  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof sa.sun_path) { fprintf(stderr, "pw_echo: socket path too long\n"); return 64; }
  strcpy(sa.sun_path, path);
  unlink(path);
  int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) || listen(lfd, 256)) {
    perror(path);
    return 71;
  }
  signal(SIGPIPE, SIG_IGN);
  struct sigaction act;
  memset(&act, 0, sizeof act);
  act.sa_handler = on_signal;
  sigaction(SIGTERM, &act, NULL);
  sigaction(SIGINT, &act, NULL);

  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  while (!stop) {
    struct epoll_event evs[64];
    int n = epoll_wait(ep, evs, 64, 500);
    for (int i = 0; i < n; i++) {
      conn *c = evs[i].data.ptr;
      if (!c) {   /* the listening socket */
        int fd;
        while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
          conn *k = calloc(1, sizeof *k);
          k->fd = fd;
          struct epoll_event e2 = {.events = EPOLLIN, .data.ptr = k};
          epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e2);
        }
        continue;
      }
      if (evs[i].events & EPOLLOUT) {
        if (flush(c)) { drop(ep, c); continue; }
        if (c->olen == 0) {
          struct epoll_event e2 = {.events = EPOLLIN, .data.ptr = c};
          epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e2);
        }
      }
      if (!(evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
      int closed = 0;
      for (;;) {
        reserve(&c->in, &c->icap, c->ilen + 65536);
        ssize_t r = read(c->fd, c->in + c->ilen, c->icap - c->ilen);
        if (r < 0 && errno == EAGAIN) break;
        if (r <= 0) { closed = 1; break; }
        c->ilen += (size_t)r;
        if ((size_t)r < 65536) break;
      }
      size_t pos = 0;
      for (;;) {
        char *nl = memchr(c->in + pos, '\n', c->ilen - pos);
        if (!nl) break;
        answer(c, c->in + pos, (size_t)(nl - (c->in + pos)));
        pos = (size_t)(nl - c->in) + 1;
      }
      memmove(c->in, c->in + pos, c->ilen - pos);
      c->ilen -= pos;
      if (closed || flush(c)) { drop(ep, c); continue; }
      if (c->olen) {
        struct epoll_event e2 = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e2);
      }
    }
  }
  unlink(path);
  return 0;
}
