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
#include "fhir.h"
#include "file.h"
#include "server.h"
#include "whatif.h"
#include "version.h"

static const char *const usage_main =
  "usage: pathwise <command> [options]\n"
  "\n"
  "Guideline-based treatment recommendations with reasons and citations.\n"
  "\n"
  "commands:\n"
  "  eval     evaluate one patient's facts (JSON) with a protocol\n"
  "           (--from fhir: facts derived from a FHIR R4 Bundle)\n"
  "  facts    --from fhir: the facts a FHIR R4 Bundle gives, with their sources\n"
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
  "  -p, --protocol FILE     protocol script (default: $PATHWISE_PROTOCOL, else\n"
  "                          mrc_second_line.lua in $PATHWISE_PATH, else the\n"
  "                          installed guideline, share/pathwise/scripts)\n"
  "      --plugin FILE       add a local-rules plugin (repeatable; may only tighten)\n"
  "  -f, --format text|json  output format (default: text on a terminal, else json)\n"
  "  -t, --trace             explain: branches taken, facts used, rules that blocked\n"
  "  -w, --what-if           also: which values of each missing or unknown fact\n"
  "                          (and each test panel) would change the plan\n"
  "      --memory BYTES      memory cap of the Lua state (default 64 MiB)\n"
  "      --instructions N    instruction budget per evaluation (default 5000000)\n"
  "      --from fhir         FILE is a FHIR R4 Bundle: derive the facts first\n"
  "                          (pathwise eval --from fhir --help)\n"
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
  pw_cmd_opts c;      /* the shared flags */
  const char *file;
  int trace, what_if;
} opts;

static int bad_usage(const char *usage, const char *fmt, const char *arg) {
  fprintf(stderr, "pathwise: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n%s", usage);
  return PW_EX_USAGE;
}

/* Options of eval and check. Returns -1 to continue, else an exit code. */
static int parse(int argc, char **argv, const char *usage, opts *o) {
  static const struct option longs[] = {
    PW_OPT_LONG_PROTOCOL, PW_OPT_LONG_PLUGIN, PW_OPT_LONG_FORMAT, PW_OPT_LONG_MEMORY,
    PW_OPT_LONG_INSTRUCTIONS, {"trace", no_argument, 0, 't'}, {"what-if", no_argument, 0, 'w'},
    {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  char msg[200];
  int c;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "p:f:twh", longs, NULL)) != -1) {
    if (c == 't') { o->trace = 1; continue; }
    if (c == 'w') { o->what_if = 1; continue; }
    if (c == 'h') { fputs(usage, stdout); return PW_EX_OK; }
    int r = c == '?' ? 0 : pw_cmd_option(c, optarg, &o->c, msg, sizeof msg);
    if (r < 0) return bad_usage(usage, "%s", msg);
    if (r == 0) return bad_usage(usage, "unknown or incomplete option '%s'", argv[optind - 1]);
  }
  if (optind != argc - 1) return bad_usage(usage, "expected exactly one %s", "FILE (or - for stdin)");
  o->file = argv[optind];
  return -1;
}

static int write_out(const pw_buf *b) {
  if (b->failed) { fputs("pathwise: out of memory\n", stderr); return PW_EX_OSERR; }
  if (fwrite(b->data, 1, b->len, stdout) != b->len || fflush(stdout)) {
    fprintf(stderr, "pathwise: cannot write output: %s\n", strerror(errno));
    return PW_EX_IOERR;
  }
  return PW_EX_OK;
}

static int cmd_eval(int argc, char **argv) {
  if (pw_fhir_wanted(argc, argv)) return pw_fhir_eval_main(argc, argv);
  opts o = {0};
  int code = parse(argc, argv, usage_eval, &o);
  if (code >= 0) return code;
  pw_buf in = {0}, out = {0};
  if (pw_cmd_read(o.file, &in)) {
    fprintf(stderr, "pathwise: cannot read %s: %s\n", o.file, pw_file_why(errno));
    return errno == ENOMEM ? PW_EX_OSERR : PW_EX_NOINPUT;
  }
  pw_engine *e = pw_cmd_engine(o.c.protocol, o.c.plugins, o.c.nplugins, &o.c.lim, &code);
  if (!e) { pw_buf_free(&in); return code; }
  int json = pw_cmd_json(&o.c);
  if (json < 0) json = !isatty(STDOUT_FILENO);
  pw_error err;
  unsigned flags = o.trace ? PW_EVAL_TRACE : 0;
  pw_status rc = o.what_if ? pw_whatif_eval(e, in.data, in.len, flags, !json, NULL, &out, &err)
                           : pw_engine_eval(e, in.data, in.len, flags, json ? &out : NULL, &err);
  if (rc != PW_OK) {
    fprintf(stderr, "pathwise: %s: %s\n", strcmp(o.file, "-") ? o.file : "stdin", err.msg);
    code = pw_cmd_exit_code(rc);
  } else {
    if (json) pw_buf_add(&out, "\n", 1);
    else if (!o.what_if) pw_engine_render_text(e, &out);
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
  if (o.what_if) return bad_usage(usage_check, "%s", "--what-if is an option of eval");
  pw_engine *e = pw_cmd_engine(o.file, o.c.plugins, o.c.nplugins, &o.c.lim, &code);
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
  static const struct option longs[] = {PW_OPT_LONG_FORMAT, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  pw_cmd_opts o = {0};
  char msg[200];
  int c;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "f:h", longs, NULL)) != -1) {
    if (c == 'h') { fputs(usage_rules, stdout); return PW_EX_OK; }
    int r = c == '?' ? 0 : pw_cmd_option(c, optarg, &o, msg, sizeof msg);
    if (r < 0) return bad_usage(usage_rules, "%s", msg);
    if (r == 0) return bad_usage(usage_rules, "unknown or incomplete option '%s'", argv[optind - 1]);
  }
  if (optind < argc) return bad_usage(usage_rules, "unexpected argument '%s'", argv[optind]);
  pw_buf out = {0};
  if (pw_cmd_json(&o) == 1) { pw_rules_json(&out); pw_buf_add(&out, "\n", 1); }
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
  if (!strcmp(cmd, "facts")) return pw_fhir_facts_main(argc - 1, argv + 1);
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
