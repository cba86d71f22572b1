/*
** fhir.c: `pathwise facts --from fhir` and `pathwise eval --from fhir`:
** a FHIR R4 document (Bundle, searchset, CDS Hooks prefetch) becomes facts
** through the input adapter (plugins/fhir/, engine/core/adapter.h), which
** are then printed with their sources or evaluated like any facts.
*/
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "adapter.h"
#include "command.h"
#include "engine.h"
#include "fhir.h"
#include "locate.h"
#include "whatif.h"

#define MAX_CODES 7

static const char *const usage_facts =
  "usage: pathwise facts --from fhir [options] FILE|-\n"
  "\n"
  "Derive patient facts from a FHIR R4 document (Bundle: collection,\n"
  "transaction, searchset; a single resource; or a CDS Hooks prefetch object)\n"
  "and print them with the source of each fact and what could not be mapped.\n"
  "\n"
  "      --from fhir         the input format (required)\n"
  "      --as-of DATE        YYYY-MM-DD against which staleness and days to\n"
  "                          surgery are computed (default: today, UTC)\n"
  "      --adapter FILE      adapter script (default: $PATHWISE_ADAPTER, else the\n"
  "                          installed share/pathwise/plugins/fhir/adapter.lua);\n"
  "                          its code table is codes.lua next to it\n"
  "      --codes FILE        an institution's code table extending the adapter's\n"
  "                          (repeatable; later tables win)\n"
  "      --max-input BYTES   largest document accepted (default 16 MiB)\n"
  "      --max-members N     most members in one JSON object or array (default 100000)\n"
  "  -f, --format text|json  output format (default: text on a terminal, else json)\n"
  "  -h, --help              this help\n"
  "\n"
  "exit codes: 0 ok, 64 usage, 65 the document was refused (named why),\n"
  "            66 file not found, 70 adapter error, 78 adapter failed to load\n";

static const char *const usage_eval =
  "usage: pathwise eval --from fhir [options] FILE|-\n"
  "\n"
  "Derive facts from a FHIR R4 document (see pathwise facts --help) and\n"
  "evaluate them; the result states the as-of date and lists the source of\n"
  "every fact and what could not be mapped (JSON: member \"input\").\n"
  "\n"
  "  eval's options (--protocol, --plugin, --format, --trace, --what-if,\n"
  "  --memory, --instructions) and facts' (--from, --as-of, --adapter, --codes,\n"
  "  --max-input, --max-members)\n";

typedef struct fopts {
  pw_cmd_opts c;          /* the shared flags: --protocol --plugin --format --memory --instructions */
  const char *from, *as_of, *adapter, *file;
  const char *codes[MAX_CODES];
  int ncodes, trace, what_if;
  pw_adapter_limits alim;
  char today[11];
} fopts;

enum { OPT_FROM = PW_OPT_FIRST_FREE, OPT_AS_OF, OPT_ADAPTER, OPT_CODES, OPT_MAX_INPUT, OPT_MAX_MEMBERS };

static int bad_usage(const char *usage, const char *fmt, const char *arg) {
  fprintf(stderr, "pathwise: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n%s", usage);
  return PW_EX_USAGE;
}

static int parse_number(const char *usage, const char *opt, const char *arg, long long min, long long *v) {
  *v = pw_cmd_number(arg);
  if (*v < min || *v > 0x7fffffff) {
    fprintf(stderr, "pathwise: %s takes a number >= %lld, got '%s'\n%s", opt, min, arg, usage);
    return PW_EX_USAGE;
  }
  return -1;
}

/* The FHIR options. Returns -1 to go on, else an exit code. */
static int parse_one(int c, const char *usage, fopts *o) {
  long long v;
  int rc = -1;
  switch (c) {
  case OPT_FROM: o->from = optarg; break;
  case OPT_AS_OF: o->as_of = optarg; break;
  case OPT_ADAPTER: o->adapter = optarg; break;
  case OPT_CODES:
    if (o->ncodes == MAX_CODES) return bad_usage(usage, "at most %s --codes tables", "7");
    o->codes[o->ncodes++] = optarg;
    break;
  case OPT_MAX_INPUT: if ((rc = parse_number(usage, "--max-input", optarg, 1024, &v)) < 0) o->alim.max_bytes = (size_t)v; break;
  case OPT_MAX_MEMBERS: if ((rc = parse_number(usage, "--max-members", optarg, 1, &v)) < 0) o->alim.max_members = (int)v; break;
  default: return bad_usage(usage, "unknown or incomplete option '%s'", optarg ? optarg : "?");
  }
  return rc;
}

static int parse(int argc, char **argv, const char *usage, int eval, fopts *o) {
  static const struct option longs[] = {
    {"from", required_argument, 0, OPT_FROM}, {"as-of", required_argument, 0, OPT_AS_OF},
    {"adapter", required_argument, 0, OPT_ADAPTER}, {"codes", required_argument, 0, OPT_CODES},
    {"max-input", required_argument, 0, OPT_MAX_INPUT}, {"max-members", required_argument, 0, OPT_MAX_MEMBERS},
    PW_OPT_LONG_PROTOCOL, PW_OPT_LONG_PLUGIN, PW_OPT_LONG_FORMAT, PW_OPT_LONG_MEMORY,
    PW_OPT_LONG_INSTRUCTIONS, {"trace", no_argument, 0, 't'}, {"what-if", no_argument, 0, 'w'},
    {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  char msg[200];
  int c, rc;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, eval ? "p:f:twh" : "f:h", longs, NULL)) != -1) {
    if (c == 'h') { fputs(usage, stdout); return PW_EX_OK; }
    if (c == '?' || c == ':') return bad_usage(usage, "unknown or incomplete option '%s'", argv[optind - 1]);
    if (!eval && c != PW_OPT_FORMAT && c < PW_OPT_FIRST_FREE)
      return bad_usage(usage, "%s: --protocol, --plugin, --trace, --what-if, --memory and --instructions are eval's options", "facts");
    if (c == 't') { o->trace = 1; continue; }
    if (c == 'w') { o->what_if = 1; continue; }
    if (c >= PW_OPT_FIRST_FREE) {
      if ((rc = parse_one(c, usage, o)) >= 0) return rc;
      continue;
    }
    int r = pw_cmd_option(c, optarg, &o->c, msg, sizeof msg);
    if (r < 0) return bad_usage(usage, "%s", msg);
    if (r == 0) return bad_usage(usage, "unknown or incomplete option '%s'", argv[optind - 1]);
  }
  if (!o->from || strcmp(o->from, "fhir"))
    return bad_usage(usage, "--from takes fhir (the one input format besides facts JSON), got '%s'",
                     o->from ? o->from : "nothing");
  if (optind != argc - 1) return bad_usage(usage, "expected exactly one %s", "FILE (or - for stdin)");
  o->file = argv[optind];
  pw_adapter_today(o->today);
  if (!o->as_of) o->as_of = o->today;
  if (!pw_adapter_date_ok(o->as_of)) return bad_usage(usage, "--as-of takes a date YYYY-MM-DD, got '%s'", o->as_of);
  return -1;
}

static int write_out(const pw_buf *b) {
  if (fwrite(b->data, 1, b->len, stdout) != b->len || fflush(stdout)) {
    fprintf(stderr, "pathwise: cannot write output: %s\n", strerror(errno));
    return PW_EX_IOERR;
  }
  return PW_EX_OK;
}

/* The adapter with its base code table (codes.lua next to it) and extensions. */
static pw_adapter *load_adapter(const fopts *o, int *code) {
  pw_error err;
  char found[4096], codes[4096];
  if (!o->adapter && pw_locate_default_adapter(found, sizeof found) != 0) {
    fprintf(stderr, "pathwise: cannot locate the FHIR adapter (give --adapter FILE)\n");
    *code = PW_EX_NOINPUT;
    return NULL;
  }
  const char *path = o->adapter ? o->adapter : found;
  if (pw_locate_adapter_codes(path, codes, sizeof codes) != 0) {
    fprintf(stderr, "pathwise: adapter path too long: %s\n", path);
    *code = PW_EX_USAGE;
    return NULL;
  }
  pw_adapter *a = pw_adapter_new(&o->alim, &err);
  if (!a) { fprintf(stderr, "pathwise: %s\n", err.msg); *code = PW_EX_SOFTWARE; return NULL; }
  pw_status rc = pw_adapter_load(a, path, &err);
  if (rc == PW_OK) rc = pw_adapter_add_codes(a, codes, &err);
  for (int i = 0; rc == PW_OK && i < o->ncodes; i++) rc = pw_adapter_add_codes(a, o->codes[i], &err);
  if (rc != PW_OK) {
    fprintf(stderr, "pathwise: adapter: %s\n", err.msg);
    *code = rc == PW_EIO ? PW_EX_NOINPUT : PW_EX_CONFIG;
    pw_adapter_free(a);
    return NULL;
  }
  return a;
}

/* Read the document and run the adapter over it. Returns an exit code. */
static int derive(const fopts *o, pw_adapter_output *out) {
  pw_buf in = {0};
  int code;
  if (pw_cmd_read(o->file, &in)) {
    fprintf(stderr, "pathwise: cannot read %s: %s\n", o->file, strerror(errno));
    pw_buf_free(&in);
    return PW_EX_NOINPUT;
  }
  pw_adapter *a = load_adapter(o, &code);
  if (a) {
    pw_error err;
    pw_status rc = pw_adapter_run(a, in.data, in.len, o->as_of, out, &err);
    code = rc == PW_OK ? PW_EX_OK : pw_cmd_exit_code(rc);
    if (rc != PW_OK) fprintf(stderr, "pathwise: %s: %s\n", strcmp(o->file, "-") ? o->file : "stdin", err.msg);
    pw_adapter_free(a);
  }
  pw_buf_free(&in);
  return code;
}

int pw_fhir_facts_main(int argc, char **argv) {
  fopts o = {0};
  int code = parse(argc, argv, usage_facts, 0, &o);
  if (code >= 0) return code;
  pw_adapter_output out = {0};
  code = derive(&o, &out);
  if (code == PW_EX_OK) {
    int json = pw_cmd_json(&o.c) >= 0 ? pw_cmd_json(&o.c) : !isatty(STDOUT_FILENO);
    pw_buf b = {0};
    if (json) { pw_buf_add(&b, out.meta.data, out.meta.len); pw_buf_adds(&b, "\n"); }
    else { pw_buf_adds(&b, "facts: "); pw_buf_add(&b, out.facts.data, out.facts.len); pw_buf_adds(&b, "\n"); pw_buf_add(&b, out.text.data, out.text.len); }
    code = write_out(&b);
    pw_buf_free(&b);
  }
  pw_adapter_output_free(&out);
  return code;
}

int pw_fhir_eval_main(int argc, char **argv) {
  fopts o = {0};
  int code = parse(argc, argv, usage_eval, 1, &o);
  if (code >= 0) return code;
  pw_adapter_output in = {0};
  code = derive(&o, &in);
  pw_engine *e = code == PW_EX_OK ? pw_cmd_engine(o.c.protocol, o.c.plugins, o.c.nplugins, &o.c.lim, &code) : NULL;
  if (e) {
    int json = pw_cmd_json(&o.c) >= 0 ? pw_cmd_json(&o.c) : !isatty(STDOUT_FILENO);
    pw_buf out = {0};
    pw_error err;
    unsigned flags = o.trace ? PW_EVAL_TRACE : 0;
    pw_status rc = o.what_if ? pw_whatif_eval(e, in.facts.data, in.facts.len, flags, !json, NULL, &out, &err)
                             : pw_engine_eval(e, in.facts.data, in.facts.len, flags, json ? &out : NULL, &err);
    if (rc != PW_OK) {
      fprintf(stderr, "pathwise: %s: facts from FHIR: %s\n", strcmp(o.file, "-") ? o.file : "stdin", err.msg);
      code = pw_cmd_exit_code(rc);
    } else {
      if (json) { pw_adapter_splice(&out, &in); pw_buf_add(&out, "\n", 1); }
      else {
        if (!o.what_if) pw_engine_render_text(e, &out);
        pw_buf_adds(&out, "\n");
        pw_buf_add(&out, in.text.data, in.text.len);
      }
      code = write_out(&out);
    }
    pw_buf_free(&out);
    pw_engine_free(e);
  }
  pw_adapter_output_free(&in);
  return code;
}

int pw_fhir_wanted(int argc, char **argv) {
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--from") || !strncmp(argv[i], "--from=", 7)) return 1;
  return 0;
}
