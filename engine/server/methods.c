/*
** methods.c: the methods the supervisor answers itself, without a worker:
** health, stats, protocols, rules and reload (which reload.c answers once
** the new generation is ready or refused).
*/
#include <stddef.h>
#include <stdio.h>
#include <unistd.h>

#include "supervisor.h"

/* Is a worker slot of the serving generation failing (issue 12)? */
static int health_failing(srv *s) {
  for (int i = 0; s->active && i < s->active->nw; i++)
    if (pw_stats_worker_failing(s->active, i)) return 1;
  return 0;
}

/* Each worker slot: its pid, state and failure streak. */
static void health_workers(generation *g, pw_buf *b) {
  pw_buf_adds(b, ",\"state\":[");
  for (int i = 0; g && i < g->nw; i++) {
    worker *w = g->w[i] && !g->w[i]->lost ? g->w[i] : NULL;
    const char *st = pw_stats_worker_failing(g, i) ? "failing"
                     : !w                          ? "missing"
                     : w->state == W_READY         ? "ok"
                                                   : "starting";
    pw_buf_addf(b, "%s{\"index\":%d,\"pid\":%d,\"state\":\"%s\",\"consecutive_failures\":%u,"
                "\"last_error\":", i ? "," : "", i, w ? (int)w->pid : 0, st,
                (unsigned)g->wfail[i].streak);
    pw_buf_json_str(b, g->wfail[i].streak ? pw_rpc_code_kind(g->wfail[i].code) : NULL);
    pw_buf_add(b, "}", 1);
  }
  pw_buf_add(b, "]", 1);
}

static const char *health_status(srv *s) {
  if (s->stopping) return "stopping";
  if (health_failing(s)) return "degraded";
  if (s->log && (pw_declog_error(s->log) || pw_answer_log_stalled(s))) return "degraded";
  if (!s->active || s->active->nready < s->active->nw) return "degraded";
  return "ok";
}

static void method_health(srv *s, pw_buf *b) {
  generation *g = s->active;
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
  pw_buf_add(b, "]", 1);
  health_workers(g, b);
  pw_buf_addf(b, "},\"protocols\":%s,", g && g->protocols_json ? g->protocols_json : "[]");
  if (s->log) {
    const char *e = pw_declog_error(s->log);
    pw_buf_adds(b, "\"decision_log\":{\"enabled\":true,\"path\":");
    pw_buf_json_str(b, s->o.log_path);
    pw_buf_addf(b, ",\"sync\":\"%s\",\"ok\":%s,\"stalled\":%s,\"error\":",
                pw_declog_mode_name(s->o.log_sync), e ? "false" : "true",
                pw_answer_log_stalled(s) ? "true" : "false");
    pw_buf_json_str(b, e);
    pw_buf_adds(b, "},");
  } else {
    pw_buf_adds(b, "\"decision_log\":{\"enabled\":false},");
  }
  pw_buf_addf(b, "\"reload\":{\"in_progress\":%s,\"last_error\":", s->loading || s->reading ? "true" : "false");
  pw_buf_json_str(b, s->last_reload_error);
  pw_buf_addf(b, "},\"connections\":%u}", s->nconns);
}

#define ULL(x) ((unsigned long long)(x))

static void stats_requests(srv *s, pw_buf *b) {
  pw_buf_addf(b,
              "{\"requests\":%llu,\"responses\":%llu,\"errors\":%llu,\"in_flight\":%llu,"
              "\"queued\":%u,\"methods\":{",
              ULL(s->requests), ULL(s->responses), ULL(s->errors),
              ULL(s->requests - s->responses), s->pending.n);
  for (int m = 1; m < PW_M__COUNT; m++)
    pw_buf_addf(b, "%s\"%s\":%llu", m > 1 ? "," : "", pw_rpc_method_name(m),
                ULL(s->by_method[m]));
  pw_buf_addf(b, ",\"unknown\":%llu},\"error_codes\":{", ULL(s->unknown_method));
  for (int i = 0; i < SRV_CODE_SLOTS && s->codes[i].code; i++)
    pw_buf_addf(b, "%s\"%d\":%llu", i ? "," : "", s->codes[i].code, ULL(s->codes[i].n));
  pw_buf_addf(b,
              "},\"latency_us\":{\"count\":%llu,\"p50\":%llu,\"p90\":%llu,\"p99\":%llu,"
              "\"p999\":%llu,\"max\":%llu},\"protocols\":{",
              ULL(s->lat_n), ULL(pw_stats_percentile(s, 0.50)),
              ULL(pw_stats_percentile(s, 0.90)), ULL(pw_stats_percentile(s, 0.99)),
              ULL(pw_stats_percentile(s, 0.999)), ULL(s->lat_max_us));
  for (int i = 0; i < s->nproto_stats; i++) {
    if (i) pw_buf_add(b, ",", 1);
    pw_buf_json_str(b, s->proto_stats[i].id);
    pw_buf_addf(b, ":{\"evaluations\":%llu,\"errors\":%llu}",
                ULL(s->proto_stats[i].evaluations), ULL(s->proto_stats[i].errors));
  }
  pw_buf_add(b, "}", 1);
}

/* ,"NAME":[..]: one counter of each live worker's shared slot (served;
** its Lua states' bytes after its last request and how often it rebuilt
** one, handler.c). */
static void stats_slots(const generation *g, pw_buf *b, const char *name, size_t field) {
  pw_buf_addf(b, ",\"%s\":[", name);
  int first = 1;
  for (int i = 0; g && i < g->nw; i++) {
    if (!g->w[i] || g->w[i]->lost) continue;
    _Atomic uint64_t *v = (_Atomic uint64_t *)((char *)g->w[i]->slot + field);
    pw_buf_addf(b, "%s%llu", first ? "" : ",", ULL(atomic_load(v)));
    first = 0;
  }
  pw_buf_add(b, "]", 1);
}

static void stats_workers(srv *s, pw_buf *b) {
  pw_buf_addf(b,
              ",\"connections\":{\"open\":%u,\"total\":%llu,\"rejected\":%llu,"
              "\"vanished\":%llu,\"stalled\":%llu},\"workers\":{\"spawned\":%llu,\"crashed\":%llu,"
              "\"killed\":%llu,\"requests_moved\":%llu,",
              s->nconns, ULL(s->conns_total), ULL(s->conns_rejected), ULL(s->client_gone),
              ULL(s->conns_stalled), ULL(s->w_spawns), ULL(s->w_crashes), ULL(s->w_kills), ULL(s->moved));
  pw_buf_addf(b, "\"answers_by_ring\":%llu", ULL(s->ring_answers));
  stats_slots(s->active, b, "served", offsetof(pw_worker_slot, served));
  stats_slots(s->active, b, "state_bytes", offsetof(pw_worker_slot, state_bytes));
  stats_slots(s->active, b, "state_rebuilds", offsetof(pw_worker_slot, rebuilds));
  pw_buf_addf(b, "},\"reloads\":{\"ok\":%llu,\"failed\":%llu}", ULL(s->reloads_ok),
              ULL(s->reloads_failed));
}

static void method_stats(srv *s, pw_buf *b) {
  stats_requests(s, b);
  stats_workers(s, b);
  if (s->log) {
    pw_declog_stats ls;
    pw_declog_get_stats(s->log, &ls);
    pw_buf_addf(b,
                ",\"decision_log\":{\"records\":%llu,\"commits\":%llu,\"syncs\":%llu,"
                "\"bytes\":%llu,\"last_seq\":%llu,\"lost\":%llu}",
                ULL(ls.records), ULL(ls.commits), ULL(ls.syncs), ULL(ls.bytes),
                ULL(ls.last_seq), ULL(ls.lost));
  }
  pw_stats_memory(s, b);
  pw_buf_add(b, "}", 1);
}

/* Administrative methods (reload) are for the server's own uid and root
** only, by the peer credentials read at accept (SO_PEERCRED, conn.c;
** issue 12). 1 when c may call method m; else c got an error reply. */
static int admin_allowed(conn *c, int m, const char *id, size_t idlen) {
  srv *s = c->s;
  if (m != PW_M_RELOAD) return 1;
  long me = (long)geteuid();
  if (c->uid >= 0 && (c->uid == me || c->uid == 0)) return 1;
  char msg[200];
  snprintf(msg, sizeof msg,
           "%s is an administrative method: only the server's uid %ld or root may call it "
           "(this client is uid %ld)",
           pw_rpc_method_name(m), me, c->uid);
  pw_serve_warn("refused %s from uid %ld gid %ld pid %ld", pw_rpc_method_name(m), c->uid,
                c->gid, c->pid);
  s->responses++;
  if (idlen) pw_conn_error(c, id, idlen, PW_RPC_FORBIDDEN, msg);
  else pw_stats_error(s, PW_RPC_FORBIDDEN);
  return 0;
}

void pw_methods_call(conn *c, int m, const char *id, size_t idlen) {
  srv *s = c->s;
  if (!admin_allowed(c, m, id, idlen)) return;
  if (m == PW_M_RELOAD) {
    if (idlen) {
      pw_reload_start(s, "reload method", c, id, idlen);
    } else {
      s->responses++;
      pw_reload_start(s, "reload method", NULL, NULL, 0);
    }
    return;
  }
  s->responses++;
  if (!idlen || c->closing) return;   /* a notification gets no answer */
  pw_conn_result_head(c, id, idlen);
  switch (m) {
    case PW_M_HEALTH: method_health(s, &c->out.buf); break;
    case PW_M_STATS: method_stats(s, &c->out.buf); break;
    case PW_M_RULES: pw_buf_add(&c->out.buf, s->rules_json.data, s->rules_json.len); break;
    case PW_M_PROTOCOLS:
      pw_buf_adds(&c->out.buf, s->active && s->active->protocols_json
                                    ? s->active->protocols_json
                                    : "[]");
      break;
    default: pw_buf_adds(&c->out.buf, "null"); break;
  }
  pw_buf_add(&c->out.buf, "}\n", 2);
  pw_conn_dirty(c);
}
