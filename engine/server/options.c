/*
** options.c: `pathwise serve`'s command line: every option's default (in
** one table, which --help prints from), its range, and the checks across
** options. Nothing here touches the socket or the protocols.
*/
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "command.h"
#include "supervisor.h"

static const srv_opts defaults = {
  .socket_mode = 0660,
  .log_sync = PW_LOG_ALWAYS,
  .log_interval_ms = 1000,
  .timeout_ms = 2000,
  .grace_ms = 250,
  .max_line = 1u << 20,
  .max_conns = 256,
  .idle_s = 300,
  .line_timeout_s = 30,
  .write_timeout_s = 30,
  .max_wq = 8u << 20,
  .max_inflight = 1024,
  .worker_queue = 16,
  .worker_as = 1024ull << 20,
  .worker_cpu = 30,
  .watch = 1,
  .http_port = -1,
  .http_header_ms = 10000,
  .http_body_ms = 30000,
};

static void usage(FILE *f) {
  const srv_opts *d = &defaults;
  fprintf(f,
"usage: pathwise serve --socket PATH [options]\n"
"\n"
"Serve evaluations over a local Unix socket: newline-delimited JSON-RPC 2.0,\n"
"one request object per line. Methods: evaluate {facts, protocol?, format?,\n"
"trace?}, check_orders {facts, orders}, protocols, rules, reload, health, stats.\n"
"Evaluations run in supervised worker processes; see README (Server).\n"
"\n"
"Protocols (default: $PATHWISE_PROTOCOL, else the bundled guideline):\n"
"  --protocol FILE         load FILE (repeatable)\n"
"  --protocols DIR         load every DIR/*.lua\n"
"  --plugin FILE           add a local-rule plugin (repeatable)\n"
"  --no-watch              do not reload when a protocol, plugin or base file changes\n"
"Socket:\n"
"  --socket PATH           the socket file (at most %d bytes); PATH.lock beside it\n"
"  --socket-mode MODE      octal mode the file is created with (default 0%o)\n"
"  --allow-uid UID[,UID]   only these peer uids may connect (repeatable)\n"
"  --allow-gid GID[,GID]   ... or peers whose primary gid is one of these\n"
"CDS Hooks 2.0 over HTTP/1.1 (the same workers and decision log):\n"
"  --http PATH             serve GET /cds-services, POST /cds-services/{id} and\n"
"                          .../feedback on this Unix socket (same mode and peer checks)\n"
"  --http-port N           the same HTTP service over TCP on 127.0.0.1:N only\n"
"                          (loopback, for local testing; 0 = a free port, named\n"
"                          at start); no peer checks, so not with --allow-uid/gid\n"
"  --http-jwks FILE        verify each request's bearer JWT (RS256, ES384) with\n"
"                          the keys of this JWKS file; failures answer 401\n"
"  --http-issuer ISS       an allowed iss (repeatable; at least one)\n"
"  --http-audience URL     the aud tokens must carry (this service's base URL)\n"
"  --http-no-auth          accept requests without a token (local testing only;\n"
"                          the server warns at start)\n"
"  --http-header-timeout MS  answer 408 and close when a request's line and\n"
"                          headers take longer than MS from its first byte\n"
"                          (default %u, 0 = none)\n"
"  --http-body-timeout MS  ... when its body takes longer than MS after the\n"
"                          headers (default %u, 0 = none). Between requests, an\n"
"                          HTTP connection idle for --idle-timeout is closed.\n"
"Workers and limits:\n"
"  --workers N             worker processes (default: the number of cores)\n"
"  --timeout MS            deadline of one request (default %u)\n"
"  --grace MS              after the deadline, before a worker is killed (default %u)\n"
"  --instructions N        Lua instruction budget per evaluation (engine default)\n"
"  --memory BYTES          memory cap of one Lua state (engine default)\n"
"  --worker-memory MIB     RLIMIT_AS of a worker process (default %llu, 0 = none)\n"
"  --worker-cpu SEC        RLIMIT_CPU headroom of a worker (default %llu, 0 = none)\n"
"  --max-line BYTES        longest request line (default %zu)\n"
"  --max-connections N     (default %u)\n"
"  --max-inflight N        unanswered requests per connection before reading\n"
"                          pauses (default %u)\n"
"  --max-write-queue BYTES unsent answers per connection before reading pauses\n"
"                          (default %zu)\n"
"  --worker-queue N        requests handed to one worker at a time (default %u)\n"
"  --idle-timeout SEC      close connections idle this long (default %u, 0 = never)\n"
"  --line-timeout SEC      close a connection whose unfinished request line is\n"
"                          older than this (slowloris; default %u, 0 = never)\n"
"  --write-timeout SEC     close a connection whose unsent answers stayed over\n"
"                          --max-write-queue this long (a client that never\n"
"                          reads; default %u, 0 = never)\n"
"Decision log:\n"
"  --log FILE              append one JSON line per evaluation (created 0600)\n"
"  --log-sync MODE         always (default): answer after fdatasync (group commit);\n"
"                          batch: answer after write, fdatasync every interval;\n"
"                          none: answer at once\n"
"  --log-sync-interval MS  batch mode period (default %u)\n"
"  --log-facts             also log the facts as received (default: their sha256)\n"
"\n"
"Signals: SIGHUP reloads the protocols, SIGUSR1 reopens the log, SIGTERM and\n"
"SIGINT stop accepting, finish what is in flight, flush the log, remove the\n"
"socket and exit 0.\n"
"exit codes: 0 stopped cleanly, 64 usage, 66 no protocol file, 69 already\n"
"running, 71/73 system errors, 78 a protocol did not load or pass its examples\n",
          SRV_SUN_PATH_MAX, d->socket_mode, d->http_header_ms, d->http_body_ms, d->timeout_ms, d->grace_ms,
          (unsigned long long)(d->worker_as >> 20), (unsigned long long)d->worker_cpu,
          d->max_line, d->max_conns, d->max_inflight, d->max_wq, d->worker_queue, d->idle_s,
          d->line_timeout_s, d->write_timeout_s,
          d->log_interval_ms);
}

static int parse_u64(const char *s, uint64_t *v, int base) {
  char *end;
  if (!s || !*s || *s == '-') return -1;
  errno = 0;
  unsigned long long x = strtoull(s, &end, base);
  if (errno || *end) return -1;
  *v = x;
  return 0;
}

static int parse_ids(const char *arg, long *list, int *n) {
  char *copy = strdup(arg), *save = NULL;
  if (!copy) return -1;
  for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    uint64_t v;
    if (parse_u64(t, &v, 10) != 0 || v > 0x7fffffff || *n >= SRV_MAX_ALLOW) {
      free(copy);
      return -1;
    }
    list[(*n)++] = (long)v;
  }
  free(copy);
  return 0;
}

enum {
  O_SOCKET = 256, O_SOCKET_MODE, O_PROTOCOLS, O_WORKERS, O_LOG,
  O_LOG_SYNC, O_LOG_INTERVAL, O_LOG_FACTS, O_TIMEOUT, O_GRACE, O_MAX_LINE, O_MAX_CONNS,
  O_IDLE, O_LINE_TIMEOUT, O_WRITE_TIMEOUT, O_MAX_WQ, O_MAX_INFLIGHT, O_WORKER_QUEUE, O_WORKER_MEM,
  O_WORKER_CPU, O_ALLOW_UID, O_ALLOW_GID, O_NO_WATCH, O_HTTP, O_HTTP_PORT, O_HTTP_HEADER_TIMEOUT, O_HTTP_BODY_TIMEOUT, O_HTTP_NO_AUTH, O_HTTP_JWKS, O_HTTP_ISSUER,
  O_HTTP_AUDIENCE, O_HELP
};

static const struct option lo[] = {
  {"socket", required_argument, 0, O_SOCKET},
  {"socket-mode", required_argument, 0, O_SOCKET_MODE},
  {"http", required_argument, 0, O_HTTP},
  {"http-port", required_argument, 0, O_HTTP_PORT},
  {"http-header-timeout", required_argument, 0, O_HTTP_HEADER_TIMEOUT},
  {"http-body-timeout", required_argument, 0, O_HTTP_BODY_TIMEOUT},
  {"http-no-auth", no_argument, 0, O_HTTP_NO_AUTH},
  {"http-jwks", required_argument, 0, O_HTTP_JWKS},
  {"http-issuer", required_argument, 0, O_HTTP_ISSUER},
  {"http-audience", required_argument, 0, O_HTTP_AUDIENCE},
  PW_OPT_LONG_PROTOCOL,
  {"protocols", required_argument, 0, O_PROTOCOLS},
  PW_OPT_LONG_PLUGIN,
  {"workers", required_argument, 0, O_WORKERS},
  {"log", required_argument, 0, O_LOG},
  {"log-sync", required_argument, 0, O_LOG_SYNC},
  {"log-sync-interval", required_argument, 0, O_LOG_INTERVAL},
  {"log-facts", no_argument, 0, O_LOG_FACTS},
  {"timeout", required_argument, 0, O_TIMEOUT},
  {"grace", required_argument, 0, O_GRACE},
  {"max-line", required_argument, 0, O_MAX_LINE},
  {"max-connections", required_argument, 0, O_MAX_CONNS},
  {"idle-timeout", required_argument, 0, O_IDLE},
  {"line-timeout", required_argument, 0, O_LINE_TIMEOUT},
  {"write-timeout", required_argument, 0, O_WRITE_TIMEOUT},
  {"max-write-queue", required_argument, 0, O_MAX_WQ},
  {"max-inflight", required_argument, 0, O_MAX_INFLIGHT},
  {"worker-queue", required_argument, 0, O_WORKER_QUEUE},
  PW_OPT_LONG_MEMORY,
  PW_OPT_LONG_INSTRUCTIONS,
  {"worker-memory", required_argument, 0, O_WORKER_MEM},
  {"worker-cpu", required_argument, 0, O_WORKER_CPU},
  {"allow-uid", required_argument, 0, O_ALLOW_UID},
  {"allow-gid", required_argument, 0, O_ALLOW_GID},
  {"no-watch", no_argument, 0, O_NO_WATCH},
  {"help", no_argument, 0, O_HELP},
  {0, 0, 0, 0}
};

/* An option whose value is a number: store it; 0, or -1 when out of range. */
static int set_number(srv_opts *o, int c, uint64_t v) {
  int bad = 0;
  switch (c) {
    case O_WORKERS: bad = v < 1 || v > PW_MAX_JOBS; o->workers = (int)v; break;
    case O_LOG_INTERVAL: bad = v < 1 || v > 3600000; o->log_interval_ms = (unsigned)v; break;
    case O_TIMEOUT: bad = v < 1 || v > 3600000; o->timeout_ms = (unsigned)v; break;
    case O_GRACE: bad = v > 600000; o->grace_ms = (unsigned)v; break;
    case O_MAX_LINE: bad = v < 1024 || v > (256u << 20); o->max_line = (size_t)v; break;
    case O_MAX_CONNS: bad = v < 1 || v > 100000; o->max_conns = (unsigned)v; break;
    case O_IDLE: bad = v > 86400 * 7; o->idle_s = (unsigned)v; break;
    case O_LINE_TIMEOUT: bad = v > 86400; o->line_timeout_s = (unsigned)v; break;
    case O_WRITE_TIMEOUT: bad = v > 86400; o->write_timeout_s = (unsigned)v; break;
    case O_MAX_WQ: bad = v < 65536; o->max_wq = (size_t)v; break;
    case O_MAX_INFLIGHT: bad = v < 1 || v > 1000000; o->max_inflight = (unsigned)v; break;
    case O_WORKER_QUEUE: bad = v < 1 || v > 100000; o->worker_queue = (unsigned)v; break;
    case O_WORKER_MEM: bad = v > (1u << 22); o->worker_as = v << 20; break;
    case O_WORKER_CPU: o->worker_cpu = v; break;
    case O_HTTP_PORT: bad = v > 65535; o->http_port = (int)v; break;
    case O_HTTP_HEADER_TIMEOUT: bad = v > 3600000; o->http_header_ms = (unsigned)v; break;
    case O_HTTP_BODY_TIMEOUT: bad = v > 3600000; o->http_body_ms = (unsigned)v; break;
    default: bad = 1;
  }
  return bad ? -1 : 0;
}

static int set_ids(srv_opts *o, int c, const char *a) {
  int uid = c == O_ALLOW_UID;
  if (parse_ids(a, uid ? o->allow_uid : o->allow_gid, uid ? &o->nallow_uid : &o->nallow_gid)) {
    pw_serve_err("--allow-%s: expected numeric %ss separated by commas; got '%s'",
                 uid ? "uid" : "gid", uid ? "uid" : "gid", a);
    return -1;
  }
  return 0;
}

/* An option whose value is not a number: 0, -1 after a message, or 1 when
** c is not one of them. */
static int set_text(srv_opts *o, int c, const char *a) {
  uint64_t v;
  switch (c) {
    case O_SOCKET: o->socket = a; return 0;
    case O_HTTP: o->http_path = a; return 0;
    case O_HTTP_JWKS: o->jwt.jwks_path = a; return 0;
    case O_HTTP_AUDIENCE: o->jwt.audience = a; return 0;
    case O_HTTP_ISSUER:
      if (o->jwt.nissuers >= PW_JWT_MAX_ISSUERS) {
        pw_serve_say("--http-issuer: at most %d", PW_JWT_MAX_ISSUERS);
        return -1;
      }
      o->jwt.issuers[o->jwt.nissuers++] = a;
      return 0;
    case O_SOCKET_MODE:
      if (parse_u64(a, &v, 8) != 0 || v > 0777 || (v & 0600) != 0600) {
        pw_serve_err("--socket-mode: expected an octal mode that lets the owner read and "
                     "write, such as 0660 or 0600; got '%s'", a);
        return -1;
      }
      o->socket_mode = (unsigned)v;
      return 0;
    case PW_OPT_PROTOCOL:   /* repeatable here: not the shared meaning */
      if (o->nprotocol_files >= SRV_MAX_PROTOCOLS) {
        pw_serve_err("--protocol: at most %d", SRV_MAX_PROTOCOLS);
        return -1;
      }
      o->protocol_files[o->nprotocol_files++] = a;
      return 0;
    case O_PROTOCOLS: o->protocols_dir = a; return 0;
    case O_LOG: o->log_path = a; return 0;
    case O_LOG_SYNC:
      if (strcmp(a, "always") == 0) o->log_sync = PW_LOG_ALWAYS;
      else if (strcmp(a, "batch") == 0) o->log_sync = PW_LOG_BATCH;
      else if (strcmp(a, "none") == 0) o->log_sync = PW_LOG_NONE;
      else {
        pw_serve_err("--log-sync: expected always, batch or none; got '%s'", a);
        return -1;
      }
      return 0;
    case O_ALLOW_UID:
    case O_ALLOW_GID: return set_ids(o, c, a);
    default: {   /* --plugin, --memory, --instructions */
      char msg[200];
      int rc = pw_cmd_option(c, a, &o->cmd, msg, sizeof msg);
      if (rc < 0) pw_serve_err("%s", msg);
      return rc < 0 ? -1 : rc > 0 ? 0 : 1;
    }
  }
}

/* What holds across options, once all are read. */
static int check_opts(srv_opts *o) {
  if (!o->socket) {
    pw_serve_err("--socket PATH is required (see --help)");
    return -1;
  }
  int http = o->http_path || o->http_port >= 0;
  if (o->http_port >= 0 && (o->nallow_uid || o->nallow_gid)) {
    pw_serve_err("--http-port: TCP has no peer credentials, so --allow-uid/--allow-gid cannot "
                 "apply to it; use --http PATH with them");
    return -1;
  }
  if (http && !o->http_no_auth &&
      (!o->jwt.jwks_path || !o->jwt.nissuers || !o->jwt.audience)) {
    pw_serve_say("--http/--http-port: give --http-jwks FILE, --http-issuer ISS and --http-audience URL "
                 "(or --http-no-auth, for local testing only)");
    return -1;
  }
  o->jwt.leeway_s = 60;
  if (o->http_path && strlen(o->http_path) > (size_t)SRV_SUN_PATH_MAX) {
    pw_serve_say("--http: the path is longer than %d bytes", SRV_SUN_PATH_MAX);
    return -1;
  }
  if (o->protocols_dir && o->nprotocol_files) {
    pw_serve_err("give --protocol FILE or --protocols DIR, not both");
    return -1;
  }
  if (!o->protocols_dir && !o->nprotocol_files)
    o->protocol_files[o->nprotocol_files++] = pw_cmd_default_protocol();
  if (!o->workers) o->workers = pw_cmd_cores();
  if (o->worker_as && o->cmd.lim.memory && o->worker_as < o->cmd.lim.memory * 2 + (64u << 20)) {
    pw_serve_err("--worker-memory must leave room for --memory (at least twice it plus 64 MiB)");
    return -1;
  }
  return 0;
}

int pw_options_parse(int argc, char **argv, srv_opts *o) {
  *o = defaults;
  optind = 1;
  opterr = 0;
  int c, li = -1;
  while ((c = getopt_long(argc, argv, "h", lo, &li)) != -1) {
    const char *a = optarg;
    const char *name = li >= 0 ? lo[li].name : "?";   /* for messages */
    li = -1;
    if (c == 'h' || c == O_HELP) {
      usage(stdout);
      return 1;
    }
    if (c == O_LOG_FACTS) {
      o->log_facts = 1;
      continue;
    }
    if (c == O_NO_WATCH) {
      o->watch = 0;
      continue;
    }
    if (c == O_HTTP_NO_AUTH) {
      o->http_no_auth = 1;
      continue;
    }
    if (c == '?') {
      if (optopt > 0 && optopt < 128)
        pw_serve_err("option -%c: unknown or missing its value (see --help)", optopt);
      else pw_serve_err("%s: unknown option or missing value (see --help)", argv[optind - 1]);
      return -1;
    }
    int rc = set_text(o, c, a);
    if (rc < 0) return -1;
    if (rc == 0) continue;
    uint64_t v = 0;
    if (parse_u64(a, &v, 10) != 0) {
      pw_serve_err("--%s: expected a non-negative integer; got '%s'", name, a);
      return -1;
    }
    if (set_number(o, c, v) != 0) {
      pw_serve_err("--%s: %s is out of range (see --help)", name, a);
      return -1;
    }
  }
  if (optind < argc) {
    pw_serve_err("unexpected argument '%s' (see --help)", argv[optind]);
    return -1;
  }
  return check_opts(o);
}
