#!/usr/bin/env python3
"""`pathwise serve` against abusive clients and failing workers (issue 12):
slowloris (--line-timeout), clients that never read (--write-timeout),
administrative methods refused by peer credentials, `health` naming a
worker that keeps failing, evaluate_fhir errors audited, ids in error
replies."""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from srvlib import (Conn, Server, check, eval_request, examples, hooked_protocol,  # noqa: E402
                    hostile_protocol, log_records, read, run, wait_until)


def open_conns(srv):
    return srv.call("stats")["result"]["connections"]["open"]


def drip(sock_path, head, byte=b" ", limit=15):
    """Connect, send head, then one byte every 0.3 s until the server
    closes the connection (or `limit` seconds pass). Returns (how it
    closed or None, everything the server sent)."""
    c = Conn(sock_path, timeout=10)
    c.send(head)
    t0 = time.time()
    c.s.settimeout(0.3)
    while time.time() - t0 < limit:
        try:
            c.send(byte)
        except OSError:
            return "send failed", c.buf
        try:
            chunk = c.s.recv(4096)
            if not chunk:
                return "eof", c.buf
            c.buf += chunk
        except socket.timeout:
            pass
        except ConnectionResetError:
            return "reset", c.buf
    return None, c.buf


def test_slowloris_closed(args, tmp):
    """A partial line fed one byte at a time is closed after --line-timeout,
    with a reason; the idle timeout alone never fires (each byte resets it).
    On the --http socket an HTTP request's headers are timed by
    --http-header-timeout, whatever --line-timeout says."""
    http = os.path.join(tmp, "h.sock")
    srv = Server(args, tmp, ["--line-timeout", "1", "--idle-timeout", "60", "--http-header-timeout", "2500",
                             "--http", http, "--http-no-auth"], workers=1).start()
    closed, got = drip(srv.sock, b'{"jsonrpc":"2.0",')
    check(closed is not None, "slowloris client still open after 15 s: %r" % got[:200])
    line = got.split(b"\n")[0]
    r = json.loads(line)
    check(r["error"]["code"] == -32009 and "line-timeout" in r["error"]["message"],
          "no reason given: %r" % line)
    closed, got = drip(http, b"POST /cds-services/x HTTP/1.1\r\nHost: a\r\nX-Slow: ", b"a")
    check(closed is not None, "HTTP slowloris client still open after 15 s: %r" % got[:200])
    check(got.startswith(b"HTTP/1.1 408 ") and b"http-header-timeout" in got,
          "HTTP: no reason given: %r" % got[:300])
    # a client that pauses between whole lines is not affected
    ok = srv.conn()
    check("result" in ok.call("health"), "health")
    time.sleep(2.5)
    check("result" in ok.call("health", rid=2), "a connection between lines was closed")
    check(srv.call("stats")["result"]["connections"]["stalled"] == 2, "stalled not counted")
    srv.stop()


def test_never_reading_client_closed(args, tmp):
    """A client that pipelines many requests and never reads is closed once
    its unsent answers pass --max-write-queue for --write-timeout; others
    are served meanwhile."""
    srv = Server(args, tmp, ["--write-timeout", "1", "--max-write-queue", "65536",
                             "--idle-timeout", "600"], workers=1).start()
    c = srv.conn(timeout=10)
    one = b'{"jsonrpc":"2.0","id":1,"method":"rules"}\n'
    rules_len = len(json.dumps(srv.call("rules")))
    check(rules_len > 1000, "rules answer unexpectedly small")
    # answers enough to fill the socket buffers and 64 KiB more, never read;
    # the sender blocks once the server stops reading, until it closes
    n = (4 << 20) // rules_len + 1
    c.s.settimeout(None)
    sent = []

    def sender():
        try:
            for _ in range(n):
                c.send(one)
                sent.append(1)
        except OSError:
            pass
    threading.Thread(target=sender, daemon=True).start()
    wait_until("the never-reading client closed", lambda: open_conns(srv) == 1)
    check(srv.call("stats")["result"]["connections"]["stalled"] == 1, "stalled not counted")
    check(len(sent) > 10, "could not even send: %d" % len(sent))
    check("--write-timeout" in srv.stderr(), "no operator message: %s" % srv.stderr()[-500:])
    srv.stop()


def _as_nobody(sock, lines):
    """Send each line from a child process whose uid is nobody's; return
    the answers (one line each for those with an id)."""
    code = (
        "import os, socket, sys, json\n"
        "os.setgroups([]); os.setgid(65534); os.setuid(65534)\n"
        "assert os.getuid() == 65534\n"
        "s = socket.socket(socket.AF_UNIX); s.settimeout(30); s.connect(sys.argv[1])\n"
        "f = s.makefile('rb')\n"
        "for l in json.loads(sys.argv[2]):\n"
        "    s.sendall(l.encode() + b'\\n')\n"
        "    if '\"id\"' in l: sys.stdout.write(f.readline().decode())\n")
    r = subprocess.run([sys.executable, "-c", code, sock, json.dumps(lines)],
                       capture_output=True, timeout=60)
    check(r.returncode == 0, "nobody client failed: %s" % r.stderr.decode()[-800:])
    return [json.loads(x) for x in r.stdout.decode().splitlines()]


def test_admin_methods_need_own_uid_or_root(args, tmp):
    """reload is refused, by SO_PEERCRED, to a client whose uid is neither
    the server's nor root's; health stays open to it; the server's own uid
    may reload."""
    check(os.geteuid() == 0, "this test must run as root (as CI does): it "
          "connects as uid 65534 (nobody) too")
    os.chmod(tmp, 0o755)
    srv = Server(args, tmp, ["--socket-mode", "0666"], workers=1).start()
    gen = srv.health()["workers"]["generation"]
    out = _as_nobody(srv.sock, [
        '{"jsonrpc":"2.0","id":1,"method":"health"}',
        '{"jsonrpc":"2.0","id":"r","method":"reload"}',
        '{"jsonrpc":"2.0","method":"reload"}',   # a notification: no reply
        '{"jsonrpc":"2.0","id":3,"method":"health"}'])
    check("result" in out[0], "health refused to nobody: %r" % out[0])
    e = out[1].get("error", {})
    check(out[1].get("id") == "r" and e.get("code") == -32011 and "administrative" in
          e.get("message", "") and "65534" in e.get("message", ""), "reload: %r" % out[1])
    check(out[2].get("id") == 3 and "result" in out[2], "after the refusals: %r" % out[2])
    time.sleep(0.5)
    check(srv.health()["workers"]["generation"] == gen, "a refused reload happened")
    r = srv.call("reload")
    check(r.get("result", {}).get("reloaded") is True, "root's reload: %r" % r)
    check(srv.health()["workers"]["generation"] == gen + 1, "root's reload did not happen")
    check("refused reload from uid 65534" in srv.stderr(), "not in the operator's log")
    srv.stop()


def _failing_worker(h):
    ws = h["workers"].get("state", [])
    return [w for w in ws if w.get("state") == "failing"]


def test_health_reports_failing_worker(args, tmp):
    """A worker whose evaluations keep failing (script errors) makes
    health say degraded and name it, with its streak and last error kind;
    one good evaluation clears it. Client errors (invalid facts) do not
    count."""
    proto = hostile_protocol(args, tmp)
    srv = Server(args, tmp, ["--protocol", proto], workers=1).start()
    facts = json.loads(read(examples(args.root)[0]))
    c = srv.conn()
    for i in range(8):
        r = c.call("evaluate", {"facts": {"ecog": 9}}, rid=i)
        check(r.get("error", {}).get("code") == -32001, "invalid facts: %r" % r)
    h = srv.health()
    check(h["status"] == "ok" and not _failing_worker(h), "client errors count: %r" % h)
    for i in range(6):
        r = c.call("evaluate", {"facts": dict(facts, patient_id="boom")}, rid=i)
        check(r.get("error", {}).get("code") == -32002, "boom: %r" % r)
    h = srv.health()
    bad = _failing_worker(h)
    check(h["status"] == "degraded" and len(bad) == 1, "failing worker not reported: %r" % h)
    check(bad[0]["consecutive_failures"] >= 5 and bad[0]["last_error"] == "protocol" and
          bad[0]["pid"] == h["workers"]["pids"][0], "worker state: %r" % bad[0])
    r = c.call("evaluate", {"facts": facts}, rid=99)
    check("result" in r, "good evaluation: %r" % r)
    h = srv.health()
    check(h["status"] == "ok" and not _failing_worker(h), "not cleared: %r" % h)
    srv.stop()


def test_health_reports_crash_looping_worker(args, tmp):
    """A worker killed at the deadline on every evaluation (respawned each
    time) is reported too: the streak belongs to its slot, not its pid."""
    proto = hooked_protocol(args, tmp, '  if facts.patient_id == "spin" then while true do end end\n', "spin.lua")
    srv = Server(args, tmp, ["--protocol", proto, "--instructions", "100000000000000",
                             "--timeout", "200", "--grace", "100"], workers=1).start()
    facts = json.loads(read(examples(args.root)[0]))
    for i in range(6):
        c = srv.conn()
        r = c.call("evaluate", {"facts": dict(facts, patient_id="spin")}, rid=i)
        check(r.get("error", {}).get("code") == -32005, "not a deadline kill: %r" % r)
        c.close()
        wait_until("worker respawned", lambda: srv.health()["workers"]["ready"] == 1)
    h = srv.health()
    bad = _failing_worker(h)
    check(h["status"] == "degraded" and len(bad) == 1 and bad[0]["consecutive_failures"] >= 5
          and bad[0]["last_error"] == "deadline", "crash loop not reported: %r" % h)
    srv.stop()


def test_fhir_errors_are_audited(args, tmp):
    """evaluate_fhir failures that reached the adapter (bad bundles) or the
    protocol (a script error) leave exactly one decision-log record with
    their error kind, as evaluate's do; requests refused before (unknown
    params, a bad as_of) leave none."""
    proto = hostile_protocol(args, tmp)
    srv = Server(args, tmp, ["--protocol", proto, "--max-line", str(4 << 20)], workers=1).start()
    path = os.path.join(args.root, "tests", "data", "fhir", "colorectal", "braf_v600e.json")
    text = read(path).decode()
    check("case-braf" in text, "the bundle changed: no case-braf")
    good = json.loads(text)
    boom = json.loads(text.replace("case-braf", "boom"))
    cases = [   # id, params, error code (0: a result), kind logged (None: no record)
        (1, {"bundle": good, "as_of": "2026-06-01"}, 0, "ok"),
        (2, {"bundle": {"resourceType": "Bundle", "type": "collection", "entry": []}},
         -32001, "validation"),
        (3, {"bundle": {"resourceType": "Patient", "id": "x", "deceasedBoolean": True}},
         -32001, "validation"),
        (4, {"bundle": boom, "as_of": "2026-06-01"}, -32002, "protocol"),
        (5, {"bundle": good, "facts": {}}, -32602, None),
        (6, {"bundle": good, "as_of": "2026-13-01"}, -32602, None),
        (7, {"bundle": good, "protocol": "nope"}, -32010, None),
    ]
    c = srv.conn()
    for rid, params, code, _ in cases:
        r = c.call("evaluate_fhir", params, rid)
        got = r.get("error", {}).get("code", 0)
        check(r.get("id") == rid and got == code, "case %d: %r" % (rid, str(r)[:300]))
    srv.stop()
    recs = log_records(srv.log)
    for rid, _, _, kind in cases:
        mine = [x for x in recs if x.get("request_id") == rid]
        if kind is None:
            check(not mine, "case %d: refused before the adapter, yet logged: %r" % (rid, mine))
            continue
        check(len(mine) == 1, "case %d: %d records, wanted 1" % (rid, len(mine)))
        check(mine[0].get("method") == "evaluate_fhir", "case %d: %r" % (rid, mine[0]))
        got = mine[0].get("error", {}).get("kind", "ok")
        check(got == kind, "case %d: kind %r, wanted %r: %r" % (rid, got, kind, mine[0]))
        check(mine[0].get("protocol", {}).get("id") == "mrc_second_line", "case %d: %r" % (rid, mine[0]))


def test_ids_echoed_in_parse_errors(args, tmp):
    """A line the strict gate refuses (a duplicate key, NaN, bad UTF-8 deep
    inside) still has an id that can be read: its error reply echoes it,
    whether the supervisor or a worker answers. An id that cannot be read
    beyond doubt (the id key twice, a truncated line, an id with bad bytes,
    1e400, 1 KiB) is not echoed, and the reply stays valid JSON."""
    srv = Server(args, tmp, workers=1).start()
    c = srv.conn()
    echoed = [
        (7, b'{"jsonrpc":"2.0","id":7,"method":"evaluate","params":{"facts":{"a":1,"a":2}}}'),
        (8, b'{"jsonrpc":"2.0","id":8,"method":"health","x":1,"x":2}'),
        (9, b'{"jsonrpc":"2.0","id":9,"method":"evaluate","params":{"facts":{}},"foo":NaN}'),
        ("u", b'{"jsonrpc":"2.0","id":"u","method":"evaluate","params":{"facts":{"a":"\xff"}}}'),
        (12, b'{"jsonrpc":"2.0","id":12,"method":"evaluate_fhir","params":{"bundle":{"a":1,"a":1}}}'),
        (-3.5, b'{"jsonrpc":"2.0","method":"check_orders","params":{"facts":{"b":1,"b":1}},"id":-3.5}'),
        ("a\\b", b'{"jsonrpc":"2.0","id":"a\\\\b","method":"nosuch","x":1,"x":2}'),
        (13, b'{"jsonrpc":"2.0","id":13,"method":"health","params":{"x":[1,2,]}}'),
    ]
    for rid, line in echoed:
        c.send(line + b"\n")
        out = c.line()
        r = json.loads(out)
        check(r.get("id") == rid and r["error"]["code"] == -32700, "id %r not echoed: %r" % (rid, out[:300]))
    not_echoed = [
        b'{"jsonrpc":"2.0","id":16,"method":"evaluate","params":{"facts":{}},"id":17}',
        b'{"jsonrpc":"2.0","id":14,"method":"evaluate","params":{"facts":{}}',
        b'{"jsonrpc":"2.0","id":"\xff","method":"health","x":1,"x":2}',
        b'{"jsonrpc":"2.0","id":"a\x01","method":"health","x":1,"x":2}',
        b'{"jsonrpc":"2.0","id":1e400,"method":"health","x":1,"x":2}',
        b'{"jsonrpc":"2.0","id":0x10,"method":"health","x":1,"x":2}',
        b'{"jsonrpc":"2.0","id":"' + b"x" * 1024 + b'","method":"health","x":1,"x":2}',
    ]
    for line in not_echoed:
        c.send(line + b"\n")
        out = c.line()
        out.decode("utf-8")   # valid UTF-8, or this raises
        r = json.loads(out)
        check(r.get("id", "absent") is None and "error" in r, "%r: %r" % (line[:40], out[:300]))
    check("result" in c.call("health", rid=99), "not serving after the refusals")
    srv.stop()


def slow_loops(args, tmp, slow):
    """How many empty loop steps take about 3 s on this build and machine
    now (well inside the sandbox's 10 s deadline, whatever the build and
    the load): one `pathwise eval` of 10^8 steps, timed."""
    n = 100000000
    calib = hooked_protocol(args, tmp, slow % n, "calibrate.lua")
    facts = os.path.join(tmp, "slow.json")
    with open(facts, "w") as f:
        json.dump(dict(json.loads(read(examples(args.root)[0])), patient_id="slow"), f)
    t0 = time.time()
    p = subprocess.run([args.pathwise, "eval", "--protocol", calib, "--instructions", "100000000000000", facts],
                       capture_output=True, timeout=60)
    check(p.returncode == 0, "calibration eval: %r" % p.stderr[-300:])
    return max(10000000, int(n * 3.0 / max(time.time() - t0, 0.01)))


def test_stop_while_old_generation_drains(args, tmp):
    """SIGTERM while a reloaded-away generation still has a busy worker (its
    idle sibling already retired and reaped) stops cleanly, with every
    answer. The busy worker then answers, retires, and the server finishes
    before it is reaped: finish() used to retire the reaped sibling through
    a dangling slot, a use-after-free that the sanitizer build (CI) turns
    into a non-zero exit."""
    slow = '  if facts.patient_id == "slow" then for _ = 1, %d do end end\n'
    proto = hooked_protocol(args, tmp, slow % slow_loops(args, tmp, slow), "slow.lua")
    srv = Server(args, tmp, ["--protocol", proto, "--instructions", "100000000000000",
                             "--timeout", "60000"], workers=2).start()
    facts = json.loads(read(examples(args.root)[0]))
    busy = srv.conn(timeout=120)
    busy.send(eval_request(json.dumps(dict(facts, patient_id="slow")).encode(), 1))
    time.sleep(0.2)
    old = srv.health()["workers"]["pids"]
    r = srv.call("reload")
    check(r.get("result", {}).get("reloaded") is True, "reload: %r" % r)

    def alive(p):
        try:
            with open("/proc/%d/stat" % p) as f:
                return f.read().split(") ")[1][0] != "Z"
        except OSError:
            return False
    wait_until("the idle worker of the old generation exited",
               lambda: len([p for p in old if alive(p)]) == 1)
    time.sleep(0.3)   # its SIGCHLD is handled: that worker is freed
    check(len([p for p in old if alive(p)]) == 1, "the slow evaluation ended too soon")
    srv.proc.send_signal(signal.SIGTERM)
    r = json.loads(busy.line())
    check(r.get("id") == 1 and "result" in r, "the slow evaluation: %r" % str(r)[:300])
    rc = srv.proc.wait(60)   # already stopping: a second SIGTERM would stop it at once
    check(rc == 0, "exit status %r: %s" % (rc, srv.stderr()[-3000:]))


def test_error_replies_carry_no_host_path(args, tmp):
    """A script error's reply names the protocol by file name and line,
    never by the host path the server loaded it from (issue 12)."""
    proto = hostile_protocol(args, tmp)
    srv = Server(args, tmp, ["--protocol", proto], workers=1).start()
    facts = json.loads(read(examples(args.root)[0]))
    c = srv.conn()
    c.send(eval_request(json.dumps(dict(facts, patient_id="boom")).encode(), 7))
    r = json.loads(c.line())
    msg = r.get("error", {}).get("message", "")
    check(r.get("id") == 7 and "p.lua:" in msg, "the script error names p.lua: %r" % r)
    check(tmp not in msg and "/p.lua" not in msg, "no host path: %r" % msg)

if __name__ == "__main__":
    run([test_slowloris_closed, test_never_reading_client_closed,
         test_admin_methods_need_own_uid_or_root, test_health_reports_failing_worker,
         test_health_reports_crash_looping_worker, test_fhir_errors_are_audited,
         test_ids_echoed_in_parse_errors, test_stop_while_old_generation_drains,
         test_error_replies_carry_no_host_path])
