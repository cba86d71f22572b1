/*
** pw_load.c: a load client for `pathwise serve` (Unix socket only).
**
**   pw_load --socket PATH [--conns C] [--depth D] [--requests N]
**           [--seconds T] [--warmup N] [--method evaluate|check_orders|health]
**           [--json] FACTS.json...
**
** C connections each keep D requests in flight (pipelined), cycling
** through the facts files, until N requests are answered (after W warm-up
** requests) or T seconds have passed, whichever comes first. Prints
** throughput, latency percentiles and the server's CPU time per request
** (main process + workers, from /proc, pids taken from `health`).
** Any error response or malformed line is counted; exit 1 if any.
**
** With --http PATH [--path /cds-services/ID] the load goes to the CDS
** Hooks HTTP socket instead: each file is a request body, sent as
** HTTP/1.1 POST (keep-alive; D > 1 pipelines, which the server answers one
** at a time per connection); an answer other than 200 is an error. --socket
** is still the JSON-RPC socket, asked for the pids.
*/
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define SLOTS 8192

typedef struct lconn {
  int fd;
  char *out;
  size_t olen, ocap, osent;
  char *in;
  size_t ilen, icap;
  uint64_t next_id, next_answer;   /* HTTP: answers come in order */
  unsigned inflight;
  uint64_t ids[SLOTS];
  uint64_t sent_ns[SLOTS];
  int want_write;
} lconn;

typedef struct req_tpl {
  char *body;    /* text after the id: ,"method":...}\n */
  size_t len;
} req_tpl;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 65536, n = 0;
  char *b = malloc(cap);
  size_t k;
  while ((k = fread(b + n, 1, cap - n, f)) > 0) {
    n += k;
    if (n == cap) b = realloc(b, cap *= 2);
  }
  fclose(f);
  *len = n;
  return b;
}

/* One HTTP response at in[0..len): its length, or 0 while incomplete. */
static size_t http_response(const char *in, size_t len, int *status) {
  const char *end = memmem(in, len, "\r\n\r\n", 4);
  if (!end) return 0;
  size_t head = (size_t)(end - in) + 4, clen = 0;
  *status = len > 12 && !strncmp(in, "HTTP/1.1 ", 9) ? atoi(in + 9) : 0;
  for (const char *p = in; p < end; p++) {
    if (*p == '\n' && !strncasecmp(p + 1, "content-length:", 15)) clen = strtoul(p + 16, NULL, 10);
  }
  return len >= head + clen ? head + clen : 0;
}

static int uconnect(const char *path) {
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    perror(path);
    exit(2);
  }
  return fd;
}

static void out_add(lconn *c, const char *p, size_t n) {
  if (c->olen + n > c->ocap) {
    while (c->olen + n > c->ocap) c->ocap = c->ocap ? c->ocap * 2 : 65536;
    c->out = realloc(c->out, c->ocap);
  }
  memcpy(c->out + c->olen, p, n);
  c->olen += n;
}

/* pids from `health` (main process first), for CPU accounting */
static int server_pids(const char *path, int *pids, int max) {
  int fd = uconnect(path);
  const char *q = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"health\"}\n";
  if (write(fd, q, strlen(q)) < 0) return 0;
  char buf[65536];
  size_t n = 0;
  for (;;) {
    ssize_t k = read(fd, buf + n, sizeof buf - 1 - n);
    if (k <= 0) break;
    n += (size_t)k;
    if (memchr(buf, '\n', n)) break;
  }
  close(fd);
  buf[n] = '\0';
  int np = 0;
  char *p = strstr(buf, "\"pid\":");
  if (p && np < max) pids[np++] = atoi(p + 6);
  p = strstr(buf, "\"pids\":[");
  if (p) {
    p += 8;
    while (*p && *p != ']' && np < max) {
      pids[np++] = (int)strtol(p, &p, 10);
      if (*p == ',') p++;
    }
  }
  return np;
}

static double cpu_seconds(const int *pids, int np) {
  double t = 0;
  long hz = sysconf(_SC_CLK_TCK);
  for (int i = 0; i < np; i++) {
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/stat", pids[i]);
    FILE *f = fopen(path, "r");
    if (!f) continue;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p) continue;
    unsigned long ut = 0, st = 0;
    /* fields after ")": state(3) ... utime(14) stime(15) */
    int field = 3;
    for (char *s = p + 2; *s && field < 15; s++) {
      if (*s == ' ') {
        field++;
        if (field == 14) ut = strtoul(s + 1, NULL, 10);
        if (field == 15) st = strtoul(s + 1, NULL, 10);
      }
    }
    t += (double)(ut + st) / (double)hz;
  }
  return t;
}

/* The measurement window: it opens after `warm` answers (wall clock and
** the server's CPU read then); each answer after that keeps its latency. */
typedef struct meter {
  long warm, nreq, done, nlat;
  uint64_t *lat, t_start;
  double cpu0, main0;
  const int *pids;
  int npids;
} meter;

static void meter_open(meter *m) {
  m->t_start = now_ns();
  m->cpu0 = cpu_seconds(m->pids, m->npids);
  m->main0 = cpu_seconds(m->pids, m->npids ? 1 : 0);
}

static void meter_answer(meter *m, uint64_t latency_ns) {
  m->done++;
  if (m->done == m->warm) meter_open(m);
  else if (m->done > m->warm && m->nlat < m->nreq) m->lat[m->nlat++] = latency_ns;
}

int main(int argc, char **argv) {
  static const struct option lo[] = {
    {"socket", required_argument, 0, 's'}, {"conns", required_argument, 0, 'c'},
    {"depth", required_argument, 0, 'd'}, {"requests", required_argument, 0, 'n'},
    {"seconds", required_argument, 0, 't'}, {"warmup", required_argument, 0, 'w'},
    {"method", required_argument, 0, 'm'}, {"json", no_argument, 0, 'j'},
    {"http", required_argument, 0, 'H'}, {"path", required_argument, 0, 'P'},
    {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  const char *sock = NULL, *method = "evaluate", *http = NULL, *path = "/cds-services/mrc_second_line-patient-view";
  int nconn = 1, depth = 1, json = 0;
  long nreq = 100000, warm = 1000;
  double secs = 30;
  int c;
  while ((c = getopt_long(argc, argv, "s:c:d:n:t:w:m:jhH:P:", lo, NULL)) != -1) {
    switch (c) {
      case 's': sock = optarg; break;
      case 'c': nconn = atoi(optarg); break;
      case 'd': depth = atoi(optarg); break;
      case 'n': nreq = atol(optarg); break;
      case 't': secs = atof(optarg); break;
      case 'w': warm = atol(optarg); break;
      case 'm': method = optarg; break;
      case 'j': json = 1; break;
      case 'H': http = optarg; break;
      case 'P': path = optarg; break;
      default:
        fprintf(stderr, "usage: pw_load --socket PATH [--conns C] [--depth D] [--requests N] "
                        "[--seconds T] [--warmup N] [--method M] [--json] FACTS.json...\n"
                        "       pw_load --socket PATH --http PATH [--path /cds-services/ID] [...] BODY.json...\n");
        return c == 'h' ? 0 : 64;
    }
  }
  if (!sock || nconn < 1 || depth < 1 || depth > SLOTS / 2 || nreq < 1) {
    fprintf(stderr, "pw_load: bad arguments (see --help)\n");
    return 64;
  }
  int ntpl = argc - optind;
  if (ntpl < 1 && strcmp(method, "health") != 0) {
    fprintf(stderr, "pw_load: give at least one facts file\n");
    return 64;
  }
  if (ntpl < 1) ntpl = 1;
  req_tpl *tpl = calloc((size_t)ntpl, sizeof *tpl);
  size_t bytes_in = 0;
  for (int i = 0; i < ntpl; i++) {
    size_t fl = 0;
    char *f = optind + i < argc ? read_file(argv[optind + i], &fl) : NULL;
    if (optind + i < argc && !f) {
      perror(argv[optind + i]);
      return 66;
    }
    for (size_t k = 0; k < fl; k++)
      if (f[k] == '\n' || f[k] == '\r') f[k] = ' ';
    size_t cap = fl + 256 + strlen(path);
    tpl[i].body = malloc(cap);
    if (http)
      tpl[i].len = (size_t)snprintf(tpl[i].body, cap,
                                    "POST %s HTTP/1.1\r\nHost: pw_load\r\nContent-Type: application/json\r\n"
                                    "Content-Length: %zu\r\n\r\n%.*s", path, fl, (int)fl, f);
    else if (!strcmp(method, "health"))
      tpl[i].len = (size_t)snprintf(tpl[i].body, cap, ",\"method\":\"health\"}\n");
    else if (!strcmp(method, "check_orders"))
      tpl[i].len = (size_t)snprintf(tpl[i].body, cap,
                                    ",\"method\":\"check_orders\",\"params\":{\"orders\":"
                                    "[\"cetuximab\",\"FOLFOX\"],\"facts\":%.*s}}\n",
                                    (int)fl, f);
    else
      tpl[i].len = (size_t)snprintf(tpl[i].body, cap,
                                    ",\"method\":\"evaluate\",\"params\":{\"facts\":%.*s}}\n",
                                    (int)fl, f);
    bytes_in += tpl[i].len;
    free(f);
  }

  int ep = epoll_create1(EPOLL_CLOEXEC);
  lconn *cs = calloc((size_t)nconn, sizeof *cs);
  for (int i = 0; i < nconn; i++) {
    cs[i].fd = uconnect(http ? http : sock);
    fcntl(cs[i].fd, F_SETFL, O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
    epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
  }
  int pids[64];
  int npids = server_pids(sock, pids, 64);

  long total = nreq + warm, issued = 0, errors = 0, bad = 0;
  meter m = {.warm = warm, .nreq = nreq, .lat = malloc(sizeof(uint64_t) * (size_t)nreq), .pids = pids, .npids = npids};
  uint64_t t_end = 0, t_begin = now_ns();
  if (warm == 0) meter_open(&m);   /* measure from the first request */
  uint64_t limit_ns = (uint64_t)(secs * 1e9);
  int tp = 0;

  for (;;) {
    /* top up every connection */
    for (int i = 0; i < nconn; i++) {
      lconn *k = &cs[i];
      int added = 0;
      while ((int)k->inflight < depth && issued < total) {
        char head[64];
        uint64_t id = ++k->next_id;
        int hl = snprintf(head, sizeof head, "{\"jsonrpc\":\"2.0\",\"id\":%llu",
                          (unsigned long long)id);
        if (!http) out_add(k, head, (size_t)hl);
        out_add(k, tpl[tp].body, tpl[tp].len);
        tp = (tp + 1) % ntpl;
        k->ids[id % SLOTS] = id;
        k->sent_ns[id % SLOTS] = now_ns();
        k->inflight++;
        issued++;
        added = 1;
      }
      if (added || k->osent < k->olen) {
        ssize_t w = send(k->fd, k->out + k->osent, k->olen - k->osent, MSG_NOSIGNAL);
        if (w > 0) k->osent += (size_t)w;
        else if (w < 0 && errno != EAGAIN) {
          perror("send");
          return 2;
        }
        if (k->osent == k->olen) k->osent = k->olen = 0;
        int ww = k->olen > 0;
        if (ww != k->want_write) {
          struct epoll_event ev = {.events = EPOLLIN | (ww ? EPOLLOUT : 0u), .data.u32 = (uint32_t)i};
          epoll_ctl(ep, EPOLL_CTL_MOD, k->fd, &ev);
          k->want_write = ww;
        }
      }
    }
    if (m.done >= total) break;
    if (m.t_start && now_ns() - m.t_start > limit_ns) break;
    if (now_ns() - t_begin > limit_ns + 60ull * 1000000000ull) break;
    struct epoll_event evs[64];
    int ne = epoll_wait(ep, evs, 64, 1000);
    for (int e = 0; e < ne; e++) {
      lconn *k = &cs[evs[e].data.u32];
      if (!(evs[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
      for (;;) {
        if (k->icap - k->ilen < 65536) {
          k->icap = k->icap ? k->icap * 2 : 262144;
          k->in = realloc(k->in, k->icap);
        }
        ssize_t r = read(k->fd, k->in + k->ilen, k->icap - k->ilen);
        if (r < 0 && errno == EAGAIN) break;
        if (r <= 0) {
          fprintf(stderr, "pw_load: the server closed a connection\n");
          return 2;
        }
        k->ilen += (size_t)r;
        if ((size_t)r < 65536) break;
      }
      size_t pos = 0;
      for (;;) {
        if (!http) break;
        int status = 0;
        size_t n = http_response(k->in + pos, k->ilen - pos, &status);
        if (!n) break;
        pos += n;
        uint64_t t = now_ns(), id = ++k->next_answer;
        if (id > k->next_id) {
          bad++;
          continue;
        }
        k->inflight--;
        if (status != 200) {
          errors++;
          if (errors <= 3) fprintf(stderr, "pw_load: HTTP %d: %.*s\n", status, (int)(n < 300 ? n : 300), k->in + pos - n);
        }
        meter_answer(&m, t - k->sent_ns[id % SLOTS]);
      }
      for (;;) {
        if (http) break;
        char *nl = memchr(k->in + pos, '\n', k->ilen - pos);
        if (!nl) break;
        char *line = k->in + pos;
        size_t len = (size_t)(nl - line);
        pos += len + 1;
        uint64_t t = now_ns();
        char *ip = len > 24 ? memmem(line, len < 64 ? len : 64, "\"id\":", 5) : NULL;
        if (!ip) {
          bad++;
          continue;
        }
        char *after;
        uint64_t id = strtoull(ip + 5, &after, 10);
        if (k->ids[id % SLOTS] != id) {
          bad++;
          continue;
        }
        k->ids[id % SLOTS] = 0;
        k->inflight--;
        if (!strncmp(after, ",\"error\"", 8)) {
          errors++;
          if (errors <= 3) fprintf(stderr, "pw_load: %.*s\n", (int)(len < 300 ? len : 300), line);
        }
        meter_answer(&m, t - k->sent_ns[id % SLOTS]);
      }
      memmove(k->in, k->in + pos, k->ilen - pos);
      k->ilen -= pos;
    }
  }
  t_end = now_ns();
  double cpu1 = cpu_seconds(pids, npids);
  double main1 = cpu_seconds(pids, npids ? 1 : 0);
  if (!m.t_start) m.t_start = t_begin;
  double el = (double)(t_end - m.t_start) / 1e9;
  long nlat = m.nlat;
  uint64_t *lat = m.lat;
  qsort(lat, (size_t)nlat, sizeof *lat, cmp_u64);
#define PCT(p) (nlat ? (double)lat[(size_t)((double)(nlat - 1) * (p))] / 1000.0 : 0.0)
  double rate = el > 0 ? (double)nlat / el : 0;
  double cpu_us = nlat ? (cpu1 - m.cpu0) * 1e6 / (double)nlat : 0;
  double main_us = nlat ? (main1 - m.main0) * 1e6 / (double)nlat : 0;
  /* the server's CPU only when health gave its pids: otherwise not measured, not 0 */
  char cpu[128] = "";
  if (json) {
    if (npids) snprintf(cpu, sizeof cpu, ",\"server_cpu_us_per_req\":%.2f,\"main_cpu_us_per_req\":%.2f", cpu_us, main_us);
    printf("{\"conns\":%d,\"depth\":%d,\"requests\":%ld,\"seconds\":%.3f,\"rate\":%.1f,"
           "\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,"
           "\"errors\":%ld,\"malformed\":%ld%s,\"avg_req_bytes\":%zu}\n",
           nconn, depth, nlat, el, rate, PCT(0.5), PCT(0.9), PCT(0.99), PCT(0.999), PCT(1.0),
           errors, bad, cpu, bytes_in / (size_t)ntpl);
  } else {
    if (npids) snprintf(cpu, sizeof cpu, "server CPU %.1f us/req (supervisor %.1f, %d processes)", cpu_us, main_us, npids);
    printf("conns %d depth %d: %ld requests in %.2f s = %.0f/s; latency us p50 %.1f p90 %.1f "
           "p99 %.1f p999 %.1f max %.1f; errors %ld malformed %ld; %s\n",
           nconn, depth, nlat, el, rate, PCT(0.5), PCT(0.9), PCT(0.99), PCT(0.999), PCT(1.0),
           errors, bad, npids ? cpu : "server CPU not measured (no pids from health)");
  }
  for (int i = 0; i < nconn; i++) {
    close(cs[i].fd);
    free(cs[i].out);
    free(cs[i].in);
  }
  for (int i = 0; i < ntpl; i++) free(tpl[i].body);
  free(cs);
  free(tpl);
  free(lat);
  close(ep);
  return errors || bad ? 1 : 0;
}
