/*
** command.h: shared helpers for the `pathwise` subcommands, so each command
** (eval, check, rules, serve, client, batch, ...) reads options, files and
** limits the same way and exits with the same sysexits codes.
*/
#ifndef PW_COMMAND_H
#define PW_COMMAND_H

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

/* Read a whole file ("-" = stdin) into b. Returns 0, or -1 with errno set. */
int pw_cmd_read(const char *path, pw_buf *b);

/* The default protocol: $PATHWISE_PROTOCOL, $PATHWISE_PATH, the installed
** copy, else the source tree's (see locate.h). */
const char *pw_cmd_default_protocol(void);

/* Create an engine with the protocol and plugins loaded; on failure print
** the error to stderr and return NULL with *code set. */
pw_engine *pw_cmd_engine(const char *protocol, const char *const *plugins, int nplugins,
                         const pw_limits *lim, int *code);

/* Parse "--memory N", "--instructions N" style values; -1 on error. */
long long pw_cmd_number(const char *s);

#endif
