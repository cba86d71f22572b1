/*
** command.h: what the `pathwise` subcommands share, so each command (eval,
** check, rules, serve, client, batch, diff, ...) reads its shared flags,
** files and limits the same way and exits with the same sysexits codes.
** Nothing here prints except pw_cmd_engine (which says why it failed);
** the option parser returns its message for the command to print.
*/
#ifndef PW_COMMAND_H
#define PW_COMMAND_H

#include <getopt.h>
#include <stdio.h>
#include "pathwise.h"

/* sysexits(3) */
#define PW_EX_OK 0
#define PW_EX_FAIL 1          /* a check ran and failed */
#define PW_EX_USAGE 64
#define PW_EX_DATAERR 65
#define PW_EX_NOINPUT 66
#define PW_EX_UNAVAILABLE 69   /* e.g. a server already runs on the socket */
#define PW_EX_SOFTWARE 70
#define PW_EX_OSERR 71
#define PW_EX_CANTCREAT 73
#define PW_EX_IOERR 74
#define PW_EX_CONFIG 78

/* Exit code for an engine status at evaluation time. */
int pw_cmd_exit_code(pw_status s);

/* Read a whole file ("-" = stdin) into b with pw_file_read (a named path
** must be a regular file). Returns 0, or -1 with errno set; pw_file_why
** (file.h) words errno for a message. */
int pw_cmd_read(const char *path, pw_buf *b);

/* Cores this process may run on (its CPU affinity, else the online CPUs),
** 1..PW_MAX_JOBS: the default number of batch threads or server workers. */
int pw_cmd_cores(void);

/* The default protocol: $PATHWISE_PROTOCOL, $PATHWISE_PATH, the installed
** copy, else the source tree's (see locate.h). */
const char *pw_cmd_default_protocol(void);

/* The default scripts directory (locate.h, pw_locate_scripts_dir), where
** `extends` finds a base last: what pw_limits.scripts_dir is given. */
const char *pw_cmd_scripts_dir(void);

/* Create an engine with the protocol and plugins loaded; on failure print
** the error to stderr and return NULL with *code set. */
pw_engine *pw_cmd_engine(const char *protocol, const char *const *plugins, int nplugins,
                         const pw_limits *lim, int *code);

/* Parse "--memory N", "--instructions N" style values; -1 on error. */
long long pw_cmd_number(const char *s);

/* ---- the shared flags: one parser for every command ----
** A command lists the shared flags it takes in its getopt_long table with
** the PW_OPT_LONG_* entries (and "p:f:j:" in its short options where it
** takes those), handles its own options, and hands every other option to
** pw_cmd_option. The values and limits are checked here, once. A command
** that takes a flag differently (serve: --protocol repeatable) handles that
** code itself before calling pw_cmd_option. Codes PW_OPT_* never collide
** with a command's own codes from PW_OPT_FIRST_FREE, or below 0x200. */

#define PW_MAX_JOBS 256   /* --jobs and the core count are capped here */

enum {
  PW_OPT_PROTOCOL = 'p', PW_OPT_FORMAT = 'f', PW_OPT_JOBS = 'j',
  PW_OPT_PLUGIN = 0x200, PW_OPT_MEMORY, PW_OPT_INSTRUCTIONS,
  PW_OPT_FIRST_FREE = 0x280   /* a command's own option codes start here */
};

#define PW_OPT_LONG_PROTOCOL {"protocol", required_argument, 0, PW_OPT_PROTOCOL}
#define PW_OPT_LONG_FORMAT {"format", required_argument, 0, PW_OPT_FORMAT}
#define PW_OPT_LONG_PLUGIN {"plugin", required_argument, 0, PW_OPT_PLUGIN}
#define PW_OPT_LONG_MEMORY {"memory", required_argument, 0, PW_OPT_MEMORY}
#define PW_OPT_LONG_INSTRUCTIONS {"instructions", required_argument, 0, PW_OPT_INSTRUCTIONS}
#define PW_OPT_LONG_JOBS {"jobs", required_argument, 0, PW_OPT_JOBS}

typedef struct pw_cmd_opts {
  const char *protocol;                   /* --protocol; NULL = the default */
  const char *format;                     /* --format: "text", "json", or NULL */
  const char *plugins[PW_MAX_PLUGINS];    /* --plugin, in order */
  int nplugins;
  pw_limits lim;                          /* --memory, --instructions; 0 = default */
  int jobs;                               /* --jobs 1..PW_MAX_JOBS; 0 = not given */
} pw_cmd_opts;

/* Handle option c (a getopt_long result) with argument arg. Returns 1 when
** c is a shared flag and its value is good (stored in o), 0 when c is not
** a shared flag, -1 when the value is bad: msg then says why, e.g.
** "--memory takes a byte count >= 65536, got '12'". */
int pw_cmd_option(int c, const char *arg, pw_cmd_opts *o, char *msg, size_t n);

/* Is --format json (1), text (0), or not given (-1)? */
int pw_cmd_json(const pw_cmd_opts *o);

#endif
