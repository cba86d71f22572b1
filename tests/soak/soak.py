#!/usr/bin/env python3
"""Soak `pathwise serve` (issue 12): mixed valid, invalid and adversarial
traffic for a while, with reloads and kill -9 of workers; prints requests,
replies by kind, and the RSS of each process at the start and the end.
Abusive socket clients run alongside (a slow partial line, an oversize
line, a client that never reads, one that vanishes mid-request).
Exits 1 when a request went unanswered, the server died, an ordinary
case failed, or memory grew past these bounds:
  - the supervisor: its RSS not more than 2 MiB over the start's, and its
    heap in use (stats memory.heap.in_use: glibc's mallinfo2, or ASan's
    count) not more than 256 KiB over the start's (a leak, where RSS alone
    cannot tell a leak from memory the allocator keeps: before the
    supervisor trimmed its heap, RSS went 5.3 -> 8.5 MiB in 10 minutes
    with the heap in use flat at 0.8 MiB);
  - a worker (they are killed and respawned, so by role, not pid): not
    more than 16 MiB over the largest worker RSS at the start;
  - a worker's Lua states (stats workers.state_bytes): under 8 MiB;
or the decision log has a line that is not whole, a bad CRC or a gap in seq.
Not part of ctest: see run.sh.
"""
import argparse, glob, json, os, random, shutil, signal, socket, subprocess, sys, tempfile, threading, time, zlib
from collections import Counter

SUPERVISOR_GROWTH_KB = 2 * 1024
HEAP_GROWTH = 256 * 1024
WORKER_GROWTH_KB = 16 * 1024
STATE_BYTES_MAX = 8 << 20

LOCK = threading.Lock()
COUNTS = Counter()
FAILS = []


def rss_kb(pid):
    try:
        for line in open("/proc/%d/status" % pid):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def children(pid):
    try:
        return [int(x) for x in open("/proc/%d/task/%d/children" % (pid, pid)).read().split()]
    except OSError:
        return []


def one_line(path):
    return b" ".join(open(path, "rb").read().split())


def traffic(root):
    """(weight, kind, request line) candidates."""
    ex = [one_line(p) for p in [os.path.join(root, "examples/index_case.json")] +
          sorted(glob.glob(os.path.join(root, "examples/cases/*.json")))]
    def ev(facts, proto="mrc_second_line", rid=1):
        return (b'{"jsonrpc":"2.0","id":%d,"method":"evaluate","params":{"protocol":"%s","facts":' % (rid, proto.encode())
                + facts + b"}}\n")
    out = [(40, "valid", ev(f)) for f in ex]
    out += [(3, "invalid_facts", ev(b'{"ecog":9}')), (3, "invalid_facts", ev(b'{"ecog":1,"ecog":2}')),
            (2, "invalid_facts", ev(b'{"metastases":{}}')),
            (3, "malformed", b"garbage\n"), (2, "malformed", b'{"jsonrpc":"2.0","id":1,"method":"evaluate"\n'),
            (2, "malformed", b"[" * 100 + b"\n"), (2, "malformed", b'{"jsonrpc":"2.0","id":1e400,"method":"health"}\n'),
            (2, "malformed", b'{"jsonrpc":"2.0","id":"' + b"x" * 1024 + b'","method":"health"}\n'),
            (2, "unknown_method", b'{"jsonrpc":"2.0","id":7,"method":"nope"}\n'),
            (2, "health", b'{"jsonrpc":"2.0","id":8,"method":"health"}\n'),
            (4, "soak_ordinary", ev(b'{"patient_id":"x","ecog":1}', "soak"))]
    for t in ("move", "loop", "poison", "deep", "many", "raise", "memory"):
        out.append((2, "soak_" + t, ev(b'{"patient_id":"%s","ecog":1}' % t.encode(), "soak")))
    return out


def client(sock_path, cands, deadline, seed):
    rnd = random.Random(seed)
    weights = [c[0] for c in cands]
    s = f = None
    while time.time() < deadline:
        try:
            if s is None:
                s = socket.socket(socket.AF_UNIX)
                s.settimeout(30)
                s.connect(sock_path)
                f = s.makefile("rwb")
            _, kind, line = rnd.choices(cands, weights)[0]
            f.write(line)
            f.flush()
            reply = f.readline()
            if not reply:
                raise ConnectionError("closed")
            r = json.loads(reply)
            key = "ok" if "result" in r else "error:" + str(r.get("error", {}).get("data", {}).get("kind", r.get("error", {}).get("code")))
            with LOCK:
                COUNTS["requests"] += 1
                COUNTS[key] += 1
                COUNTS["sent:" + kind] += 1
                # kill -9 in flight, or queued behind adversarial work past the deadline:
                # not poisoning; anything else after an adversarial case is
                if kind == "soak_ordinary" and key not in ("ok", "error:worker_crash", "error:deadline"):
                    COUNTS["ordinary_not_ok:" + key] += 1
        except (OSError, ValueError, ConnectionError) as e:
            with LOCK:
                COUNTS["connection_errors"] += 1
                if isinstance(e, socket.timeout):
                    FAILS.append("no reply within 30 s")
            try:
                s.close()
            except Exception:
                pass
            s = f = None
            time.sleep(0.05)


def abuser(sock_path, deadline, seed):
    """Abusive clients, one at a time: a partial line sent a byte a second,
    a 2 MiB line, 2,000 requests never read, an evaluation then a close."""
    rnd = random.Random(seed)
    big = b'{"jsonrpc":"2.0","id":1,"method":"health","params":{"x":"' + b"x" * (2 << 20) + b'"}}\n'
    while time.time() < deadline:
        kind = rnd.choice(["slow", "oversize", "never_reads", "vanish"])
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(10)
        try:
            s.connect(sock_path)
            if kind == "slow":
                s.sendall(b'{"jsonrpc":"2.0",')
                for _ in range(5):
                    time.sleep(1)
                    s.sendall(b" ")
            elif kind == "oversize":
                s.sendall(big)
                s.recv(4096)
            elif kind == "never_reads":
                s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"health"}\n' * 2000)
                time.sleep(2)
            else:
                s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"evaluate","params":{"facts":{"ecog":1}}}\n')
            with LOCK:
                COUNTS["abuse:" + kind] += 1
        except OSError as e:   # the server closing an abusive client is fine
            with LOCK:
                COUNTS["abuse:%s closed by the server (%s)" % (kind, type(e).__name__)] += 1
        finally:
            s.close()
        time.sleep(0.5)


def check_log(path):
    """Every line whole with a good CRC, seq +1 each line: (records, events, problems)."""
    recs = events = 0
    problems = []
    prev = None
    with open(path, "rb") as f:
        data = f.read()
    if data and not data.endswith(b"\n"):
        problems.append("the log does not end with a newline")
    for n, line in enumerate(data.split(b"\n")[:-1], 1):
        i = line.rfind(b',"crc32":"')
        try:
            ok = i > 0 and zlib.crc32(line[:i]) == int(line[i + 10:i + 18], 16)
            rec = json.loads(line)
        except ValueError:
            ok = False
        if not ok:
            problems.append("line %d is not a whole record with a good CRC" % n)
            continue
        if prev is not None and rec["seq"] != prev + 1:
            problems.append("line %d: seq %d after %d" % (n, rec["seq"], prev))
        prev = rec["seq"]
        if "log_event" in rec:
            events += 1
        else:
            recs += 1
    return recs, events, problems


def rpc(sock_path, line):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(30)
    s.connect(sock_path)
    f = s.makefile("rwb")
    f.write(line)
    f.flush()
    r = json.loads(f.readline())
    s.close()
    return r


def memory(sock_path):
    """The supervisor's own figures from `stats`: {"rss_kib", "heap": {"in_use", ...}}."""
    return rpc(sock_path, b'{"jsonrpc":"2.0","id":"m","method":"stats"}\n')["result"]["memory"]


def snapshot(pid):
    procs = {pid: ("supervisor", rss_kb(pid))}
    for c in children(pid):
        procs[c] = ("worker", rss_kb(c))
    return procs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pathwise", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--seconds", type=float, default=float(os.environ.get("PW_SOAK_SECONDS", 600)))
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="pwsoak")
    pdir = os.path.join(tmp, "p")
    os.mkdir(pdir)
    shutil.copy(os.path.join(a.root, "scripts/mrc_second_line.lua"), pdir)
    shutil.copy(os.path.join(a.root, "tests/soak/soak_protocol.lua"), pdir)
    sock = os.path.join(tmp, "s.sock")
    err = open(os.path.join(tmp, "serve.err"), "wb")
    logpath = os.path.join(tmp, "decisions.log")
    srv = subprocess.Popen([a.pathwise, "serve", "--socket", sock, "--workers", str(a.workers),
                            "--protocols", pdir, "--log", logpath], stderr=err)
    status = 0
    try:
        for _ in range(100):
            if os.path.exists(sock):
                break
            time.sleep(0.1)
        time.sleep(1)
        cands = traffic(a.root)
        # warm up, then the start figures
        client(sock, cands, time.time() + 2, 0)
        COUNTS.clear()
        start = snapshot(srv.pid)
        mem0 = memory(sock)
        t0 = time.time()
        deadline = t0 + a.seconds
        threads = [threading.Thread(target=client, args=(sock, cands, deadline, i + 1)) for i in range(a.clients)]
        threads.append(threading.Thread(target=abuser, args=(sock, deadline, 77)))
        for t in threads:
            t.start()
        rnd = random.Random(99)
        next_reload, next_kill, next_touch, next_mem = t0 + 5, t0 + 3, t0 + 11, t0 + 30
        while time.time() < deadline and srv.poll() is None:
            now = time.time()
            if now >= next_reload:
                r = rpc(sock, b'{"jsonrpc":"2.0","id":"r","method":"reload"}\n')
                COUNTS["reloads_ok" if "result" in r else "reloads_refused"] += 1
                next_reload = now + 7
            if now >= next_kill:
                ws = children(srv.pid)
                if ws:
                    os.kill(rnd.choice(ws), signal.SIGKILL)
                    COUNTS["workers_killed"] += 1
                next_kill = now + 4
            if now >= next_touch:   # the file watcher's reload
                os.utime(os.path.join(pdir, "soak_protocol.lua"))
                COUNTS["protocol_touched"] += 1
                next_touch = now + 13
            if now >= next_mem:   # the supervisor's memory as the run goes
                m = memory(sock)
                print("%4.0f s: supervisor RSS %d KiB, heap %s" % (now - t0, m["rss_kib"], json.dumps(m["heap"])),
                      flush=True)
                next_mem = now + 30
            time.sleep(0.2)
        for t in threads:
            t.join()
        alive = srv.poll() is None
        if alive:
            time.sleep(3)   # a reload started at the end finishes, so the workers measured serve
            client(sock, cands, time.time() + 2, 1000)   # settle with the same traffic
            time.sleep(1)
        end = snapshot(srv.pid) if alive else {}
        mem1 = memory(sock) if alive else {}
        state = rpc(sock, b'{"jsonrpc":"2.0","id":"s","method":"stats"}\n')["result"]["workers"] if alive else {}
        elapsed = time.time() - t0
        print("soak: %.0f s, %d clients, %d workers" % (elapsed, a.clients, a.workers))
        print("requests: %d (%.0f/s)" % (COUNTS["requests"], COUNTS["requests"] / max(elapsed, 1)))
        for k in sorted(COUNTS):
            if k != "requests":
                print("  %-28s %d" % (k, COUNTS[k]))
        print("RSS (KiB) at start:", ", ".join("%s %d: %s" % (v[0], p, v[1]) for p, v in sorted(start.items())))
        print("RSS (KiB) at end:  ", ", ".join("%s %d: %s" % (v[0], p, v[1]) for p, v in sorted(end.items())))
        if mem0 and mem1:
            print("supervisor heap in use at start %d, at end %d bytes (bound +%d); RSS %d -> %d KiB "
                  "(bound +%d); %d trims" % (mem0["heap"]["in_use"], mem1["heap"]["in_use"], HEAP_GROWTH,
                                            mem0["rss_kib"], mem1["rss_kib"], SUPERVISOR_GROWTH_KB,
                                            mem1.get("trims", 0)))
        print("supervisor memory at start:", json.dumps(mem0))
        print("supervisor memory at end:  ", json.dumps(mem1))
        print("workers' Lua states at end (bytes): %s, rebuilt: %s" % (state.get("state_bytes"), state.get("state_rebuilds")))
        if not alive:
            FAILS.append("the server died (exit %s)" % srv.returncode)
        else:
            s0, s1 = start[srv.pid][1], end[srv.pid][1]
            if s1 > s0 + SUPERVISOR_GROWTH_KB:
                FAILS.append("supervisor RSS grew from %d to %d KiB (bound +%d)" % (s0, s1, SUPERVISOR_GROWTH_KB))
            h0, h1 = mem0["heap"]["in_use"], mem1["heap"]["in_use"]
            if h1 > h0 + HEAP_GROWTH:
                FAILS.append("supervisor heap in use grew from %d to %d bytes (bound +%d)" % (h0, h1, HEAP_GROWTH))
            # workers are killed and respawned: compare by role
            w0 = max([v[1] or 0 for v in start.values() if v[0] == "worker"] or [0])
            w1 = max([v[1] or 0 for v in end.values() if v[0] == "worker"] or [0])
            if w1 > w0 + WORKER_GROWTH_KB:
                FAILS.append("a worker's RSS is %d KiB, more than %d KiB over the start's %d"
                             % (w1, WORKER_GROWTH_KB, w0))
            big = [b for b in state.get("state_bytes", []) if b > STATE_BYTES_MAX]
            if big or "state_bytes" not in state:
                FAILS.append("workers' Lua states at the end: %r bytes (bound %d)"
                             % (state.get("state_bytes"), STATE_BYTES_MAX))
        bad = [k for k in COUNTS if k.startswith("ordinary_not_ok")]
        if bad:   # an ordinary case after an adversarial one must still be answered
            FAILS.append("ordinary soak cases failed: %s" % ", ".join("%s %d" % (k, COUNTS[k]) for k in bad))
        if alive:
            srv.send_signal(signal.SIGTERM)
            srv.wait(30)
        nrec, nev, problems = check_log(logpath)
        print("decision log: %d records, %d events%s" % (nrec, nev, "" if not problems else
                                                        ", problems: " + "; ".join(problems[:5])))
        FAILS.extend(problems[:5])
        for f in FAILS:
            print("FAIL", f)
        status = 1 if FAILS else 0
    finally:
        if srv.poll() is None:
            srv.send_signal(signal.SIGTERM)
            try:
                srv.wait(10)
            except subprocess.TimeoutExpired:
                srv.kill()
        err.close()
        if status:
            print("server stderr kept in", tmp)
        else:
            shutil.rmtree(tmp)
    return status


if __name__ == "__main__":
    sys.exit(main())
