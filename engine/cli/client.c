/*
** client.c: `pathwise client`, a small JSON-RPC client for `pathwise serve`.
**
** It sends every request at once (pipelined), half-closes the connection
** and reads until the server closes it, which the server does once every
** request has been answered. A poll loop writes and reads together, so a
** large batch cannot deadlock on full socket buffers.
*/
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "command.h"
#include "engine.h"
#include "file.h"
#include "rpc.h"
#include "server.h"

static const char *const usage_client =
  "usage: pathwise client --socket PATH [options] [FILE|-]...\n"
  "\n"
  "Send patient facts or raw JSON-RPC lines to a running `pathwise serve` and\n"
  "print the answers. Each FILE holds one facts object (evaluated in order,\n"
  "pipelined on one connection) or JSON-RPC request lines (sent as they are).\n"
  "With no FILE and no --method, reads stdin.\n"
  "\n"
  "  -s, --socket PATH       the server's socket (default: $PATHWISE_SOCKET)\n"
  "  -m, --method NAME       evaluate (default with files), check_orders, or a\n"
  "                          method without facts: health, stats, protocols,\n"
  "                          rules, reload\n"
  "      --params JSON       the params object for --method\n"
  "  -p, --protocol ID       evaluate with this loaded protocol\n"
  "  -f, --format json|text  result format of evaluate (default json)\n"
  "  -t, --trace             ask for the trace\n"
  "  -o, --orders A,B,...    check these order ids (method check_orders)\n"
  "  -r, --raw               the input is JSON-RPC lines: send them as they are\n"
  "                          and print every response line\n"
  "      --timeout SEC       give up when the server is silent this long (30)\n"
  "  -h, --help              this help\n"
  "\n"
  "Output: for facts, each result exactly as `pathwise eval --format json`\n"
  "prints it (or the text report); for JSON-RPC lines, the response lines.\n"
  "exit codes: 0 ok, 64 usage, 65 the server refused the input (invalid\n"
  "facts or request), 66 no input file, 69 server unavailable or refusing\n"
  "(busy, forbidden, decision log down), 70 protocol, budget or worker\n"
  "error, 74 I/O error\n";

typedef struct copts {
  const char *socket, *method, *params, *protocol, *format, *orders;
  int trace, raw;
  int timeout_s;
} copts;

static int cl_usage(const char *fmt, const char *arg) {
  fprintf(stderr, "pathwise client: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n%s", usage_client);
  return PW_EX_USAGE;
}

static int cl_connect(const char *path) {
  struct sockaddr_un sa;
  size_t l = strlen(path);
  if (l == 0 || l >= sizeof sa.sun_path) {
    fprintf(stderr, "pathwise client: socket path too long (%zu bytes, at most %zu)\n", l,
            sizeof sa.sun_path - 1);
    return -1;
  }
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path, path, l);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    fprintf(stderr, "pathwise client: cannot connect to %s: %s\n", path, strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

/* Is the first non-blank line of b a JSON-RPC request? */
static int looks_raw(const pw_buf *b) {
  static const char *const k[] = {"jsonrpc"};
  pw_span sp[1];
  const char *p = b->data, *end = b->data + b->len;
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) p++;
  const char *nl = memchr(p, '\n', (size_t)(end - p));
  size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
  return pw_rpc_members(p, n, k, 1, sp, PW_RPC_FIRST) == 0 && sp[0].len;
}

/* Append s[0..n) to b on one line (JSON white space only: CR and LF can
** only be white space in valid JSON text). */
static void add_one_line(pw_buf *b, const char *s, size_t n) {
  size_t from = b->len;
  pw_buf_add(b, s, n);
  for (size_t i = from; i < b->len; i++)
    if (b->data[i] == '\n' || b->data[i] == '\r') b->data[i] = ' ';
}

static int code_exit(int code) {
  switch (code) {
    case PW_RPC_PARSE_ERROR: case PW_RPC_INVALID_REQUEST: case PW_RPC_INVALID_PARAMS:
    case PW_RPC_VALIDATION: case PW_RPC_TOO_LARGE: case PW_RPC_UNKNOWN_PROTOCOL:
    case PW_RPC_METHOD_NOT_FOUND:
      return PW_EX_DATAERR;
    case PW_RPC_BUSY: case PW_RPC_FORBIDDEN: case PW_RPC_LOG_FAILED:
      return PW_EX_UNAVAILABLE;
    default: return PW_EX_SOFTWARE;
  }
}

/* Send out, read everything until the server closes. */
static int exchange(int fd, const pw_buf *out, pw_buf *in, int timeout_s) {
  size_t sent = 0;
  int wr_done = 0;
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  for (;;) {
    if (!wr_done && sent == out->len) {
      shutdown(fd, SHUT_WR);
      wr_done = 1;
    }
    struct pollfd pf = {fd, (short)(POLLIN | (wr_done ? 0 : POLLOUT)), 0};
    int r = poll(&pf, 1, timeout_s * 1000);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r == 0) {
      fprintf(stderr, "pathwise client: no answer for %d s; giving up\n", timeout_s);
      return -1;
    }
    if (!wr_done && (pf.revents & POLLOUT)) {
      ssize_t k = send(fd, out->data + sent, out->len - sent, MSG_NOSIGNAL);
      if (k < 0 && errno != EAGAIN && errno != EINTR) {
        /* the server may have closed after an error line: read it */
        wr_done = 1;
      } else if (k > 0) {
        sent += (size_t)k;
      }
    }
    if (pf.revents & (POLLIN | POLLHUP | POLLERR)) {
      char buf[65536];
      ssize_t k = read(fd, buf, sizeof buf);
      if (k < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (k < 0 && errno == ECONNRESET) return 0;
      if (k < 0) return -1;
      if (k == 0) return 0;
      pw_buf_add(in, buf, (size_t)k);
    }
  }
}

/* Print one response's result or error; returns an exit code. */
static int show(const char *line, size_t n, const char *what, const copts *o, int text) {
  static const char *const k[] = {"result", "error"};
  pw_span sp[2];
  if (pw_rpc_members(line, n, k, 2, sp, 0) != 0 || (!sp[0].len && !sp[1].len)) {
    fprintf(stderr, "pathwise client: %s: malformed response: %.*s\n", what, (int)n, line);
    return PW_EX_SOFTWARE;
  }
  if (sp[1].len) {
    static const char *const ek[] = {"code", "message"};
    pw_span es[2];
    const char *e = line + sp[1].off;
    char msg[4096] = "?";
    int code = 0;
    if (pw_rpc_members(e, sp[1].len, ek, 2, es, 0) == 0) {
      if (es[0].len) code = atoi(e + es[0].off);
      if (es[1].len) pw_rpc_string(e + es[1].off, es[1].len, msg, sizeof msg);
    }
    fprintf(stderr, "pathwise client: %s: error %d: %s\n", what, code, msg);
    return code_exit(code);
  }
  const char *r = line + sp[0].off;
  size_t rl = sp[0].len;
  if (text && r[0] == '"') {
    char *t = malloc(rl + 1);
    if (!t) return PW_EX_SOFTWARE;
    int tl = pw_rpc_string(r, rl, t, rl + 1);
    if (tl >= 0) {
      fwrite(t, 1, (size_t)tl, stdout);
      if (tl == 0 || t[tl - 1] != '\n') putchar('\n');
    }
    free(t);
  } else {
    fwrite(r, 1, rl, stdout);
    putchar('\n');
  }
  (void)o;
  return 0;
}

/* Parse the options into o; -1 to go on, else the exit code. */
static int client_options(int argc, char **argv, copts *o) {
  static const struct option lo[] = {
    {"socket", required_argument, 0, 's'}, {"method", required_argument, 0, 'm'},
    {"params", required_argument, 0, 'P'}, {"protocol", required_argument, 0, 'p'},
    PW_OPT_LONG_FORMAT, {"trace", no_argument, 0, 't'},
    {"orders", required_argument, 0, 'o'}, {"raw", no_argument, 0, 'r'},
    {"timeout", required_argument, 0, 'T'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  memset(o, 0, sizeof *o);
  o->timeout_s = 30;
  o->socket = getenv("PATHWISE_SOCKET");
  optind = 1;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, "s:m:p:f:to:rh", lo, NULL)) != -1) {
    switch (c) {
      case 's': o->socket = optarg; break;
      case 'm': o->method = optarg; break;
      case 'P': o->params = optarg; break;
      case 'p': o->protocol = optarg; break;
      case PW_OPT_FORMAT: {   /* the shared flag; -p here is a loaded protocol's id */
        char msg[200];
        pw_cmd_opts shared;
        memset(&shared, 0, sizeof shared);
        if (pw_cmd_option(c, optarg, &shared, msg, sizeof msg) < 0) return cl_usage("%s", msg);
        o->format = shared.format;
        break;
      }
      case 't': o->trace = 1; break;
      case 'o': o->orders = optarg; break;
      case 'r': o->raw = 1; break;
      case 'T': {
        long long v = pw_cmd_number(optarg);
        if (v < 1 || v > 86400)
          return cl_usage("--timeout takes seconds (1..86400), got '%s'", optarg);
        o->timeout_s = (int)v;
        break;
      }
      case 'h': fputs(usage_client, stdout); return PW_EX_OK;
      default: return cl_usage("unknown or incomplete option '%s'", argv[optind - 1]);
    }
  }
  if (!o->socket) return cl_usage("%s", "--socket PATH is required");
  if (o->orders && o->method && strcmp(o->method, "check_orders"))
    return cl_usage("--orders goes with the method check_orders, not '%s'", o->method);
  if (o->orders && !o->method) o->method = "check_orders";
  return -1;
}

/* The request line of a method without facts (--method health ...). */
static void method_request(const copts *o, pw_buf *out) {
  pw_buf_addf(out, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":");
  pw_buf_json_str(out, o->method);
  if (o->params) {
    pw_buf_adds(out, ",\"params\":");
    add_one_line(out, o->params, strlen(o->params));
  }
  pw_buf_adds(out, "}\n");
}

static int is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

/* The request line evaluating (or checking orders against) the facts in
** b, with id. */
static void facts_request(const copts *o, int id, const pw_buf *b, pw_buf *out) {
  pw_buf_addf(out, "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"%s\",\"params\":{", id,
              o->orders ? "check_orders" : "evaluate");
  if (o->protocol) {
    pw_buf_adds(out, "\"protocol\":");
    pw_buf_json_str(out, o->protocol);
    pw_buf_adds(out, ",");
  }
  if (o->format && !o->orders) pw_buf_addf(out, "\"format\":\"%s\",", o->format);
  if (o->trace && !o->orders) pw_buf_adds(out, "\"trace\":true,");
  if (o->orders) {
    pw_buf_adds(out, "\"orders\":[");
    char *copy = strdup(o->orders), *save = NULL;
    int k = 0;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
      if (k++) pw_buf_add(out, ",", 1);
      pw_buf_json_str(out, t);
    }
    free(copy);
    pw_buf_adds(out, "],");
  }
  pw_buf_adds(out, "\"facts\":");
  size_t s0 = 0, s1 = b->len;
  while (s0 < s1 && is_space(b->data[s0])) s0++;
  while (s1 > s0 && is_space(b->data[s1 - 1])) s1--;
  if (s1 == s0) pw_buf_adds(out, "null");
  else add_one_line(out, b->data + s0, s1 - s0);
  pw_buf_adds(out, "}}\n");
}

/* The requests, one per file (stdin with none); a file of JSON-RPC lines
** is sent as it is and makes the whole exchange raw. names[i] is what
** request id i+1 came from. Returns 0 or an exit code. */
static int file_requests(const copts *o, const char *const *files, int nf, pw_buf *out,
                         char **names, int *nreq, int *raw) {
  for (int i = 0; i < nf; i++) {
    pw_buf b = {0};
    if (pw_cmd_read(files[i], &b) != 0) {
      fprintf(stderr, "pathwise client: %s: %s\n", files[i], pw_file_why(errno));
      pw_buf_free(&b);
      return PW_EX_NOINPUT;
    }
    if (*raw || (!o->method && !o->protocol && !o->format && !o->trace && looks_raw(&b))) {
      *raw = 1;
      pw_buf_add(out, b.data, b.len);
      if (b.len && b.data[b.len - 1] != '\n') pw_buf_add(out, "\n", 1);
    } else {
      names[(*nreq)++] = (char *)files[i];
      facts_request(o, *nreq, &b, out);
    }
    pw_buf_free(&b);
  }
  return 0;
}

/* Print the answers in request order (raw: every line as it came); the
** exit code of the first failure, else 0. */
static int print_answers(const copts *o, const pw_buf *in, int raw, char **names, int nreq) {
  int code = 0;
  int text = o->format && strcmp(o->format, "text") == 0;
  char **lines = calloc((size_t)nreq + 1, sizeof *lines);
  size_t *lens = calloc((size_t)nreq + 1, sizeof *lens);
  if (!lines || !lens) {
    free(lines);
    free(lens);
    return PW_EX_SOFTWARE;
  }
  const char *p = in->data, *end = in->data + in->len;
  while (p && p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
    if (raw) {
      fwrite(p, 1, n, stdout);
      putchar('\n');
    } else if (n) {
      static const char *const k[] = {"id"};
      pw_span sp[1];
      int id = 0;
      if (pw_rpc_members(p, n, k, 1, sp, 0) == 0 && sp[0].len) id = atoi(p + sp[0].off);
      if (id >= 1 && id <= nreq) {
        lines[id - 1] = (char *)p;
        lens[id - 1] = n;
      } else {   /* an error for no request in particular (limits) */
        int e = show(p, n, o->socket, o, 0);
        if (e && !code) code = e;
      }
    }
    p = nl ? nl + 1 : NULL;
  }
  for (int i = 0; i < nreq && !raw; i++) {
    if (!lines[i]) {
      fprintf(stderr, "pathwise client: %s: no answer (the server closed the connection)\n",
              names[i]);
      if (!code) code = PW_EX_IOERR;
      continue;
    }
    int e = show(lines[i], lens[i], names[i], o, text);
    if (e && !code) code = e;
  }
  if (fflush(stdout) != 0 && !code) code = PW_EX_IOERR;
  free(lines);
  free(lens);
  return code;
}

int pw_client_main(int argc, char **argv) {
  copts o;
  int rc = client_options(argc, argv, &o);
  if (rc >= 0) return rc;
  int nofacts = o.method && strcmp(o.method, "evaluate") && strcmp(o.method, "check_orders");
  int nfiles = argc - optind;
  if (nofacts && nfiles) return cl_usage("--method %s takes no file", o.method);

  pw_buf out = {0}, in = {0};
  int nreq = 0, raw = o.raw;
  const char *stdin_only[] = {"-"};
  const char *const *files = nfiles ? (const char *const *)argv + optind : stdin_only;
  int nf = nfiles ? nfiles : 1;
  char **names = calloc((size_t)nf, sizeof *names);
  if (!names) return PW_EX_SOFTWARE;
  if (nofacts) {
    method_request(&o, &out);
    names[nreq++] = (char *)o.method;
  } else if ((rc = file_requests(&o, files, nf, &out, names, &nreq, &raw)) != 0) {
    pw_buf_free(&out);
    free(names);
    return rc;
  }
  int fd = cl_connect(o.socket);
  rc = fd < 0 ? PW_EX_UNAVAILABLE : exchange(fd, &out, &in, o.timeout_s) ? PW_EX_IOERR : 0;
  if (fd >= 0) close(fd);
  pw_buf_free(&out);
  if (rc == 0) rc = print_answers(&o, &in, raw, names, nreq);
  pw_buf_free(&in);
  free(names);
  return rc;
}
