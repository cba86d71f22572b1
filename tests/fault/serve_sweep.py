#!/usr/bin/env python3
"""Allocation-failure sweep of the `pathwise serve` supervisor (issue 12,
"never die"); registered in ctest (label fault).

For each N the supervisor (not its workers: failmalloc.so leaves forked
children alone) fails its Nth allocation counted from the opening of the
decision log (PW_FAIL_AFTER), while a client sends a fixed sequence of
requests. A run passes when the server is still alive afterwards and
stops cleanly on SIGTERM, or exited by itself with a message on stderr,
and every evaluation answered with a result has its record in the decision
log (nothing lost from the log); it fails when it died by a signal (abort),
hung at SIGTERM, exited without a word, or a result has no record.

usage: serve_sweep.py --pathwise BIN --shim failmalloc.so --root SRC [--from 1] [--to 400] [--step 1]
"""
import argparse, json, os, signal, socket, subprocess, sys, tempfile, time

REQS = [b'{"jsonrpc":"2.0","id":1,"method":"evaluate","params":{"facts":%s}}\n',
        b'{"jsonrpc":"2.0","id":2,"method":"evaluate","params":{"facts":{"ecog":9}}}\n',
        b'garbage\n',
        b'{"jsonrpc":"2.0","id":3,"method":"health"}\n']


def talk(sock, facts):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(sock)
    f = s.makefile("rwb")
    results = 0
    for r in REQS:
        f.write(r.replace(b"%s", facts) if b"%s" in r else r)
        f.flush()
        line = f.readline()
        if not line:
            break
        rep = json.loads(line)   # every reply is one whole JSON-RPC line
        if rep.get("id") == 1 and "result" in rep:
            results += 1
    s.close()
    return results


def logged(log):
    """records of request id 1 in the decision log"""
    try:
        return sum(1 for l in open(log, "rb") if json.loads(l).get("request_id") == 1)
    except FileNotFoundError:
        return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pathwise", required=True)
    ap.add_argument("--shim", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--from", dest="lo", type=int, default=1)
    ap.add_argument("--to", dest="hi", type=int, default=400)
    ap.add_argument("--step", type=int, default=1)
    a = ap.parse_args()
    facts = b" ".join(open(os.path.join(a.root, "examples/index_case.json"), "rb").read().split())
    deaths, alive, exited = [], 0, 0
    for n in range(a.lo, a.hi + 1, a.step):
        tmp = tempfile.mkdtemp(prefix="pwss")
        sock, log = os.path.join(tmp, "s.sock"), os.path.join(tmp, "decisions.log")
        env = dict(os.environ, LD_PRELOAD=a.shim, PW_FAIL_N=str(n), PW_FAIL_AFTER="decisions.log")
        srv = subprocess.Popen([a.pathwise, "serve", "--socket", sock, "--log", log, "--workers", "1", "--no-watch"],
                               env=env, stderr=subprocess.PIPE)
        for _ in range(100):
            if os.path.exists(sock) or srv.poll() is not None:
                break
            time.sleep(0.05)
        results = 0
        for _ in range(2):
            try:
                results += talk(sock, facts)
            except OSError:
                pass
        time.sleep(0.2)
        rc = srv.poll()
        if rc is None:
            alive += 1
            srv.send_signal(signal.SIGTERM)
            try:
                rc = srv.wait(10)
            except subprocess.TimeoutExpired:
                srv.kill()
                rc = srv.wait()
            if rc < 0 and rc != -signal.SIGTERM:
                deaths.append((n, rc, "at SIGTERM"))
        elif rc < 0:
            deaths.append((n, rc, srv.stderr.read()[-200:].decode(errors="replace")))
        else:
            exited += 1
            if rc == 0 or not srv.stderr.read().strip():
                deaths.append((n, -255, "exited %d without saying why" % rc))
        if logged(log) < results:
            deaths.append((n, -255, "%d results but %d records in the log" % (results, logged(log))))
        srv.stderr.close()
    print("serve: N=%d..%d step %d: %d alive, %d exited by themselves, %d failed"
          % (a.lo, a.hi, a.step, alive, exited, len(deaths)))
    for d in deaths[:20]:
        print("FAILED N=%d: %s; %s" % (d[0], "signal %d" % -d[1] if d[1] != -255 else "check",
                                       (d[2].strip().splitlines() or [""])[-1][:150]))
    return 1 if deaths else 0


if __name__ == "__main__":
    sys.exit(main())
