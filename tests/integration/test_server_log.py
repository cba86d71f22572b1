#!/usr/bin/env python3
"""pathwise serve: the decision log. kill -9 under load then restart, with
every acknowledged evaluation in the log exactly once as a whole line; a
torn tail cut and set aside at start; fail closed when the log cannot be
written (disk full, file removed); SIGUSR1 rotation; the sync modes.

PW_KILL9_ROUNDS (default 3) sets how many kill -9 rounds run."""
import glob
import json
import os
import random
import signal
import threading
import time

from srvlib import (Server, check, eval_request, examples, hooked_protocol, hostile_protocol, log_records,
                    read, run, time_scale, wait_until)


def ack_load(srv, facts, tag, stop, acked, lock, window=16):
    """Pipelined evaluations with unique string ids; record acknowledged ids."""
    try:
        c = srv.conn(timeout=10)
        n = 0
        inflight = 0
        while not stop.is_set():
            while inflight < window:
                n += 1
                c.send(eval_request(facts, "%s-%d" % (tag, n)))
                inflight += 1
            r = json.loads(c.line())
            inflight -= 1
            if "result" in r:
                with lock:
                    acked.append(r["id"])
    except (OSError, EOFError, ValueError):
        pass   # the server was killed: whatever was acknowledged is in acked


def test_kill9_under_load(args, tmp):
    rounds = int(os.environ.get("PW_KILL9_ROUNDS", "3"))
    facts = read(examples(args.root)[0])
    acked_all = []
    log = None
    for rnd in range(rounds):
        srv = Server(args, tmp, name="k").start()
        log = srv.log
        stop, lock, acked = threading.Event(), threading.Lock(), []
        ts = [threading.Thread(target=ack_load, args=(srv, facts, "r%dt%d" % (rnd, i), stop,
                                                      acked, lock)) for i in range(4)]
        for t in ts:
            t.start()
        time.sleep(0.3 + random.random() * 0.5)
        pid = srv.proc.pid
        workers = srv.health()["workers"]["pids"]
        srv.kill9()
        stop.set()
        for t in ts:
            t.join(20)
        check(len(acked) > 0, "round %d: nothing acknowledged before kill -9" % rnd)
        acked_all += acked
        # the workers die with their supervisor
        t0 = time.time()
        while any(os.path.exists("/proc/%d" % w) for w in workers) and time.time() - t0 < 5:
            time.sleep(0.05)
        check(not any(os.path.exists("/proc/%d" % w) for w in workers),
              "workers outlived a kill -9 of pid %d" % pid)
    # a restart repairs any torn tail; then every acknowledged id is there once
    srv = Server(args, tmp, name="k").start()
    check(srv.stop() == 0, "restart after kill -9")
    recs = log_records(log)
    # a kill -9 that tore the last line leaves a torn_tail event at the
    # restart (test_torn_tail checks it): no request of its own
    events = [r for r in recs if "log_event" in r]
    check(all(r["log_event"].get("kind") == "torn_tail" for r in events),
          "events other than torn tails: %r" % events[:3])
    recs = [r for r in recs if "log_event" not in r]
    ids = [r["request_id"] for r in recs]
    seen = {}
    for i in ids:
        seen[i] = seen.get(i, 0) + 1
    missing = [a for a in acked_all if a not in seen]
    dup = [i for i, k in seen.items() if k > 1]
    check(not missing, "%d acknowledged evaluations missing from the log, e.g. %r"
          % (len(missing), missing[:5]))
    check(not dup, "records logged twice: %r" % dup[:5])
    print("     %d rounds, %d acknowledged, %d records" % (rounds, len(acked_all), len(recs)))


def test_torn_tail(args, tmp):
    facts = json.loads(read(examples(args.root)[0]))
    srv = Server(args, tmp).start()
    c = srv.conn()
    for i in range(5):
        check("result" in c.call("evaluate", {"facts": facts}, rid=i), "evaluate")
    c.close()
    check(srv.stop() == 0, "stop")
    good = read(srv.log)
    # a torn last line (no newline) and, before it, a record with a bad checksum
    lines = good.split(b"\n")[:-1]
    last = lines[-1].replace(b'"pathway":"', b'"pathway":"X', 1)
    damaged = b"\n".join(lines[:-1]) + b"\n" + last + b"\n" + b'{"seq":6,"time":"2026-'
    with open(srv.log, "wb") as f:
        f.write(damaged)
    srv = Server(args, tmp).start()
    check("cut" in srv.stderr() and "torn" in srv.stderr(), "no repair reported: %s" % srv.stderr())
    aside = glob.glob(srv.log + ".torn-*")
    check(len(aside) == 1, "torn bytes not set aside: %r" % aside)
    check(read(aside[0]).endswith(b'{"seq":6,"time":"2026-'), "set-aside content")
    check(oct(os.stat(aside[0]).st_mode & 0o777) == "0o600", "set-aside file mode")
    c = srv.conn()
    check("result" in c.call("evaluate", {"facts": facts}), "evaluate after repair")
    c.close()
    check(srv.stop() == 0, "stop")
    recs = log_records(srv.log)
    check([r["seq"] for r in recs] == [1, 2, 3, 4, 5, 6], "seq after repair: %r"
          % [r["seq"] for r in recs])
    # the repair is in the log itself: an event naming the segment, the
    # offset where the cut began and where the bytes went (issue 12)
    ev = recs[4].get("log_event")
    kept = len(b"\n".join(lines[:-1]) + b"\n")
    check(ev == {"kind": "torn_tail", "segment": os.path.basename(srv.log), "offset": kept,
                 "bytes": len(damaged) - kept,
                 "bad_records": 1, "torn_line": True, "aside": os.path.basename(aside[0])},
          "torn-tail event: %r" % recs[4])
    check(recs[5].get("method") == "evaluate", "the evaluation after the event: %r" % recs[5])


def test_fail_closed_disk_full(args, tmp):
    if not os.path.exists("/dev/full"):
        print("     (no /dev/full; skipped)")
        return
    srv = Server(args, tmp, log=False)
    srv.cmd += ["--log", "/dev/full"]
    srv.start()
    facts = json.loads(read(examples(args.root)[0]))
    c = srv.conn()
    r = c.call("evaluate", {"facts": facts})
    check(r.get("error", {}).get("code") == -32007 and "No space" in r["error"]["message"],
          "disk full: %r" % r)
    r = c.call("evaluate", {"facts": facts})
    check(r.get("error", {}).get("code") == -32007, "after a failure, refused: %r" % r)
    h = c.call("health")["result"]
    check(h["status"] == "degraded" and h["decision_log"]["ok"] is False, "health %r" % h)
    check(c.call("protocols").get("result"), "cheap methods still answer")
    c.close()
    srv.stop()


def test_fail_closed_removed_then_reopen(args, tmp):
    srv = Server(args, tmp).start()
    facts = json.loads(read(examples(args.root)[0]))
    c = srv.conn()
    check("result" in c.call("evaluate", {"facts": facts}), "evaluate")
    os.unlink(srv.log)
    r = c.call("evaluate", {"facts": facts})
    check(r.get("error", {}).get("code") == -32007 and "removed" in r["error"]["message"],
          "removed log: %r" % r)
    check(c.call("health")["result"]["status"] == "degraded", "health not degraded")
    srv.proc.send_signal(signal.SIGUSR1)
    t0 = time.time()
    while c.call("health")["result"]["status"] != "ok" and time.time() - t0 < 10:
        time.sleep(0.05)
    check(c.call("health")["result"]["status"] == "ok", "SIGUSR1 did not reopen")
    check("result" in c.call("evaluate", {"facts": facts}), "evaluate after reopen")
    c.close()
    check(srv.stop() == 0, "stop")
    recs = log_records(srv.log)
    check(len(recs) == 1 and recs[0]["seq"] == 2, "new file continues the sequence: %r"
          % [r["seq"] for r in recs])
    check(oct(os.stat(srv.log).st_mode & 0o777) == "0o600", "reopened log mode")


def test_stalled_log_deadline(args, tmp):
    """A log that stops accepting writes (a FIFO nobody reads: a stalled
    disk) holds answers; each still gets one within deadline + grace."""
    fifo = os.path.join(tmp, "stall.log")
    os.mkfifo(fifo, 0o600)
    scale = time_scale(args)      # the sanitizer build on a busy machine is slower
    timeout, grace = int(500 * scale), int(100 * scale)
    srv = Server(args, tmp, ["--timeout", str(timeout), "--grace", str(grace)], log=False)
    srv.cmd += ["--log", fifo]
    srv.start()
    c = srv.conn()
    facts = read(examples(args.root)[0])
    n = 300
    t0 = time.time()
    c.send(b"".join(eval_request(facts, i) for i in range(n)))
    got = [json.loads(c.line()) for _ in range(n)]
    took = time.time() - t0
    late = [r for r in got if "error" in r]
    check(late and all(r["error"]["code"] == -32005 for r in late), "errors: %r" % late[:2])
    check(took < (timeout + grace) / 1000.0 + 0.5 * scale, "answers took %.2fs (deadline %d ms + grace %d ms)"
          % (took, timeout, grace))
    h = c.call("health", rid="h")["result"]
    check(h["status"] == "degraded" and h["decision_log"]["stalled"], "health %r" % h)
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)   # the disk recovers, and stays recovered:
    done = threading.Event()                           # drained until the end of the test, so
                                                       # the backlog cannot fill the pipe again
    def drain():
        while not done.is_set():
            try:
                if not os.read(fd, 1 << 20):
                    time.sleep(0.01)
            except BlockingIOError:
                time.sleep(0.01)
    th = threading.Thread(target=drain, daemon=True)
    th.start()
    try:
        t0 = time.time()
        while time.time() - t0 < 10:
            if c.call("health", rid="h")["result"]["status"] == "ok":
                break
            time.sleep(0.02)
        check(c.call("health", rid="h")["result"]["status"] == "ok", "health after the stall")
        check("result" in c.call("evaluate", {"facts": json.loads(facts)}), "evaluate after the stall")
    finally:
        done.set()
        th.join()
    c.close()
    check(srv.stop() == 0, "stop")
    os.close(fd)


def test_rotation(args, tmp):
    srv = Server(args, tmp).start()
    facts = read(examples(args.root)[0])
    c = srv.conn()
    total = 0
    for part in range(3):
        for i in range(50):
            c.send(eval_request(facts, i))
        for i in range(50):
            check("result" in json.loads(c.line()), "evaluate")
        total += 50
        os.rename(srv.log, srv.log + ".%d" % part)
        srv.proc.send_signal(signal.SIGUSR1)
        time.sleep(0.3)
    c.close()
    check(srv.stop() == 0, "stop")
    recs = []
    for part in range(3):
        recs += log_records(srv.log + ".%d" % part)
    check(len(recs) == total and [r["seq"] for r in recs] == list(range(1, total + 1)),
          "records across rotations: %d" % len(recs))
    check(os.path.exists(srv.log) and os.path.getsize(srv.log) == 0, "fresh log after rotation")


def test_sync_modes_and_log_facts(args, tmp):
    facts = read(examples(args.root)[0])
    for mode in ("batch", "none", "always"):
        extra = ["--log-facts"] if mode == "always" else []
        srv = Server(args, tmp, extra, sync=mode, name=mode).start()
        c = srv.conn()
        for i in range(300):
            c.send(eval_request(facts, i))
        got = sorted(json.loads(c.line())["id"] for _ in range(300))
        check(got == list(range(300)), "%s: answers" % mode)
        st = c.call("stats")["result"]["decision_log"]
        c.close()
        check(srv.stop() == 0, "%s: stop" % mode)
        recs = log_records(srv.log)
        check(len(recs) == 300, "%s: %d records after a clean stop" % (mode, len(recs)))
        if mode == "always":
            check(json.loads(facts) == recs[0]["facts"], "--log-facts logs the facts")
            # 300 pipelined records share fdatasyncs (one per record would be 300)
            check(1 <= st["syncs"] < 300, "group commit: %r" % st)
        else:
            check("facts" not in recs[0], "facts logged without --log-facts")


def test_errors_are_audited(args, tmp):
    """Every request that reached its protocol leaves exactly one record,
    errors included, with its error kind (issue 12): script error, budget,
    memory, and a worker killed at the deadline."""
    proto = hostile_protocol(args, tmp)
    # the budgets, not the deadline, must stop these, even on a slow
    # (sanitized) build: a generous --timeout
    srv = Server(args, tmp, ["--protocol", proto, "--memory", str(32 << 20),
                             "--timeout", "60000"]).start()
    c = srv.conn()
    facts = json.loads(read(examples(args.root)[0]))
    want = {"ok": None, "boom": "protocol", "loop": "budget", "bomb": "memory"}
    for rid, pid in enumerate(want, 1):
        r = c.call("evaluate", {"facts": dict(facts, patient_id=pid)}, rid=rid)
        check(("result" in r) == (want[pid] is None), "%s: %r" % (pid, r))
    r = c.call("evaluate", {"facts": {"ecog": 9}}, rid=5)
    check("error" in r, "invalid facts accepted: %r" % r)
    want["invalid"] = "validation"
    r = c.call("evaluate", {"facts": facts, "protocol": "nope"}, rid=99)  # no protocol reached
    check(r.get("error", {}).get("code") == -32010, "unknown protocol: %r" % r)
    srv.stop()
    recs = log_records(srv.log)
    for rid, pid in enumerate(want, 1):
        mine = [x for x in recs if x.get("request_id") == rid]
        check(len(mine) == 1, "%s: %d records, wanted 1" % (pid, len(mine)))
        kind = mine[0].get("error", {}).get("kind")
        check(kind == want[pid], "%s: error kind %r in %r" % (pid, kind, mine[0]))
        check(mine[0].get("protocol", {}).get("id") == "mrc_second_line", "no protocol: %r" % mine[0])
    check(not [x for x in recs if x.get("request_id") == 99], "a refused request was logged")


def test_worker_lost_is_audited(args, tmp):
    """A worker killed while evaluating leaves the request's record, kind
    worker_crash, written by the supervisor."""
    proto = hooked_protocol(args, tmp, '  if facts.patient_id == "spin" then while true do end end\n')
    srv = Server(args, tmp, ["--protocol", proto, "--instructions", "100000000000000",
                             "--timeout", "60000"], workers=1).start()
    c = srv.conn()
    facts = json.loads(read(examples(args.root)[0]))
    pid = srv.health()["workers"]["pids"][0]
    c.send(eval_request(json.dumps(dict(facts, patient_id="spin")).encode(), 7))
    time.sleep(0.5)
    os.kill(pid, signal.SIGKILL)
    r = json.loads(c.line())
    check(r.get("error", {}).get("code") == -32006, "not a crash error: %r" % r)
    srv.stop()
    mine = [x for x in log_records(srv.log) if x.get("request_id") == 7]
    check(len(mine) == 1, "%d records for the lost request, wanted 1" % len(mine))
    check(mine[0].get("error", {}).get("kind") == "worker_crash", "record: %r" % mine[0])


def schema_errors(args, recs):
    """Every record (events too) against schemas/decision-log.schema.json,
    with python3-jsonschema: the failures, as text."""
    import jsonschema
    with open(os.path.join(args.root, "schemas", "decision-log.schema.json")) as f:
        v = jsonschema.Draft202012Validator(json.load(f))
    return ["record %s: %s" % (r.get("seq"), e.message) for r in recs for e in v.iter_errors(r)]


def test_lost_record_names_its_protocol(args, tmp):
    """The record the supervisor writes for a request whose worker was
    killed -9 mid-evaluate names the protocol the request reached (id,
    version, sha256, file), as a worker's record does, and every record of
    the log validates against the schema. Two protocols are loaded: the
    record names the one the request asked for."""
    spin = '  if facts.patient_id == "spin" then while true do end end\n'
    first = hooked_protocol(args, tmp, spin)
    alt = hooked_protocol(args, tmp, spin, name="alt.lua")
    with open(alt) as f:
        src = f.read()
    check('id = "mrc_second_line",' in src, "the protocol id line is missing")
    with open(alt, "w") as f:
        f.write(src.replace('id = "mrc_second_line",', 'id = "mrc_alt",', 1))
    srv = Server(args, tmp, ["--protocol", first, "--protocol", alt, "--instructions",
                             "100000000000000", "--timeout", "60000"], workers=1).start()
    c = srv.conn()
    facts = json.loads(read(examples(args.root)[0]))
    for rid, params in ((1, {"facts": facts, "protocol": "mrc_alt"}), (2, {"facts": facts})):
        r = c.call("evaluate", params, rid=rid)
        check("result" in r, "%r is not answered: %r" % (params.get("protocol"), r))
    for rid, proto in ((7, "mrc_alt"), (8, None)):
        pid = srv.health()["workers"]["pids"][0]
        params = {"facts": dict(facts, patient_id="spin")}
        if proto:
            params["protocol"] = proto
        c.send((json.dumps({"jsonrpc": "2.0", "id": rid, "method": "evaluate", "params": params})
                + "\n").encode())
        time.sleep(0.5 * time_scale(args))
        os.kill(pid, signal.SIGKILL)
        r = json.loads(c.line())
        check(r.get("error", {}).get("code") == -32006, "not a crash error: %r" % r)
        wait_until("a new worker", lambda: srv.health()["workers"]["pids"] not in ([], [pid]))
    srv.stop()
    recs = log_records(srv.log, events=True)
    bad = schema_errors(args, recs)
    check(not bad, "log records do not validate: %s" % "; ".join(bad[:5]))
    ok = {rid: [x for x in recs if x.get("request_id") == rid] for rid in (1, 2)}
    check(all(len(v) == 1 for v in ok.values()), "records of the answered requests: %r" % ok)
    for rid, pid_, fname in ((7, "mrc_alt", "alt.lua"), (8, "mrc_second_line", "p.lua")):
        mine = [x for x in recs if x.get("request_id") == rid]
        check(len(mine) == 1, "%d records for lost request %d, wanted 1" % (len(mine), rid))
        rec = mine[0]
        check(rec.get("error", {}).get("kind") == "worker_crash", "record: %r" % rec)
        p = rec.get("protocol", {})
        check(p.get("id") == pid_ and p.get("file") == fname, "record %d protocol: %r" % (rid, p))
        want = ok[1 if pid_ == "mrc_alt" else 2][0]["protocol"]
        check(p == want, "record %d protocol %r, the worker's own is %r" % (rid, p, want))


if __name__ == "__main__":
    run([test_kill9_under_load, test_torn_tail, test_fail_closed_disk_full,
         test_fail_closed_removed_then_reopen, test_stalled_log_deadline, test_rotation,
         test_sync_modes_and_log_facts, test_errors_are_audited, test_worker_lost_is_audited,
         test_lost_record_names_its_protocol])
