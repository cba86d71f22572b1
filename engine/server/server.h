/*
** server.h: `pathwise serve` and `pathwise client`, and the map of
** engine/server.
**
** The server is one supervisor process running a libuv loop (Unix socket,
** newline-delimited JSON-RPC 2.0, the cheap methods, the decision log) and
** N pre-forked worker processes that evaluate. Both entry points take the
** subcommand's own argv (argv[0] is "serve" or "client"), print their own
** --help, and return a sysexits code.
**
** What each file owns (the supervisor's shared state is supervisor.h):
**   serve.c     pw_serve_main: startup, the loop's per-iteration flush and
**               tick, signals, shutdown
**   options.c   the command line: defaults, ranges, --help
**   listen.c    the socket file: lock, stale file, bind with its mode, unlink
**   conn.c      connections: accept and peer check, read and split lines,
**               backpressure, idle close; the one write path (pw_outq_flush)
**               for connections and worker channels alike
**   request.c   one request line: envelope (jsonrpc, method, id), errors,
**               the req (an evaluation on its way to a worker)
**   methods.c   health, stats, protocols, rules, reload, answered here
**   stats.c     the counters and latency histogram behind `stats`; the
**               supervisor's memory figures and its heap trim
**   pool.c      the worker processes: dispatch, frames, loss, respawn,
**               watchdog
**   answer.c    a worker's answer: log record, held until durable, sent
**   reload.c    generations of workers, reload, the file watcher (protocols, plugins, bases)
**   reloadlog.c provenance of reloads: files read, decision-log reload events, messages for clients
**   queue.h     the one FIFO of pending things (requests, held answers,
**               reload waiters)
**   worker.c    the worker process itself (fork, limits, read-eval-write
**               loop) and the frame format between it and the supervisor
**   rpc.c       JSON-RPC helpers: the bounded member scanner, error lines
**   handler.c   the worker's engines (examples checked at load) and its
**               handler of evaluate and check_orders
**   declog.c    the decision log: JSON Lines with CRC, group commit on the
**               uv thread pool, torn-tail repair, fail closed
**   httpd.c     CDS Hooks over HTTP/1.1 (--http PATH, --http-port N on
**               127.0.0.1): listeners, routing to a "cds" line, answers,
**               the header/body/idle timeouts; http.c the llhttp parser,
**               jwt.c the bearer token, cds.c (worker side) the service
**   ../cli/client.c  `pathwise client`
** May include: engine/base, engine/core, engine/cli/command.h, libuv. The
** core never includes anything from here.
**
** Where a request goes, from socket to log:
**   conn.c     conn_read -> conn_process: one line at a time (at most
**              --max-line; reading pauses under backpressure)
**   request.c  pw_request_line: the envelope is scanned, not parsed;
**              health/stats/protocols/rules/reload -> methods.c (after the
**              full gate check); evaluate/check_orders -> a req
**   pool.c     pw_pool_dispatch: to the least loaded ready worker of the
**              active generation, else srv.pending; frames batched and
**              written once per loop iteration (serve.c on_check)
**   worker.c   worker_loop -> handler.c pw_rpc_handle: gate + decode, params,
**              evaluate, response line + log fragment, back in order
**              (the payload through the worker's shared answer ring when it
**              fits, pool.c ring_answer)
**   pool.c     worker_read -> worker_answer (the oldest request it holds)
**   answer.c   pw_answer_response: append the record (declog.c); with
**              --log-sync always|batch hold the line until the record is
**              durable|written (pw_answer_log_done), then
**   conn.c     pw_conn_send: appended to the connection's output, written
**              at the end of the loop iteration.
** Errors leave at any step as a JSON-RPC error line on the same path.
*/
#ifndef PW_SERVER_H
#define PW_SERVER_H

int pw_serve_main(int argc, char **argv);
int pw_client_main(int argc, char **argv);

#endif
