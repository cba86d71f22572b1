/*
** server.h: `pathwise serve` and `pathwise client`.
**
** The server is a supervisor process running a libuv loop (Unix socket,
** newline-delimited JSON-RPC 2.0, cheap methods, the decision log) and N
** pre-forked worker processes that evaluate (worker.h). Both entry points
** take the subcommand's own argv (argv[0] is "serve" or "client"), print
** their own --help, and return a sysexits code.
*/
#ifndef PW_SERVER_H
#define PW_SERVER_H

int pw_serve_main(int argc, char **argv);
int pw_client_main(int argc, char **argv);

#endif
