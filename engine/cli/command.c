/*
** command.c: helpers shared by the subcommands; see command.h.
*/
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "command.h"
#include "engine.h"
#include "locate.h"
#include "file.h"

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
  return pw_file_read(path, 0, b, NULL) == PW_OK ? 0 : -1;
}

int pw_cmd_cores(void) {
  cpu_set_t set;
  int n = 0;
  if (sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
  if (n < 1) n = (int)sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : n > PW_MAX_JOBS ? PW_MAX_JOBS : n;
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

static char scripts_dir[4096];
static pthread_once_t scripts_dir_once = PTHREAD_ONCE_INIT;

static void scripts_dir_init(void) { pw_locate_scripts_dir(scripts_dir, sizeof scripts_dir); }

const char *pw_cmd_scripts_dir(void) {
  pthread_once(&scripts_dir_once, scripts_dir_init);
  return scripts_dir;
}

pw_engine *pw_cmd_engine(const char *protocol, const char *const *plugins, int nplugins,
                         const pw_limits *lim, int *code) {
  pw_error err;
  pw_limits l = {0, 0, 0, NULL};
  if (lim) l = *lim;
  if (!l.scripts_dir) l.scripts_dir = pw_cmd_scripts_dir();
  pw_engine *e = pw_engine_new(&l, &err);
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

int pw_cmd_option(int c, const char *arg, pw_cmd_opts *o, char *msg, size_t n) {
  long long v;
  switch (c) {
  case PW_OPT_PROTOCOL: o->protocol = arg; return 1;
  case PW_OPT_FORMAT:
    if (strcmp(arg, "text") && strcmp(arg, "json")) break;
    o->format = arg;
    return 1;
  case PW_OPT_PLUGIN:
    if (o->nplugins == PW_MAX_PLUGINS) break;
    o->plugins[o->nplugins++] = arg;
    return 1;
  case PW_OPT_MEMORY:
    if ((v = pw_cmd_number(arg)) < 65536) break;
    o->lim.memory = (size_t)v;
    return 1;
  case PW_OPT_INSTRUCTIONS:
    if ((v = pw_cmd_number(arg)) < 1) break;
    o->lim.instructions = (uint64_t)v;
    return 1;
  case PW_OPT_JOBS:
    if ((v = pw_cmd_number(arg)) < 1 || v > PW_MAX_JOBS) break;
    o->jobs = (int)v;
    return 1;
  default: return 0;
  }
  switch (c) {   /* a bad value: say why */
  case PW_OPT_FORMAT: snprintf(msg, n, "--format takes text or json, got '%s'", arg); break;
  case PW_OPT_PLUGIN: snprintf(msg, n, "at most %d plugins", PW_MAX_PLUGINS); break;
  case PW_OPT_MEMORY: snprintf(msg, n, "--memory takes a byte count >= 65536, got '%s'", arg); break;
  case PW_OPT_INSTRUCTIONS: snprintf(msg, n, "--instructions takes a positive count, got '%s'", arg); break;
  default: snprintf(msg, n, "--jobs takes a number of threads 1..%d, got '%s'", PW_MAX_JOBS, arg); break;
  }
  return -1;
}

int pw_cmd_json(const pw_cmd_opts *o) {
  return o->format ? !strcmp(o->format, "json") : -1;
}
