#!/usr/bin/env python3
"""pathwise serve: a worker's memory returns to its baseline (issue 12,
"the same input, the same answer"). After a deep recursion error (or a
state that reached its memory cap and was rebuilt) the
worker's Lua state is collected back to its baseline and the freed pages
go back to the kernel (before the fix the worker's RSS stayed about 10x
higher: 4 MB -> 43 MB); a protocol that keeps data between evaluations
gets its state rebuilt instead of running into its memory cap. `stats`
reports each worker's state bytes and rebuilds."""
import json
import os
import signal
import time

from srvlib import (Server, check, eval_request, examples, hooked_protocol, read, run, sanitized,
                    wait_until)

TRICKS = """
  if facts.patient_id == "deep" then
    local function f(n) return 1 + f(n + 1) end
    return f(1)
  end
  if facts.patient_id == "bomb" then
    local t = {}
    for i = 1, 100000000 do t[i] = string.rep("x", 4096) .. i end
  end
  if facts.patient_id == "leak" then
    kept[#kept + 1] = string.rep("x", 4 << 20) .. #kept
  end
"""


def protocol(args, tmp):
    """The default protocol with a chunk-level table and, by patient_id, a
    deep recursion (deep) or 4 MiB kept for good in that table (leak)."""
    return hooked_protocol(args, tmp, TRICKS, prelude="local kept = {}\n")


def rss_kb(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


def worker_state(c):
    w = c.call("stats", rid="s")["result"]["workers"]
    check("state_bytes" in w and "state_rebuilds" in w, "stats reports no state memory: %r" % w)
    check(len(w["state_bytes"]) == 1, "one worker: %r" % w)
    return w["state_bytes"][0], w["state_rebuilds"][0]


def test_deep_recursion_memory_returns(args, tmp):
    srv = Server(args, tmp, ["--protocol", protocol(args, tmp), "--timeout", "60000"],
                 workers=1).start()
    pid = srv.health()["workers"]["pids"][0]
    facts = json.loads(read(examples(args.root)[0]))
    c = srv.conn()
    for i in range(5):
        ref = c.call("evaluate", {"facts": facts}, rid=i)
        check("result" in ref, "ordinary: %r" % ref)
    r0 = rss_kb(pid)
    for i in range(3):
        r = c.call("evaluate", {"facts": dict(facts, patient_id="deep")}, rid=10 + i)
        check("stack overflow" in r.get("error", {}).get("message", ""), "deep: %r" % r)
    # the memory cap reached: the state is rebuilt, its old memory returned
    r = c.call("evaluate", {"facts": dict(facts, patient_id="bomb")}, rid=20)
    check(r.get("error", {}).get("data", {}).get("kind") == "memory", "bomb: %r" % r)
    after = c.call("evaluate", {"facts": facts}, rid=ref["id"])   # the same request as ref
    check(after == ref, "an ordinary evaluation after the recursion answers differently")
    r1 = rss_kb(pid)
    print("     worker RSS %d -> %d KiB (3 deep recursions, a memory bomb)" % (r0, r1))
    if not sanitized(args.pathwise):   # ASan keeps freed memory in quarantine: RSS says nothing
        check(r1 < r0 + 8 * 1024, "worker RSS %d KiB after the recursions, %d before" % (r1, r0))
    b1, n1 = worker_state(c)
    print("     state %d bytes after, rebuilds %d" % (b1, n1))
    check(b1 < 4 << 20, "state memory %d bytes after the recursions" % b1)
    c.close()
    check(srv.stop() == 0, "stop")


def test_state_that_keeps_growing_is_rebuilt(args, tmp):
    """4 MiB kept per evaluation would reach the 64 MiB cap after 16: the
    state is rebuilt first, and every evaluation answers."""
    srv = Server(args, tmp, ["--protocol", protocol(args, tmp), "--timeout", "60000"],
                 workers=1).start()
    facts = json.loads(read(examples(args.root)[0]))
    c = srv.conn()
    ref = c.call("evaluate", {"facts": facts}, rid=0)
    for i in range(40):
        r = c.call("evaluate", {"facts": dict(facts, patient_id="leak")}, rid=i + 1)
        check("result" in r, "leak %d: %r" % (i, r))
    check(c.call("evaluate", {"facts": facts}, rid=0) == ref, "ordinary answer changed")
    b, n = worker_state(c)
    print("     state %d bytes, %d rebuilds" % (b, n))
    check(n >= 1, "the state was never rebuilt")
    check(b < 16 << 20, "state memory %d bytes" % b)
    c.close()
    check(srv.stop() == 0, "stop")


HEAP_GROWTH_MAX = 128 * 1024   # bytes of heap in use the supervisor may gain after warm-up
UNUSED_GROWTH_MAX_KIB = 1024   # RSS not in use it may keep (glibc: trimmed once a second)


def supervisor_memory(srv):
    m = srv.call("stats")["result"].get("memory")
    check(m and m.get("heap") and "in_use" in m["heap"] and "rss_kib" in m,
          "stats reports no supervisor heap: %r" % m)
    return m


def unused_kib(m):
    """Resident but not in use: RSS less the heap in use."""
    return m["rss_kib"] - m["heap"]["in_use"] // 1024


def settle(srv, ok, timeout=10):
    """The supervisor's memory once ok(memory) holds, or after timeout
    seconds (a bound on waiting, not a speed check): the last figures."""
    t0 = time.time()
    while True:
        m = supervisor_memory(srv)
        if ok(m) or time.time() - t0 > timeout:
            return m
        time.sleep(0.2)


def baseline(srv):
    """The figures after warm-up: the least heap in use of a few samples
    (a generation retired by the last reload is freed once its workers
    are reaped)."""
    samples = []
    for _ in range(6):
        samples.append(supervisor_memory(srv))
        time.sleep(0.3)
    return min(samples, key=lambda m: m["heap"]["in_use"])


def traffic_round(srv, facts_lines, n):
    """n pipelined requests of every kind over one connection, each answered:
    valid evaluations, invalid facts, malformed lines, unknown methods, health."""
    mix = [eval_request(f, 1) for f in facts_lines] + [
        eval_request(b'{"ecog":9}', 2), b"garbage\n", b"[" * 100 + b"\n",
        b'{"jsonrpc":"2.0","id":"' + b"x" * 1024 + b'","method":"health"}\n',
        b'{"jsonrpc":"2.0","id":3,"method":"nope"}\n', b'{"jsonrpc":"2.0","id":4,"method":"health"}\n']
    c = srv.conn()
    for i in range(0, n, 50):
        batch = [mix[(i + j) % len(mix)] for j in range(min(50, n - i))]
        c.send(b"".join(batch))
        for line in c.lines(len(batch)):
            check(line.startswith(b"{"), "reply %r" % line[:100])
    c.close()


def abuse(srv):
    """An oversize line (2 MiB: read up to --max-line, 1 MiB, a buffer big
    enough to be mmapped; freed, it raises glibc's mmap threshold), a client
    that never reads 2,000 replies, then a reload."""
    c = srv.conn()
    try:
        c.send(b'{"jsonrpc":"2.0","id":1,"method":"health","params":{"x":"' + b"x" * (2 << 20) + b'"}}\n')
        c.at_eof(10)
    except OSError:
        pass   # closed by the server while we were sending: fine
    c.close()
    c = srv.conn()
    c.send(b'{"jsonrpc":"2.0","id":1,"method":"stats"}\n' * 2000)
    time.sleep(0.5)
    c.close()
    r = srv.call("reload")
    check("result" in r, "reload: %r" % r)


def quiet(srv, workers):
    """Nothing in flight, no reload, every worker ready."""
    def done():
        h = srv.health()
        st = srv.call("stats")["result"]
        return (h["workers"]["ready"] == workers and not h["reload"]["in_progress"]
                and st["in_flight"] == 0 and h["connections"] <= 1)
    wait_until("the server settles", done)


def test_supervisor_heap_flat(args, tmp):
    """issue 12, "memory must not grow": thousands of mixed requests with
    oversize lines, never-reading clients, reloads and a worker killed
    leave the supervisor's heap in use where it was after a warm-up round
    of the same (no leak), and (glibc) its RSS too: before the fix its RSS
    grew 5.3 -> 8.5 MiB in the soak with the heap flat, freed buffers kept
    by glibc once an oversize line had raised its mmap threshold."""
    srv = Server(args, tmp, ["--protocol", protocol(args, tmp), "--timeout", "60000"]).start()
    facts = [read(p) for p in examples(args.root)]
    traffic_round(srv, facts, 300)
    abuse(srv)
    quiet(srv, 2)
    m0 = baseline(srv)
    for k in range(8):
        traffic_round(srv, facts, 750)
        abuse(srv)
        if k == 2:
            os.kill(srv.health()["workers"]["pids"][0], signal.SIGKILL)
    quiet(srv, 2)
    # a generation just retired is freed once its workers are reaped: poll
    h0, u0 = m0["heap"]["in_use"], unused_kib(m0)
    m1 = settle(srv, lambda m: m["heap"]["in_use"] <= h0 + HEAP_GROWTH_MAX)
    print("     supervisor heap in use %d -> %d bytes, RSS %d -> %d KiB (%s), %d trims"
          % (h0, m1["heap"]["in_use"], m0["rss_kib"], m1["rss_kib"], m1["heap"]["allocator"], m1["trims"]))
    check(m1["heap"]["in_use"] <= h0 + HEAP_GROWTH_MAX,
          "the supervisor's heap in use grew from %d to %d bytes (bound +%d)"
          % (h0, m1["heap"]["in_use"], HEAP_GROWTH_MAX))
    if m1["heap"]["allocator"] == "glibc":   # ASan's quarantine keeps freed memory: RSS says nothing
        m2 = settle(srv, lambda m: unused_kib(m) <= u0 + UNUSED_GROWTH_MAX_KIB)
        print("     RSS less heap in use %d -> %d KiB" % (u0, unused_kib(m2)))
        check(unused_kib(m2) <= u0 + UNUSED_GROWTH_MAX_KIB,
              "the supervisor keeps %d KiB of RSS not in use, %d after warm-up (bound +%d): RSS %d KiB"
              % (unused_kib(m2), u0, UNUSED_GROWTH_MAX_KIB, m2["rss_kib"]))
    check(srv.stop() == 0, "stop")


if __name__ == "__main__":
    run([test_deep_recursion_memory_returns, test_state_that_keeps_growing_is_rebuilt,
         test_supervisor_heap_flat])
