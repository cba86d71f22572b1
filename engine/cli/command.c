/*
** command.c: helpers shared by the subcommands; see command.h.
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "command.h"
#include "engine.h"

int pw_cmd_exit_code(pw_status s) {
  switch (s) {
  case PW_OK: return PW_EX_OK;
  case PW_EINPUT: return PW_EX_DATAERR;
  case PW_EIO: return PW_EX_NOINPUT;
  case PW_EPROTOCOL: case PW_EBUDGET: case PW_EMEMORY: case PW_EINTERNAL: return PW_EX_SOFTWARE;
  }
  return PW_EX_SOFTWARE;
}

int pw_cmd_read(const char *path, pw_buf *b) {
  FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
  if (!f) return -1;
  char chunk[65536];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) pw_buf_add(b, chunk, n);
  int bad = ferror(f);
  if (f != stdin) fclose(f);
  if (!b->data) pw_buf_add(b, "", 0);
  if (b->failed) { errno = ENOMEM; return -1; }
  if (bad) { errno = EIO; return -1; }
  return 0;
}

const char *pw_cmd_default_protocol(void) {
  const char *env = getenv("PATHWISE_PROTOCOL");
  return env && *env ? env : PW_DEFAULT_PROTOCOL;
}

pw_engine *pw_cmd_engine(const char *protocol, const char *const *plugins, int nplugins,
                         const pw_limits *lim, int *code) {
  pw_error err;
  pw_engine *e = pw_engine_new(lim, &err);
  if (!e) {
    fprintf(stderr, "pathwise: %s\n", err.msg);
    *code = PW_EX_SOFTWARE;
    return NULL;
  }
  if (pw_engine_load(e, protocol ? protocol : pw_cmd_default_protocol(), &err) != PW_OK) {
    fprintf(stderr, "pathwise: protocol: %s\n", err.msg);
    *code = err.code == PW_EIO ? PW_EX_NOINPUT : PW_EX_CONFIG;
    pw_engine_free(e);
    return NULL;
  }
  for (int i = 0; i < nplugins; i++)
    if (pw_engine_add_plugin(e, plugins[i], &err) != PW_OK) {
      fprintf(stderr, "pathwise: plugin: %s\n", err.msg);
      *code = err.code == PW_EIO ? PW_EX_NOINPUT : PW_EX_CONFIG;
      pw_engine_free(e);
      return NULL;
    }
  *code = PW_EX_OK;
  return e;
}

long long pw_cmd_number(const char *s) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end || v < 0) return -1;
  return v;
}
