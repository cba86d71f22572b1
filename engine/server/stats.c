/*
** stats.c: the counters behind the `stats` method: requests and errors by
** code, the latency histogram (log-linear buckets, exact below 32 us, 16
** sub-buckets per power of two above) and evaluations per protocol id;
** workers that keep failing; the supervisor's own memory (RSS and heap in
** use, for `stats`) and the trim that gives its free heap pages back.
*/
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "supervisor.h"

#if defined(PW_SANITIZE) || defined(__SANITIZE_ADDRESS__)   /* PW_SANITIZE: CMake's, for gcc and clang */
#define PW_ASAN 1
#endif
#ifdef PW_ASAN
/* the ASan runtime's (sanitizer/allocator_interface.h, which gcc's
** packages do not always install) */
size_t __sanitizer_get_current_allocated_bytes(void);
size_t __sanitizer_get_heap_size(void);
#endif

void pw_stats_latency(srv *s, uint64_t t_recv) {
  uint64_t us = (pw_worker_now_ns() - t_recv) / 1000;
  size_t i;
  if (us < 32) i = (size_t)us;
  else {
    int msb = 63 - __builtin_clzll(us);
    if (msb > 44) msb = 44;
    i = 32 + (size_t)(msb - 5) * 16 + (size_t)((us >> (msb - 4)) & 15);
    if (i >= SRV_LAT_BUCKETS) i = SRV_LAT_BUCKETS - 1;
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

uint64_t pw_stats_percentile(const srv *s, double p) {
  if (!s->lat_n) return 0;
  uint64_t want = (uint64_t)(p * (double)s->lat_n + 0.5), acc = 0;
  if (want < 1) want = 1;
  for (size_t i = 0; i < SRV_LAT_BUCKETS; i++) {
    acc += s->lat[i];
    if (acc >= want) {
      uint64_t v = lat_bucket_value(i);
      return v > s->lat_max_us ? s->lat_max_us : v;
    }
  }
  return s->lat_max_us;
}

void pw_stats_error(srv *s, int code) {
  s->errors++;
  for (int i = 0; i < SRV_CODE_SLOTS; i++) {
    if (s->codes[i].code == code || s->codes[i].code == 0) {
      s->codes[i].code = code;
      s->codes[i].n++;
      return;
    }
  }
}

int pw_stats_protocol(srv *s, const char *id) {
  for (int i = 0; i < s->nproto_stats; i++)
    if (strcmp(s->proto_stats[i].id, id) == 0) return i;
  proto_stat *n = realloc(s->proto_stats, (size_t)(s->nproto_stats + 1) * sizeof *n);
  if (!n) return -1;
  s->proto_stats = n;
  if (!(s->proto_stats[s->nproto_stats].id = strdup(id))) return -1;
  s->proto_stats[s->nproto_stats].evaluations = s->proto_stats[s->nproto_stats].errors = 0;
  return s->nproto_stats++;
}

/* {====== workers that keep failing (issue 12)                         */
/* A slot's streak counts its evaluations that ended in a protocol fault
** (script error, budget, memory, internal) and its workers lost (crash, or
** killed at the deadline), in a row; a successful evaluation ends it.
** Client errors (parse, params, facts) neither count nor end it. The
** streak belongs to the slot, so a worker that crashes each time it is
** respawned keeps adding to it. A slot index is below g->nw, which
** --workers keeps within PW_MAX_JOBS (the size of wfail). */

static void worker_fail(worker *w, int code) {
  w->g->wfail[w->idx].streak++;
  w->g->wfail[w->idx].code = code;
}

void pw_stats_worker_answer(worker *w, int code) {
  switch (code) {
    case 0: w->g->wfail[w->idx].streak = 0; break;
    case PW_RPC_PROTOCOL:
    case PW_RPC_BUDGET:
    case PW_RPC_MEMORY:
    case PW_RPC_INTERNAL: worker_fail(w, code); break;
    default: break;   /* the client's error, or no worker was free in time */
  }
}

void pw_stats_worker_lost(worker *w) {
  worker_fail(w, w->killed ? PW_RPC_DEADLINE : PW_RPC_WORKER_CRASH);
}

int pw_stats_worker_failing(const generation *g, int idx) {
  if (g->wfail[idx].streak < SRV_FAILING_AFTER) return 0;
  return (int)g->wfail[idx].streak;
}

/* }====== */

/* {====== the supervisor's own memory (issue 12, "memory must not grow") */
/* RSS from /proc/self/statm (procfs: never blocks), 0 if unreadable. */
static unsigned long long self_rss_kib(void) {
  char t[128];
  int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, t, sizeof t - 1);
  close(fd);
  if (n <= 0) return 0;
  t[n] = 0;
  unsigned long long size, res;
  if (sscanf(t, "%llu %llu", &size, &res) != 2) return 0;
  return res * (unsigned long long)sysconf(_SC_PAGESIZE) / 1024;
}

void pw_stats_memory(const srv *s, pw_buf *b) {
  pw_buf_addf(b, ",\"memory\":{\"rss_kib\":%llu,\"trims\":%llu,\"heap\":", self_rss_kib(),
              (unsigned long long)s->heap_trims);
#if defined(PW_ASAN)
  /* ASan owns malloc: its own figures (glibc's arena is nearly unused) */
  pw_buf_addf(b, "{\"allocator\":\"asan\",\"in_use\":%llu,\"arena\":%llu}}",
              (unsigned long long)__sanitizer_get_current_allocated_bytes(),
              (unsigned long long)__sanitizer_get_heap_size());
#elif defined(__GLIBC__)
  /* in_use: bytes in allocated chunks, both in the arenas (uordblks) and
  ** mmapped (hblkhd); arena: bytes the arenas hold from the kernel; free:
  ** what they hold unused (fordblks), of which releasable by malloc_trim
  ** at the top (keepcost) */
  struct mallinfo2 mi = mallinfo2();
  pw_buf_addf(b,
              "{\"allocator\":\"glibc\",\"in_use\":%zu,\"arena\":%zu,\"mmap\":%zu,"
              "\"free\":%zu,\"top_releasable\":%zu}}",
              mi.uordblks + mi.hblkhd, mi.arena, mi.hblkhd, mi.fordblks, mi.keepcost);
#else
  pw_buf_adds(b, "null}");
#endif
}

#if defined(__GLIBC__) && !defined(PW_ASAN)
/*
** Why the supervisor trims (the soak: RSS 5.5 -> 9.3 MiB in 150 s while
** the heap in use stayed at 0.8 MiB): glibc raises its mmap threshold to
** the size of each mmapped block freed (over 128 KiB: e.g. a line read
** up to --max-line, a never-reading client's output), and its trim
** threshold to twice that; from then on big request and reply buffers come
** from the arena, and what they free stays there (4 MiB arena, 3 MiB of
** it free). The workers (forked from this process) keep glibc's
** defaults: mallopt here would change their allocator too. malloc_trim(0)
** releases the arena's top and the free pages inside it; with less than
** SRV_TRIM_FREE free it is not worth a call. The pages it gave back still
** count as free in the arena, so the next call waits until RSS less the
** heap in use (what is resident but not in use: free pages touched again,
** or blocks freed since) has grown SRV_TRIM_RSS_KIB past its figure after
** the last call.
*/
static long long heap_unused_kib(void) {
  struct mallinfo2 mi = mallinfo2();
  return (long long)self_rss_kib() - (long long)((mi.uordblks + mi.hblkhd) / 1024);
}

void pw_stats_heap_trim(srv *s) {
  struct mallinfo2 mi = mallinfo2();
  if (mi.fordblks < SRV_TRIM_FREE) return;
  if (s->heap_trims && heap_unused_kib() < s->heap_trim_unused_kib + SRV_TRIM_RSS_KIB) return;
  malloc_trim(0);
  s->heap_trims++;
  s->heap_trim_unused_kib = heap_unused_kib();
}
#else
void pw_stats_heap_trim(srv *s) { (void)s; }
#endif

/* }====== */
