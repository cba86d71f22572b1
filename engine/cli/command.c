/*
** command.c: helpers shared by the subcommands; see command.h.
*/
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "command.h"
#include "engine.h"
#include "locate.h"

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
  if (bad) { errno = EIO; return -1; }
  return 0;
}

/* Resolved once (locate.h: $PATHWISE_PROTOCOL, $PATHWISE_PATH, the installed
** copy beside the binary, the source tree for the build-tree binary) and
** immutable afterwards, so worker threads may share the pointer. */
static char default_protocol[4096];
static pthread_once_t default_protocol_once = PTHREAD_ONCE_INIT;

static void default_protocol_init(void) {
  pw_locate_default_protocol(default_protocol, sizeof default_protocol);
}

const char *pw_cmd_default_protocol(void) {
  pthread_once(&default_protocol_once, default_protocol_init);
  return default_protocol;
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
