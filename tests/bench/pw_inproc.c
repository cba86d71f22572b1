/*
** pw_inproc.c: the in-process single-core evaluation rate, the
** reference of the batch benchmark (batch.py).
**
**   pw_inproc [-p PROTOCOL] [--plugin FILE] COHORT.jsonl
**
** Reads the whole cohort into memory, then evaluates every line on one
** engine in one thread, writing each result as JSON into a buffer that is
** reused (the same work as `pathwise batch` per case, without its I/O and
** threads). Prints one JSON line: cases, seconds, cases_per_second, errors.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "command.h"
#include "engine.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  const char *protocol = NULL, *plugins[8], *path = NULL;
  int nplugins = 0, code;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-p") && i + 1 < argc) protocol = argv[++i];
    else if (!strcmp(argv[i], "--plugin") && i + 1 < argc && nplugins < 8) plugins[nplugins++] = argv[++i];
    else path = argv[i];
  }
  if (!path) {
    fprintf(stderr, "usage: pw_inproc [-p PROTOCOL] [--plugin FILE] COHORT.jsonl\n");
    return 64;
  }
  pw_buf in = {0}, out = {0};
  if (pw_cmd_read(path, &in)) { perror(path); return 66; }
  pw_limits lim = {0};
  pw_engine *e = pw_cmd_engine(protocol, plugins, nplugins, &lim, &code);
  if (!e) return code;
  long cases = 0, errors = 0;
  double t0 = now();
  for (char *p = in.data, *end = in.data + in.len; p < end;) {
    char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
    pw_error err;
    pw_buf_reset(&out);
    if (len) {
      cases++;
      if (pw_engine_eval(e, p, len, 0, &out, &err) != PW_OK) errors++;
    }
    p += len + 1;
  }
  double dt = now() - t0;
  printf("{\"cases\":%ld,\"errors\":%ld,\"seconds\":%.3f,\"cases_per_second\":%.1f}\n", cases, errors, dt,
         dt > 0 ? (double)cases / dt : 0.0);
  pw_engine_free(e);
  pw_buf_free(&in);
  pw_buf_free(&out);
  return 0;
}
