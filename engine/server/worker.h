/*
** worker.h: the server's evaluation worker processes and the wire between
** them and the supervisor.
**
** A worker is a child process forked by the supervisor. It owns one engine
** (one lua_State) per loaded protocol, single-threaded, under RLIMIT_AS,
** RLIMIT_CPU and RLIMIT_CORE=0, and dies with its parent (PDEATHSIG). It
** talks over one SOCK_STREAM socketpair in frames: a fixed header then
** payload. Requests come in batches; answers go out in batches, in request
** order; an answer's payload goes through a shared ring (pw_worker_ring)
** when it fits, so only its header crosses the socket. A page of shared
** memory (pw_worker_slot) tells the supervisor
** which request the worker is evaluating and since when, so a worker that
** overruns a deadline can be SIGKILLed and the right request blamed.
*/
#ifndef PW_WORKER_H
#define PW_WORKER_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "rpc.h"

enum {
  PW_WIRE_REQ = 1,    /* supervisor -> worker: payload = request line */
  PW_WIRE_RESP,       /* worker -> supervisor: response line + log fragment */
  PW_WIRE_READY,      /* worker -> supervisor: protocols (see pw_rpc_ready_payload) */
  PW_WIRE_FAIL,       /* worker -> supervisor: why the protocols did not load */
  PW_WIRE_RESP_RING   /* worker -> supervisor: a RESP whose payload (ring_len
                         bytes) is in the worker's ring at ring_pos; len 0 */
};

typedef struct pw_wire_hdr {
  uint32_t len;       /* payload bytes after this header */
  uint16_t kind;
  union {
    int16_t method;   /* req: PW_M_EVALUATE or PW_M_CHECK_ORDERS */
    int16_t engine;   /* resp: index of the engine that answered, -1 none */
  };
  uint64_t tag;       /* request tag (never 0) */
  union {
    uint64_t deadline_ns;  /* req: deadline (CLOCK_MONOTONIC ns) */
    uint64_t eval_ns;      /* resp: evaluation time */
  };
  uint32_t resp_len;  /* resp: bytes of the response line */
  int32_t code;       /* resp: 0 or the JSON-RPC error code */
  uint32_t ring_len;  /* resp_ring: payload bytes in the ring */
  uint32_t reserved;
  uint64_t ring_pos;  /* resp_ring: where (bytes produced before it) */
} pw_wire_hdr;

#define PW_WIRE_HDR ((uint32_t)sizeof(pw_wire_hdr))

/* The largest payloads, for request lines of at most max_line bytes: a
** request frame carries the line; a response frame the response line (a
** text report may be longer than the facts) and the log fragment (which
** may hold the facts again). A frame over these ends the peer. */
#define PW_WIRE_MAX_REQ(max_line) ((size_t)(max_line) + 16)
#define PW_WIRE_MAX_RESP(max_line) ((size_t)(max_line) * 4 + (1u << 20))

/* Shared with the supervisor (MAP_SHARED). */
typedef struct pw_worker_slot {
  _Atomic uint64_t tag;       /* request being evaluated, 0 when none */
  _Atomic uint64_t since_ns;  /* when it started */
  _Atomic uint64_t served;
  _Atomic uint64_t state_bytes;  /* its Lua states' bytes after the last request */
  _Atomic uint64_t rebuilds;     /* Lua states it rebuilt */
} pw_worker_slot;

/* A worker's answer ring, shared with the supervisor (MAP_SHARED), one
** producer (the worker) and one consumer (the supervisor). Positions count
** bytes since the start; a payload is contiguous at pos % PW_RING_BYTES
** (the worker skips the rest of the ring rather than wrap one). The
** worker writes a payload, then sends its PW_WIRE_RESP_RING header over the
** socket; the supervisor uses the payload while handling that header (it
** copies what it keeps), then publishes tail = pos + len. The worker
** reuses only bytes below tail, and sends a payload that does not fit
** inline, so it never waits on the ring. The supervisor checks every
** position and length against its own tail before touching the ring, and
** never parses ring bytes in place (a worker could change them meanwhile).
** Only the supervisor and its one worker map a ring (MADV_DONTFORK once
** that worker is forked), so no worker sees another's answers. */
#define PW_RING_BYTES (256u * 1024u)
#define PW_RING_MIN 512u          /* smaller payloads go inline */
typedef struct pw_worker_ring {
  _Atomic uint64_t tail;          /* consumed: written by the supervisor */
  char pad[56];
  char data[PW_RING_BYTES];
} pw_worker_ring;

typedef struct pw_worker_cfg {
  pw_rpc_config rpc;
  size_t max_frame;         /* largest request payload accepted */
  uint64_t rlimit_as;       /* bytes, 0 = leave */
  uint64_t cpu_headroom_s;  /* RLIMIT_CPU soft limit kept this far ahead; 0 = leave */
  pid_t parent;
} pw_worker_cfg;

/* Fork a worker. On success returns its pid and sets *fd to the
** supervisor's end of the socketpair (non-blocking, close-on-exec). The
** child never returns: it runs pw_worker_cfg's protocols and _exits. ring
** (zeroed shared memory) may be NULL: every answer then goes inline. */
pid_t pw_worker_spawn(const pw_worker_cfg *cfg, pw_worker_slot *slot, pw_worker_ring *ring,
                      int *fd);

/* Monotonic clock in nanoseconds (same clock in every process). */
uint64_t pw_worker_now_ns(void);

#endif
