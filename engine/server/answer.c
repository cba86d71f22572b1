/*
** answer.c: a worker's answer to an evaluation, on its way to the client.
**
** With no decision log, or --log-sync none, the response line goes to the
** connection at once. Otherwise the supervisor appends the log record
** (the worker's fragment plus who asked and when) and, for sync always or
** batch, holds the response (a held answer in srv.held) until declog.c
** reports the record durable or written; a record that was lost turns the
** answer into a PW_RPC_LOG_FAILED error, so no result leaves unrecorded.
** A held answer past deadline + grace is answered with a deadline error;
** its record may still be written.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor.h"

static held *held_first(srv *s) {
  return s->held.head ? PW_QITEM(s->held.head, held, link) : NULL;
}

/* h's answer went out: it stops counting as in flight. */
static void held_answered(srv *s, held *h) {
  s->responses++;
  pw_stats_latency(s, h->t_recv);
  h->c->inflight--;
}

void pw_answer_log_done(void *arg, uint64_t upto, int ok) {
  srv *s = arg;
  held *h;
  while ((h = held_first(s)) && h->seq <= upto) {
    pw_queue_pop(&s->held);
    conn *c = h->c;
    if (!h->answered) {
      if (ok) {
        if (h->id_len) pw_conn_send(c, h->data, h->len);
      } else {
        char msg[512];
        const char *why = s->log ? pw_declog_error(s->log) : NULL;
        snprintf(msg, sizeof msg,
                 "%s; the evaluation was not recorded, so its result is withheld",
                 why ? why : "decision log write failed");
        if (h->id_len) pw_conn_error(c, h->data + h->len, h->id_len, PW_RPC_LOG_FAILED, msg);
        else pw_stats_error(s, PW_RPC_LOG_FAILED);
        pw_declog_refused(s->log, h->seq);
      }
      held_answered(s, h);
    }
    free(h);
    pw_conn_unref(c);
  }
  pw_serve_maybe_finish(s);
}

void pw_answer_log_note(void *arg, const char *msg) {
  (void)arg;
  pw_serve_warn("decision log: %s", msg);
}

/* The oldest answer waiting for its record has waited past the deadline. */
int pw_answer_log_stalled(srv *s) {
  held *h = held_first(s);
  return h && pw_worker_now_ns() - h->t_recv > SRV_MS(s->o.timeout_ms);
}

void pw_answer_sweep(srv *s, uint64_t now) {
  for (pw_qlink *l = s->held.head; l; l = l->next) {
    held *h = PW_QITEM(l, held, link);
    if (now < h->t_recv + SRV_HARD_NS(s)) break;
    if (h->answered) continue;
    h->answered = 1;
    held_answered(s, h);
    if (h->id_len)
      pw_conn_error(h->c, h->data + h->len, h->id_len, PW_RPC_DEADLINE,
                    "the decision log did not confirm the record within the deadline; the "
                    "result is withheld (the record may still be written)");
    else
      pw_stats_error(s, PW_RPC_DEADLINE);
    if (!h->c->closing) pw_conn_check(h->c);
  }
}

/* A held answer for r's response line p[0..rlen), made before the record
** is appended so that running out of memory fails the request unlogged. */
static held *hold_new(req *r, const char *p, size_t rlen) {
  held *hd = malloc(sizeof *hd + rlen + r->id_len);
  if (!hd) return NULL;
  hd->c = r->c;
  hd->t_recv = r->t_recv;
  hd->answered = 0;
  hd->len = rlen;
  hd->id_len = r->id_len;
  memcpy(hd->data, p, rlen);
  memcpy(hd->data + rlen, r->line + r->id_off, r->id_len);
  return hd;
}

/* Hold hd until record seq is durable. The held answer takes over r's
** reference to its connection; inflight stays counted until the answer is
** sent. Frees r. */
static void hold(srv *s, req *r, held *hd, uint64_t seq) {
  hd->seq = seq;
  pw_queue_push(&s->held, &hd->link);
  free(r);
}

/* Append r's decision-log record; 0 when the log refused it (r answered). */
static uint64_t log_record(srv *s, req *r, const pw_wire_hdr *h, const char *p, size_t rlen) {
  conn *c = r->c;
  pw_declog_rec rec;
  rec.request_id = r->id_len ? r->line + r->id_off : NULL;
  rec.request_id_len = r->id_len;
  rec.method = pw_rpc_method_name(r->method);
  rec.uid = c->uid;
  rec.gid = c->gid;
  rec.pid = c->pid;
  rec.frag = p + rlen;
  rec.frag_len = h->len - rlen;
  rec.duration_us = h->eval_ns / 1000;
  uint64_t seq = pw_declog_append(s->log, &rec);
  if (!seq) {
    char msg[512];
    const char *why = pw_declog_error(s->log);
    snprintf(msg, sizeof msg, "%s; the evaluation was not recorded, so its result is withheld",
             why ? why : "out of memory building the decision-log record");
    pw_req_fail(s, r, PW_RPC_LOG_FAILED, msg);
  }
  return seq;
}

/* ,"protocol":{...} for the record of lost request r: the protocol of g
** that r named (params.protocol; for cds, the service), as the worker's
** own record would have it. 0 when r named none of g's protocols, so it
** never reached one (the worker refuses it before evaluating): no record. */
static int lost_protocol(const generation *g, const req *r, pw_buf *f) {
  int is_cds = r->method == PW_M_CDS;
  char want[256];
  size_t at = f->len;
  int named = pw_rpc_param_string(r->line, r->len, is_cds ? "service" : "protocol", want, sizeof want);
  if (named < 0) return is_cds;
  const char *name = named ? want : NULL;   /* none named: the first */
  if (is_cds && !name) return 1;   /* discovery: no protocol */
  pw_buf_adds(f, ",\"protocol\":");
  int rc = pw_reloadlog_protocol(g, name, is_cds, f);
  if (rc == 0) return 1;
  f->len = at;   /* no such protocol (or, -2, not known: the record says none) */
  return rc == -2 || is_cds;
}

/* r's worker was lost while evaluating it (crash, or killed at the
** deadline): the request reached its protocol, so it leaves a record with
** its error kind and the protocol's identity (from g's READY payload),
** built here since the worker cannot send one. */
void pw_answer_log_lost(srv *s, const generation *g, req *r, int code, const char *msg) {
  if (!s->log || r->answered) return;
  pw_buf f = {0};
  pw_buf_addf(&f, "\"schema_version\":%d,\"engine\":\"%s\"", PW_RESULT_SCHEMA, PW_VERSION);
  if (!lost_protocol(g, r, &f)) {
    pw_buf_free(&f);
    return;
  }
  pw_buf_addf(&f, ",\"error\":{\"code\":%d,\"kind\":\"%s\",\"message\":", code,
              pw_rpc_code_kind(code));
  pw_buf_json_str(&f, msg);
  pw_buf_add(&f, "}", 1);
  if (r->method == PW_M_CDS) pw_httpd_log_lost(&f, r->line, r->len, code);
  if (!f.failed) {
    pw_declog_rec rec;
    memset(&rec, 0, sizeof rec);
    rec.request_id = r->id_len ? r->line + r->id_off : NULL;
    rec.request_id_len = r->id_len;
    rec.method = pw_rpc_method_name(r->method);
    rec.uid = r->c->uid;
    rec.gid = r->c->gid;
    rec.pid = r->c->pid;
    rec.frag = f.data;
    rec.frag_len = f.len;
    rec.duration_us = (pw_worker_now_ns() - r->t_recv) / 1000;
    (void)pw_declog_append(s->log, &rec);   /* the error reply goes out either way */
  }
  pw_buf_free(&f);
}

void pw_answer_response(srv *s, req *r, const pw_wire_hdr *h, const char *p) {
  if (r->answered) {
    pw_req_free(r);
    return;
  }
  size_t rlen = h->resp_len;
  if (rlen > h->len) rlen = h->len;
  if (h->code == PW_RPC_DEADLINE && rlen == 0) {
    char msg[200];
    snprintf(msg, sizeof msg, "no worker was free before the deadline (%u ms)", s->o.timeout_ms);
    pw_req_fail(s, r, PW_RPC_DEADLINE, msg);
    pw_req_free(r);
    return;
  }
  if (h->code && s->log && h->len > rlen) {   /* failed in its protocol: one record */
    if (!log_record(s, r, h, p, rlen)) {
      pw_req_free(r);
      return;
    }
  } else if (h->code == 0 && s->log) {
    held *hd = NULL;
    if (s->o.log_sync != PW_LOG_NONE && !(hd = hold_new(r, p, rlen))) {
      pw_req_fail(s, r, PW_RPC_INTERNAL,
                  "out of memory: the evaluation was not recorded, so its result is withheld");
      pw_req_free(r);
      return;
    }
    uint64_t seq = log_record(s, r, h, p, rlen);
    if (!seq) {
      free(hd);
      pw_req_free(r);
      return;
    }
    if (hd) {
      hold(s, r, hd, seq);
      return;
    }
  }
  r->answered = 1;
  r->c->inflight--;
  s->responses++;
  pw_stats_latency(s, r->t_recv);
  if (h->code) pw_stats_error(s, h->code);
  if (r->id_len) pw_conn_send(r->c, p, rlen);
  pw_req_free(r);
}
