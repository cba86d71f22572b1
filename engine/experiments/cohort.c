/*
** cohort.c: `pathwise cohort`, a reproducible synthetic cohort.
**
** One facts object per line. The generator is xoshiro256** seeded through
** splitmix64, draws in a fixed order and formats integers only, so a seed
** and a count give byte-identical output everywhere. The proportions are
** those of usage_cohort below; tests/integration/experiments checks them
** on a generated cohort.
**
** The generator (engine/core/cohortgen.c, shared with the release gate of
** check and reload) walks the facts table (pw_facts_schema, facts.h): field
** names and enum names come from it, each field with a tuned generator
** below (the proportions of the help) is drawn by it, and any other field
** of the table, at any level, gets a plain draw by its kind (gen_field),
** so a field added to the table appears in cohorts without an edit here.
*/
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "exp.h"
#include "experiments.h"
#include "cohortgen.h"

static const char *const usage_cohort =
  "usage: pathwise cohort [options]\n"
  "\n"
  "Write a reproducible synthetic cohort of patients with metastatic colorectal\n"
  "cancer treated with first-line oxaliplatin chemotherapy, one facts object\n"
  "(JSON) per line, for batch, diff and check --coverage. The same --n and\n"
  "--seed give byte-identical output on every machine. Every field and every\n"
  "value the facts model accepts occurs, and so do unknown values (absent,\n"
  "null or \"unknown\"), as in real records.\n"
  "\n"
  "  -n, --n N               number of cases (default 1000)\n"
  "  -s, --seed S            seed, 0..2^64-1 (default 1)\n"
  "      --invalid PCT       make about PCT percent of the lines invalid on\n"
  "                          purpose (a value out of range, an unknown enum\n"
  "                          value or id, spine on a site that is not bone,\n"
  "                          {} for a list, broken JSON) to exercise error\n"
  "                          handling (default 0)\n"
  "  -o, --output FILE       write to FILE instead of stdout\n"
  "  -h, --help              this help\n"
  "\n"
  "proportions, of all cases (unknown = absent, null or \"unknown\"):\n"
  "  tumour biology   RAS mutant 45% (KRAS 40%, NRAS 5%), RAS wild type 55%;\n"
  "                   BRAF V600E 9% (in RAS wild-type tumours only);\n"
  "                   MSI-high 4.5%\n"
  "  test results     unknown: KRAS 12%, NRAS 12%, BRAF 25%, MSI 20%;\n"
  "                   no molecular record at all in 2% more\n"
  "  ECOG             0: 25%, 1: 40%, 2: 17%, 3: 8%, 4: 3%, unknown 7%\n"
  "  metastatic       yes 94%, no 3%, unknown 3%\n"
  "  primary          rectum 70%, left colon 15%, right colon 12%, not\n"
  "                   colorectal (\"non_colorectal\") 0.5%, unknown 2.5%; of\n"
  "                   colon primaries 15% recorded as \"colon\" (side not\n"
  "                   known);\n"
  "                   resected 85% (unknown 3%); prior pelvic radiation in 70%\n"
  "                   of rectal and 5% of colon primaries (unknown 3%);\n"
  "                   symptoms none 78%, bleeding 7%, obstruction 4%,\n"
  "                   intractable pain 3%, two of them 3%, unknown 5%;\n"
  "                   no primary record at all in 1%\n"
  "  first line       FOLFOX 70%, mFOLFOX6 15%, FOLFOX4 3%, CAPOX 7%,\n"
  "                   FOLFOXIRI 5%; line 1 (unrecorded in 5%); outcome\n"
  "                   progression 75%, intolerance 12%, ongoing 6%,\n"
  "                   unrecorded 7%; then FOLFIRI at line 2 in 8%\n"
  "                   (progression or ongoing, half each); history unknown\n"
  "                   3%, empty 1%\n"
  "  neuropathy       grade 0: 30%, 1: 35%, 2: 18%, 3: 8%, 4: 2%, unknown 7%;\n"
  "                   persistent in 60% of grade 2-4 (unknown 5%); no\n"
  "                   neuropathy record in 1%\n"
  "  metastases       each site independently: liver 55%, lung 30%, bone 20%,\n"
  "                   retroperitoneal 15%, peritoneum 15%, inguinal nodes 8%,\n"
  "                   other 5%, brain 3% (liver when none drew); sites unknown\n"
  "                   3%. Symptoms unknown for 4% of sites; bone: pain 55%,\n"
  "                   fracture risk 20%; inguinal: pain 25%, skin breakdown\n"
  "                   10%, lymphedema 15%; retroperitoneal: obstruction 10%,\n"
  "                   pain 20%, neurological 8%; brain: neurological 60%;\n"
  "                   peritoneum: obstruction 15%, pain 10%; liver, other:\n"
  "                   pain 10%; lung: pain 5%; other: skin breakdown 5%;\n"
  "                   bone in the spine 40%, not 45%, unknown 15%\n"
  "  prior radiation  pelvis (when pelvic radiation), groin 5%, inguinal 2%,\n"
  "                   bone 4%, spine 3%, retroperitoneum, brain, lung 1%,\n"
  "                   liver, chest, abdomen, other 0.5%; 30% of all but\n"
  "                   the pelvis with left, right or bilateral; text\n"
  "                   outside the vocabulary 1%; history unknown 4%\n"
  "  surgery          none planned 80%, planned in 0-120 days 8%, unknown 12%\n"
  "  proposed orders  none recorded 75%, empty list 5%, one 15%, two 5%, drawn\n"
  "                   from every agent, regimen and action pathwise knows\n"
  "  other            patient_id absent 0.5%; a field pathwise does not know\n"
  "                   (\"notes\") 1%\n"
  "\n"
  "exit codes: 0 ok, 64 usage, 74 cannot write\n";

static int parse_u64(const char *s, uint64_t *v) {
  char *end;
  errno = 0;
  if (*s == '-') return -1;
  unsigned long long x = strtoull(s, &end, 10);
  if (errno || end == s || *end) return -1;
  *v = x;
  return 0;
}

int pw_cohort_main(int argc, char **argv) {
  static const struct option longs[] = {
    {"n", required_argument, 0, 'n'}, {"seed", required_argument, 0, 's'},
    {"invalid", required_argument, 0, 'I'}, {"output", required_argument, 0, 'o'},
    {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  uint64_t n = 1000, seed = 1;
  double invalid = 0;
  const char *output = NULL;
  int c;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "n:s:o:h", longs, NULL)) != -1) {
    switch (c) {
    case 'n':
      if (parse_u64(optarg, &n) || n > 100000000ull)
        return exp_usage("cohort", usage_cohort, "--n takes a count 0..100000000, got '%s'", optarg);
      break;
    case 's':
      if (parse_u64(optarg, &seed)) return exp_usage("cohort", usage_cohort, "--seed takes an unsigned integer, got '%s'", optarg);
      break;
    case 'I': {
      char *end;
      invalid = strtod(optarg, &end);
      if (end == optarg || *end || !(invalid >= 0 && invalid <= 100))
        return exp_usage("cohort", usage_cohort, "--invalid takes a percentage 0..100, got '%s'", optarg);
      break;
    }
    case 'o': output = optarg; break;
    case 'h': fputs(usage_cohort, stdout); return PW_EX_OK;
    default: return exp_usage("cohort", usage_cohort, "unknown or incomplete option '%s'", argv[optind - 1]);
    }
  }
  if (optind != argc) return exp_usage("cohort", usage_cohort, "unexpected argument '%s'", argv[optind]);
  FILE *f = output ? fopen(output, "wb") : stdout;
  if (!f) {
    fprintf(stderr, "pathwise: cohort: cannot write %s: %s\n", output, strerror(errno));
    return PW_EX_IOERR;
  }
  pw_buf b = {0};
  pw_cohort g;
  pw_cohort_init(&g, seed, invalid);
  int code = PW_EX_OK;
  for (uint64_t i = 1; i <= n && code == PW_EX_OK; i++) {
    pw_cohort_next(&g, &b);
    if (b.len >= (1u << 20) || i == n) {
      code = exp_write(f, output ? output : "stdout", &b);
      pw_buf_reset(&b);
    }
  }
  if (code == PW_EX_OK && n == 0) code = exp_write(f, output ? output : "stdout", &b);
  if (output && fclose(f) && code == PW_EX_OK) {
    fprintf(stderr, "pathwise: cannot write %s: %s\n", output, strerror(errno));
    code = PW_EX_IOERR;
  }
  pw_buf_free(&b);
  return code;
}
