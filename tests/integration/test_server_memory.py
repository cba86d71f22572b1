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

from srvlib import Server, check, examples, hooked_protocol, read, run, sanitized

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


if __name__ == "__main__":
    run([test_deep_recursion_memory_returns, test_state_that_keeps_growing_is_rebuilt])
