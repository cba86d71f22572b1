/*
** stats.c: the counters behind the `stats` method: requests and errors by
** code, the latency histogram (log-linear buckets, exact below 32 us, 16
** sub-buckets per power of two above) and evaluations per protocol id.
*/
#include <stdlib.h>
#include <string.h>

#include "supervisor.h"

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
