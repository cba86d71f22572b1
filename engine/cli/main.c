/*
** main.c: the `pathwise` command line. Each subcommand parses its own
** options and returns a sysexits(3) code; see `pathwise --help`.
*/
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "command.h"
#include "engine.h"
#include "experiments.h"
#include "server.h"
#include "version.h"

#define MAX_PLUGINS 8

static const char *const usage_main =
  "usage: pathwise <command> [options]\n"
  "\n"
  "Guideline-based treatment recommendations with reasons and citations.\n"
  "\n"
  "commands:\n"
  "  eval     evaluate one patient's facts (JSON) with a protocol\n"
  "  check    load a protocol in the sandbox and run its example cases\n"
  "  rules    list the safety rules no protocol can switch off\n"
  "  serve    serve evaluations over a local Unix socket (JSON-RPC)\n"
  "  client   send facts or JSON-RPC lines to a running server\n"
  "  batch    evaluate a cohort (JSON lines in, result lines out), on all cores\n"
  "  cohort   generate a reproducible synthetic cohort (JSON lines)\n"
  "  diff     compare two protocols over a cohort: what changes, for whom\n"
  "\n"
  "  pathwise <command> --help   options of one command\n"
  "  pathwise --version          engine version\n"
  "\n"
  "exit codes: 0 ok, 1 check failed, 64 usage, 65 bad input data, 66 no input,\n"
  "            70 protocol or internal error, 78 protocol failed to load\n";

static const char *const usage_eval =
  "usage: pathwise eval [options] FILE|-\n"
  "\n"
  "Evaluate one facts object (JSON) and print the recommendation.\n"
  "\n"
  "  -p, --protocol FILE     protocol script (default: the bundled guideline,\n"
  "                          scripts/mrc_second_line.lua, or $PATHWISE_PROTOCOL)\n"
  "      --plugin FILE       add a local-rules plugin (repeatable; may only tighten)\n"
  "  -f, --format text|json  output format (default: text on a terminal, else json)\n"
  "  -t, --trace             explain: branches taken, facts used, rules that blocked\n"
  "      --memory BYTES      memory cap of the Lua state (default 64 MiB)\n"
  "      --instructions N    instruction budget per evaluation (default 5000000)\n"
  "  -h, --help              this help\n"
  "\n"
  "exit codes: 0 ok, 64 usage, 65 invalid facts, 66 file not found,\n"
  "            70 protocol error or budget exceeded, 78 protocol failed to load\n";

static const char *const usage_check =
  "usage: pathwise check [options] PROTOCOL.lua\n"
  "\n"
  "Load a protocol in the sandbox, validate its table and run the example\n"
  "cases it declares (examples = {...}). Exit 0 when all pass, 1 otherwise.\n"
  "\n"
  "      --plugin FILE       load a plugin too (repeatable)\n"
  "  -h, --help              this help\n"
  "\n"
  "  pathwise check --coverage [options] PROTOCOL.lua COHORT.jsonl|-\n"
  "      which lines, branches and safety rules a cohort exercised\n"
  "      (pathwise check --coverage --help)\n";

static const char *const usage_rules =
  "usage: pathwise rules [--format text|json]\n"
  "\n"
  "List the safety rules applied to every recommendation and proposed order.\n";

typedef struct opts {
  const char *protocol, *format, *file;
  const char *plugins[MAX_PLUGINS];
  int nplugins, trace;
  pw_limits lim;
} opts;

static int bad_usage(const char *usage, const char *fmt, const char *arg) {
  fprintf(stderr, "pathwise: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n%s", usage);
  return PW_EX_USAGE;
}

/* Options shared by eval and check. Returns -1 to continue, else an exit code. */
static int parse(int argc, char **argv, const char *usage, opts *o) {
  static const struct option longs[] = {
    {"protocol", required_argument, 0, 'p'}, {"plugin", required_argument, 0, 'P'},
    {"format", required_argument, 0, 'f'}, {"trace", no_argument, 0, 't'},
    {"memory", required_argument, 0, 'm'}, {"instructions", required_argument, 0, 'i'},
    {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  int c;
  long long v;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "p:f:th", longs, NULL)) != -1) {
    switch (c) {
    case 'p': o->protocol = optarg; break;
    case 'P':
      if (o->nplugins == MAX_PLUGINS) return bad_usage(usage, "at most %s plugins", "8");
      o->plugins[o->nplugins++] = optarg;
      break;
    case 'f':
      if (strcmp(optarg, "text") && strcmp(optarg, "json"))
        return bad_usage(usage, "--format takes text or json, got '%s'", optarg);
      o->format = optarg;
      break;
    case 't': o->trace = 1; break;
    case 'm':
      if ((v = pw_cmd_number(optarg)) < 65536) return bad_usage(usage, "--memory takes a byte count >= 65536, got '%s'", optarg);
      o->lim.memory = (size_t)v;
      break;
    case 'i':
      if ((v = pw_cmd_number(optarg)) < 1) return bad_usage(usage, "--instructions takes a positive count, got '%s'", optarg);
      o->lim.instructions = (uint64_t)v;
      break;
    case 'h': fputs(usage, stdout); return PW_EX_OK;
    default:
      return bad_usage(usage, "unknown or incomplete option '%s'", argv[optind - 1]);
    }
  }
  if (optind != argc - 1) return bad_usage(usage, "expected exactly one %s", "FILE (or - for stdin)");
  o->file = argv[optind];
  return -1;
}

static int write_out(const pw_buf *b) {
  if (fwrite(b->data, 1, b->len, stdout) != b->len || fflush(stdout)) {
    fprintf(stderr, "pathwise: cannot write output: %s\n", strerror(errno));
    return PW_EX_IOERR;
  }
  return PW_EX_OK;
}

static int cmd_eval(int argc, char **argv) {
  opts o = {0};
  int code = parse(argc, argv, usage_eval, &o);
  if (code >= 0) return code;
  pw_buf in = {0}, out = {0};
  if (pw_cmd_read(o.file, &in)) {
    fprintf(stderr, "pathwise: cannot read %s: %s\n", o.file, strerror(errno));
    return PW_EX_NOINPUT;
  }
  pw_engine *e = pw_cmd_engine(o.protocol, o.plugins, o.nplugins, &o.lim, &code);
  if (!e) { pw_buf_free(&in); return code; }
  int json = o.format ? !strcmp(o.format, "json") : !isatty(STDOUT_FILENO);
  pw_error err;
  pw_status rc = pw_engine_eval(e, in.data, in.len, o.trace ? PW_EVAL_TRACE : 0, json ? &out : NULL, &err);
  if (rc != PW_OK) {
    fprintf(stderr, "pathwise: %s: %s\n", strcmp(o.file, "-") ? o.file : "stdin", err.msg);
    code = pw_cmd_exit_code(rc);
  } else {
    if (json) pw_buf_add(&out, "\n", 1);
    else pw_engine_render_text(e, &out);
    code = write_out(&out);
  }
  pw_buf_free(&in);
  pw_buf_free(&out);
  pw_engine_free(e);
  return code;
}

static int cmd_check(int argc, char **argv) {
  opts o = {0};
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--coverage")) return pw_coverage_main(argc, argv);
  int code = parse(argc, argv, usage_check, &o);
  if (code >= 0) return code;
  pw_engine *e = pw_cmd_engine(o.file, o.plugins, o.nplugins, &o.lim, &code);
  if (!e) return code;
  pw_buf out = {0};
  pw_error err;
  pw_buf_addf(&out, "protocol %s %s (%s)\nsha256 %s\n", pw_engine_protocol_id(e), pw_engine_protocol_version(e),
              pw_engine_protocol_title(e), pw_engine_protocol_sha256(e));
  pw_status rc = pw_engine_check_examples(e, &out, &err);
  code = write_out(&out);
  if (rc != PW_OK) {
    fprintf(stderr, "pathwise: check: %s\n", err.msg);
    code = PW_EX_FAIL;
  }
  pw_buf_free(&out);
  pw_engine_free(e);
  return code;
}

static int cmd_rules(int argc, char **argv) {
  int json = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { fputs(usage_rules, stdout); return PW_EX_OK; }
    if ((!strcmp(argv[i], "--format") || !strcmp(argv[i], "-f")) && i + 1 < argc &&
        (!strcmp(argv[i + 1], "json") || !strcmp(argv[i + 1], "text"))) {
      json = !strcmp(argv[++i], "json");
      continue;
    }
    return bad_usage(usage_rules, "unexpected argument '%s'", argv[i]);
  }
  pw_buf out = {0};
  if (json) { pw_rules_json(&out); pw_buf_add(&out, "\n", 1); }
  else pw_rules_text(&out);
  int code = write_out(&out);
  pw_buf_free(&out);
  return code;
}

int main(int argc, char **argv) {
  if (argc < 2) { fputs(usage_main, stderr); return PW_EX_USAGE; }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) { fputs(usage_main, stdout); return 0; }
  if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) return pw_version_main();
  if (!strcmp(cmd, "eval")) return cmd_eval(argc - 1, argv + 1);
  if (!strcmp(cmd, "check")) return cmd_check(argc - 1, argv + 1);
  if (!strcmp(cmd, "rules")) return cmd_rules(argc - 1, argv + 1);
  if (!strcmp(cmd, "serve")) return pw_serve_main(argc - 1, argv + 1);
  if (!strcmp(cmd, "client")) return pw_client_main(argc - 1, argv + 1);
  if (!strcmp(cmd, "batch")) return pw_batch_main(argc - 1, argv + 1);
  if (!strcmp(cmd, "cohort")) return pw_cohort_main(argc - 1, argv + 1);
  if (!strcmp(cmd, "diff")) return pw_diff_main(argc - 1, argv + 1);
  fprintf(stderr, "pathwise: unknown command '%s'\n\n%s", cmd, usage_main);
  return PW_EX_USAGE;
}
