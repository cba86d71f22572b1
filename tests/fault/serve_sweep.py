#!/usr/bin/env python3
"""Allocation-failure sweep of the `pathwise serve` supervisor (issue 12,
"never die"). Not in ctest yet: the supervisor still calls abort() on a
failed allocation (engine/server/*.c), which the server-side work of issue
12 replaces; then register it like sweep.py.

For each N the supervisor (not its workers: failmalloc.so leaves forked
children alone) fails its Nth allocation counted from the opening of the
decision log (PW_FAIL_AFTER), while a client sends a fixed sequence of
requests. A run passes when the server is still alive afterwards and
answers health, or exited by itself with a message; it fails when it died
by a signal (abort).

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
    got = 0
    for r in REQS:
        f.write(r.replace(b"%s", facts) if b"%s" in r else r)
        f.flush()
        if f.readline():
            got += 1
    s.close()
    return got


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
        try:
            talk(sock, facts)
            talk(sock, facts)
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
        srv.stderr.close()
    print("serve: N=%d..%d step %d: %d alive, %d exited by themselves, %d died by a signal"
          % (a.lo, a.hi, a.step, alive, exited, len(deaths)))
    for d in deaths[:20]:
        print("DIED N=%d signal %d %s" % (-d[1], -d[1], d[2].strip().splitlines()[-1] if d[2].strip() else "") if False else
              "DIED N=%d: signal %d; %s" % (d[0], -d[1], (d[2].strip().splitlines() or [""])[-1][:150]))
    return 1 if deaths else 0


if __name__ == "__main__":
    sys.exit(main())
