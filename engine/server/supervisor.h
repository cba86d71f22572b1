/*
** supervisor.h: the state of `pathwise serve`'s main process, shared by
** the files of engine/server only (server.h has the map of those files).
**
** Everything here runs on the one libuv loop thread. A "worker" is always
** a worker process (worker.h); a "generation" is the set of worker
** processes that loaded one version of the protocol sources (reload.c).
** A request (req) is owned by exactly one queue at a time: srv.pending
** until a worker takes it, then that worker's sent queue until its answer
** frame comes back; an answer that must wait for its decision-log record
** becomes a held answer in srv.held. Each of them counts one reference
** (refs) on its connection, which is freed only when none is left.
*/
#ifndef PW_SUPERVISOR_H
#define PW_SUPERVISOR_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/un.h>
#include <uv.h>

#include "buf.h"
#include "command.h"
#include "declog.h"
#include "gate.h"
#include "http.h"
#include "jwt.h"
#include "queue.h"
#include "rpc.h"
#include "worker.h"

/* {====== the server's own limits (shared ones: command.h, pathwise.h) == */

#define SRV_MAX_PROTOCOLS 64      /* --protocol given at most this often */
#define SRV_MAX_ALLOW 64          /* uids, and gids, in --allow-uid/--allow-gid */
#define SRV_MAX_WATCH (SRV_MAX_PROTOCOLS + PW_MAX_PLUGINS + 16)   /* directories watched */
#define SRV_MAX_SOURCE (16u << 20)   /* largest protocol file read */
#define SRV_LOAD_TIMEOUT_S 60     /* a new generation must be ready within */
#define SRV_LAT_BUCKETS (32 + 40 * 16)
#define SRV_CODE_SLOTS 24         /* distinct error codes counted */
#define SRV_FAILING_AFTER 5       /* failures in a row that make a worker "failing" */
#define SRV_SUN_PATH_MAX ((int)sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

/* }====== */

typedef struct srv srv;
typedef struct conn conn;
typedef struct req req;
typedef struct held held;
typedef struct worker worker;
typedef struct generation generation;
typedef struct waiter waiter;

typedef struct srv_opts {
  const char *socket;
  unsigned socket_mode;
  const char *protocol_files[SRV_MAX_PROTOCOLS];
  int nprotocol_files;
  const char *protocols_dir;
  pw_cmd_opts cmd;           /* the shared flags: --plugin, --memory, --instructions */
  int workers;
  const char *log_path;
  pw_log_sync log_sync;
  unsigned log_interval_ms;
  int log_facts;
  unsigned timeout_ms, grace_ms;
  size_t max_line;
  unsigned max_conns;
  unsigned idle_s;
  unsigned line_timeout_s;   /* a partial line older than this closes (0 = never) */
  unsigned write_timeout_s;  /* unsent output over max_wq this long closes (0 = never) */
  size_t max_wq;
  unsigned max_inflight;     /* per connection */
  unsigned worker_queue;     /* per worker */
  uint64_t worker_as;
  uint64_t worker_cpu;
  long allow_uid[SRV_MAX_ALLOW];
  int nallow_uid;
  long allow_gid[SRV_MAX_ALLOW];
  int nallow_gid;
  int watch;
  const char *http_path;      /* --http: CDS Hooks over HTTP/1.1 on this Unix socket */
  int http_port;             /* --http-port: ... and on 127.0.0.1 (0: any free port); -1 off */
  unsigned http_header_ms;   /* --http-header-timeout: request line and headers (0: none) */
  unsigned http_body_ms;     /* --http-body-timeout: the body, after the headers (0: none) */
  int http_no_auth;          /* --http-no-auth: no bearer-token check (testing only) */
  pw_jwt_config jwt;         /* --http-jwks, --http-issuer, --http-audience */
} srv_opts;

/* A stream's unsent output: appended to at will, written once per loop
** iteration by pw_outq_flush (conn.c). */
typedef struct pw_outq {
  pw_buf buf;                /* not yet handed to libuv */
  size_t queued;             /* bytes in uv_write requests */
} pw_outq;

struct req {                 /* an evaluate or check_orders request */
  pw_qlink link;             /* in srv.pending or in one worker's sent */
  conn *c;
  uint64_t tag, t_recv, deadline;
  uint16_t method;
  uint8_t answered, retries;
  uint32_t id_off, id_len;   /* id_len 0: notification */
  uint32_t len;
  char line[];
};

struct held {                /* an answer waiting for its log record */
  pw_qlink link;             /* in srv.held, in seq order */
  conn *c;
  uint64_t seq, t_recv;
  int answered;              /* the deadline passed first: an error went out */
  uint32_t id_len;
  size_t len;
  char data[];               /* response line, then the raw id */
};

struct waiter {              /* a reload request waiting for its generation */
  pw_qlink link;
  conn *c;
  size_t idlen;
  char id[];
};

struct conn {
  union {
    uv_pipe_t h;             /* a Unix socket (every listener but one) */
    uv_tcp_t tcp;            /* a loopback TCP connection (--http-port): the same handle */
  };
  srv *s;
  conn *prev, *next;
  conn *dnext;               /* in srv.dconns while dirty */
  int dirty;
  char *rb;
  size_t rlen, rcap, rpos, scan;
  pw_outq out;
  unsigned inflight;         /* requests not yet answered */
  unsigned refs;             /* reqs, helds and waiters pointing here */
  uint64_t last_ms;
  uint64_t line_ms;          /* when the partial line in rb began; 0: none */
  uint64_t stuck_ms;         /* since when unsent output is stuck (conn.c); 0: not */
  size_t stuck_unsent;       /* unsent output at the last sweep */
  long uid, gid, pid;
  int paused, eof, closing, closed, close_after_flush;
  pw_http_conn *http;        /* an HTTP connection (httpd.c), else NULL */
  int http_busy, http_keep;  /* a request is with the workers; keep-alive after it */
  int http_phase;            /* PW_HTTP_AT_IDLE, _AT_HEADERS or _AT_BODY (http.h), for the timeouts */
  uint64_t http_phase_ms;    /* uv_now when that phase began */
};

enum { W_STARTING, W_READY, W_LOST };

struct worker {              /* one worker process, seen from the supervisor */
  srv *s;
  generation *g;
  int idx;
  pid_t pid;
  uv_pipe_t ch;
  int ch_open;
  pw_worker_slot *slot;
  pw_worker_ring *ring;      /* its answer ring (worker.h), NULL: none */
  uint64_t ring_tail;        /* ring bytes consumed */
  pw_buf scratch;            /* a ring payload copied for a parsing reader */
  pw_outq out;
  int dirty;
  worker *dnext;             /* in srv.dworkers while dirty */
  char *rb;
  size_t rlen, rcap;
  pw_queue sent;             /* reqs handed to it, answered in this order */
  int state;
  int killed, reaped, retiring, lost;
  int status;
  uint64_t spawned_ns, progress_ns;
  worker *anext;             /* all workers */
};

enum { GEN_LOADING, GEN_ACTIVE, GEN_DRAINING };

struct generation {
  srv *s;
  unsigned num;
  int state;
  pw_rpc_protocol *protos;
  int nprotos;
  char **names, **srcs;
  pw_worker_cfg wcfg;
  worker **w;
  int nw, nready, alive;
  char *protocols_json;
  /* provenance (reloadlog.c): what g read (files_json: [{file, role,
  ** sha256}]), the digest of its plugin and base files (read by the
  ** supervisor before its workers load), the base files its digest
  ** covered, and what its workers reported: their protocols' provenance
  ** (prov_json, the decision log's protocol objects) and base files */
  char *files_json, *digest_bases, *prov_json, *base_files;
  char digest[65];
  int *stat_idx;             /* engine index -> srv.proto_stats index */
  int nstat_idx;
  pw_queue waiters;          /* reload requests answered when it loads */
  struct {                   /* per worker slot, across respawns (stats.c) */
    uint32_t streak;         /* evaluations failed or workers lost in a row */
    int code;                /* the last failure's error code */
  } wfail[PW_MAX_JOBS];
  uint64_t started_ns;
  unsigned backoff_ms;
  uv_timer_t respawn;
  uv_work_t read;            /* its files are read off the loop (reload.c) */
  int read_rc;               /* what that read said: 0, or -1 with read_err */
  char read_err[1024];
  generation *gnext;
};

typedef struct proto_stat {
  char *id;
  uint64_t evaluations, errors;
} proto_stat;

typedef struct codecount {
  int code;
  uint64_t n;
} codecount;

struct srv {
  uv_loop_t *loop;
  srv_opts o;
  uv_pipe_t listener;
  int listener_init;
  uv_work_t warm;            /* starts libuv's thread pool (serve.c open_log) */
  union {                    /* accepts and closes a connection with no memory */
    uv_pipe_t pipe;          /* from a Unix-socket listener */
    uv_tcp_t tcp;            /* from --http-port's */
  } shed;
  int shed_busy;
  unsigned shed_pending;     /* listeners (bits, conn.c) waiting for the spare handle */
  uv_pipe_t http_listener;   /* --http (httpd.c) */
  int http_init, http_bound;
  uv_tcp_t http_tcp;         /* --http-port, on 127.0.0.1 */
  int http_tcp_init;
  pw_jwt *jwt;               /* NULL with --http-no-auth */
  uint64_t http_refused;     /* requests refused with 401 */
  dev_t http_dev;
  ino_t http_ino;
  uv_check_t check;
  uv_idle_t idle;            /* active while output waits: no blocking poll */
  int idle_on;
  uv_timer_t tick, debounce, stop_timer;
  uv_signal_t sig_term, sig_int, sig_hup, sig_usr1, sig_chld;
  uv_fs_event_t watch[SRV_MAX_WATCH];
  char *watch_dir[SRV_MAX_WATCH];   /* the directory each watch[] watches */
  int nwatch;
  char watch_reason[64];     /* what the watcher saw change last */
  conn *conns;
  unsigned nconns;
  conn *dconns;
  worker *dworkers;
  worker *workers;
  pw_queue pending;          /* reqs no worker has taken yet */
  generation *generations, *active, *loading;
  generation *reading;       /* its files are being read, in libuv's thread pool */
  unsigned generation_seq;
  pw_queue held;             /* answers waiting for the log, by seq */
  pw_declog *log;
  uint64_t tag_seq;
  int stopping, finishing;
  int exit_code;
  int lock_fd;
  int activated_fd;          /* > 0: the listening socket systemd passed (sd.h) */
  dev_t sock_dev;
  ino_t sock_ino;
  int sock_bound;
  pw_buf rules_json;
  pw_queue next_waiters;     /* reload requests for the next generation */
  int reload_again;
  char *last_reload_error;   /* for clients: file names, no host paths; NULL none */
  char last_reload_reason[64];
  int last_reload_watch;     /* the file watcher asked for it (nothing else did since) */
  uint64_t start_ms;
  pw_gate_limits gate;
  uint64_t stall_ms;         /* see pick_worker (pool.c) */
  /* stats */
  uint64_t requests, responses, errors, by_method[PW_M__COUNT], unknown_method;
  codecount codes[SRV_CODE_SLOTS];
  uint64_t conns_total, conns_rejected, client_gone, accept_errors, accept_error_ms;
  uint64_t conns_stalled;    /* closed by --line-timeout or --write-timeout */
  uint64_t w_spawns, w_crashes, w_kills, reloads_ok, reloads_failed, moved;
  uint64_t ring_answers;     /* answers whose payload came through a ring */
  uint64_t heap_trims;       /* malloc_trim calls (pw_stats_heap_trim) */
  long long heap_trim_unused_kib;   /* RSS less heap in use after the last */
  uint64_t lat[SRV_LAT_BUCKETS];
  uint64_t lat_n, lat_max_us;
  proto_stat *proto_stats;
  int nproto_stats;
};

#define SRV_MS(ms) ((uint64_t)(ms) * 1000000u)   /* milliseconds in ns */
/* --timeout + --grace, in ns: past it from its start, an evaluation's
** worker is killed and an answer still waiting for the log is given up. */
#define SRV_HARD_NS(s) SRV_MS((uint64_t)(s)->o.timeout_ms + (s)->o.grace_ms)

/* {====== serve.c: the loop, signals, shutdown ====================== */
/* log lines at info, warning, error priority (a journal prefix, sd.h) */
void pw_serve_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void pw_serve_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void pw_serve_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void pw_serve_wake(srv *s);               /* output waits: flush this iteration */
void pw_serve_notify(const char *msg);    /* sd_notify, if under systemd */
void pw_serve_shutdown(srv *s, const char *why);
void pw_serve_maybe_finish(srv *s);       /* after anything that may end the wait */

/* {====== options.c ================================================= */
/* 0 to run, 1 when --help was printed, -1 after a message on stderr. */
int pw_options_parse(int argc, char **argv, srv_opts *o);

/* {====== listen.c: the socket file ================================= */
int pw_listen_prepare(srv *s);            /* 0 or a sysexits code */
int pw_listen_start(srv *s);              /* 0 or -1 (said why) */
void pw_listen_unlink(srv *s);

/* {====== conn.c: connections, framing, the write path ============== */
typedef void (*pw_outq_done)(void *owner, int status);
#define PW_OUTQ_GONE (-1)      /* the peer went away (EPIPE, ECONNRESET) */
#define PW_OUTQ_FAILED (-2)    /* libuv refused the write */
int pw_outq_flush(pw_outq *o, uv_stream_t *st, void *owner, pw_outq_done done);

void pw_conn_accept(uv_stream_t *listener, int status);
void pw_conn_send(conn *c, const char *p, size_t n);
void pw_conn_error(conn *c, const char *id, size_t idlen, int code, const char *msg);
void pw_conn_result_head(conn *c, const char *id, size_t idlen);
void pw_conn_dirty(conn *c);
void pw_conn_flush(conn *c);
void pw_conn_close(conn *c);
void pw_conn_check(conn *c);              /* after every change: close or resume */
void pw_conn_unref(conn *c);              /* a req, held or waiter let go of c */
void pw_conn_sweep(srv *s, int second);   /* every timeout (second: the whole-second ones too) */
void pw_conn_pause(conn *c);

/* {====== httpd.c: CDS Hooks over HTTP/1.1 on the same loop ========== */
int pw_httpd_listen(srv *s);               /* 0 or -1 (said why) */
void pw_httpd_unlink(srv *s);
void pw_httpd_process(conn *c);            /* parse and dispatch what c read */
void pw_httpd_answer(conn *c, const char *line, size_t n);   /* a response line */
void pw_httpd_error(conn *c, int code, const char *msg);
void pw_httpd_sweep(conn *c, uint64_t now);   /* idle keep-alive, slow headers, slow body */
int pw_httpd_status(int code);             /* the HTTP status for a JSON-RPC error */
/* ,"cds":{op, service, status} for the record of a lost cds request */
void pw_httpd_log_lost(pw_buf *f, const char *line, size_t len, int code);

/* {====== request.c: one request line, on the supervisor ============ */
void pw_request_line(conn *c, const char *p, size_t n);
void pw_req_fail(srv *s, req *r, int code, const char *msg);  /* answer now */
void pw_req_free(req *r);

/* {====== pool.c: the worker processes ============================== */
void pw_pool_dispatch(srv *s, req *r);
void pw_pool_drain(srv *s);               /* hand pending reqs to free workers */
void pw_pool_spawn(generation *g);        /* start the workers g is missing */
void pw_pool_flush(worker *w);
void pw_pool_retire(worker *w);           /* close its channel: it exits */
void pw_pool_end(generation *g);          /* SIGKILL a generation that failed */
void pw_pool_lost(worker *w, const char *why);
void pw_pool_watchdog(srv *s, uint64_t now);
void pw_pool_on_sigchld(uv_signal_t *h, int sig);

/* {====== answer.c: a worker's answer, through the decision log ====== */
void pw_answer_response(srv *s, req *r, const pw_wire_hdr *h, const char *p);
void pw_answer_log_done(void *arg, uint64_t upto, int ok);
void pw_answer_log_note(void *arg, const char *msg);
int pw_answer_log_stalled(srv *s);
void pw_answer_sweep(srv *s, uint64_t now);   /* held answers past the deadline */
/* r's worker, of generation g, was lost while evaluating r: its record */
void pw_answer_log_lost(srv *s, const generation *g, req *r, int code, const char *msg);

/* {====== reload.c: generations, reload, the file watcher =========== */
void pw_reload_start(srv *s, const char *reason, conn *c, const char *id, size_t idlen);
void pw_reload_activate(generation *g);   /* every worker of g is ready */
void pw_reload_fail(generation *g, const char *msg);
void pw_reload_collect(generation *g);    /* free g once drained and empty */
void pw_reload_release(generation *g);    /* its memory (the timer is closed) */
void pw_reload_answer(srv *s, pw_queue *waiters, int code, const char *msg,
                      const char *result);
void pw_reload_timeout(srv *s, uint64_t now);
void pw_reload_watch_bases(srv *s, const generation *g);   /* watch g's base files too */
/* {====== reloadlog.c: provenance of reloads ======================== */
/* Read g's plugin files and the base files named in g->digest_bases (the
** active generation's, copied): their names, sha256 and digest
** (g->files_json, g->digest). Runs in libuv's thread pool (reload.c): it
** touches only g and o. 0, or -1 out of memory. */
int pw_reloadlog_files(const srv_opts *o, generation *g);
/* Take the READY payload's "=" (provenance) and "@" (base file) lines. */
void pw_reloadlog_ready(generation *g, const char *p, size_t n);
/* Append the decision log's protocol object (as a worker's record has it)
** of g's protocol whose id is want (NULL: its first; cds: want is a CDS
** service id, pw_cds_service). 0; -1 none has that id; -2 g's protocols
** are not known (its READY payload was lost to out of memory). */
int pw_reloadlog_protocol(const generation *g, const char *want, int cds, pw_buf *b);
/* A decision-log event: kind "reload" (g now serves), "reload_refused"
** (g did not load: error), "error_cleared" (the files of the serving
** generation are back: error is the reload error that cleared). */
void pw_reloadlog_event(srv *s, const char *kind, const generation *g, const char *error);
void pw_reload_watch(srv *s);

/* {====== methods.c and stats.c: the cheap methods ================== */
void pw_methods_call(conn *c, int m, const char *id, size_t idlen);
void pw_stats_latency(srv *s, uint64_t t_recv);
void pw_stats_error(srv *s, int code);
int pw_stats_protocol(srv *s, const char *id);   /* -1: out of memory */
uint64_t pw_stats_percentile(const srv *s, double p);
/* a worker that keeps failing (issue 12): its answers and its loss */
void pw_stats_worker_answer(worker *w, int code);
void pw_stats_worker_lost(worker *w);
int pw_stats_worker_failing(const generation *g, int idx);   /* its streak, or 0 */
/* ,"memory":{...}: the supervisor's RSS and its heap (in_use, arena...) */
void pw_stats_memory(const srv *s, pw_buf *b);
/* Once a second: give the heap's free pages back to the kernel when it
** holds more than SRV_TRIM_FREE bytes unused and RSS less the heap in use
** grew SRV_TRIM_RSS_KIB since the last time (glibc; not under ASan). */
void pw_stats_heap_trim(srv *s);
#define SRV_TRIM_FREE ((size_t)1 << 20)
#define SRV_TRIM_RSS_KIB 512u

#endif
