#!/usr/bin/env python3
"""Every listener of `pathwise serve` keeps accepting after the supervisor
shed connections it had no memory for (issue 12, "never die"; registered
in ctest, label fault).

The supervisor (failmalloc.so, PW_FAIL_WHILE: every allocation fails while
a flag file exists) is stopped with SIGSTOP while clients connect to each
listener in turn (the JSON-RPC socket, the --http socket, the --http-port
TCP port), so that they wait in the backlog together; then SIGCONT with
the flag set: each accept finds no memory and is shed, several in one
callback, so later ones wait for the one spare handle. The flag removed,
every listener must answer again: health on the JSON-RPC socket, CDS Hooks
discovery over HTTP on both HTTP listeners.

usage: test_serve_shed.py --pathwise BIN --shim failmalloc.so
"""
import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

import faultlib

WAIT = 20   # seconds a listener may take to answer before it counts as stopped


def connect(addr):
    fam = socket.AF_INET if isinstance(addr, tuple) else socket.AF_UNIX
    s = socket.socket(fam)
    s.settimeout(WAIT)
    s.connect(addr)
    return s


def answer(addr, data):
    """The whole reply to data (the server closes after it, or its first line)."""
    s = connect(addr)
    try:
        s.sendall(data)
        got = b""
        while True:
            b = s.recv(65536)
            if not b:
                return got
            got += b
            if addr_is_rpc(data) and got.endswith(b"\n"):
                return got
    finally:
        s.close()


def addr_is_rpc(data):
    return data.startswith(b"{")


HEALTH = b'{"jsonrpc":"2.0","id":1,"method":"health"}\n'
DISCOVERY = b"GET /cds-services HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def serving(name, addr, data):
    try:
        got = answer(addr, data)
    except OSError as e:
        return "%s: no answer (%s)" % (name, e)
    if data is HEALTH:
        ok = b'"result"' in got
    else:
        ok = got.startswith(b"HTTP/1.1 200") and b"services" in got
    return None if ok else "%s: unexpected answer %r" % (name, got[:200])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pathwise", required=True)
    ap.add_argument("--shim", required=True)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="pwshed")
    sock, http, flag = (os.path.join(tmp, n) for n in ("s.sock", "h.sock", "nomem"))
    errpath = os.path.join(tmp, "stderr")
    env = dict(os.environ, LD_PRELOAD=a.shim, PW_FAIL_WHILE=flag)
    err = open(errpath, "wb")
    srv = subprocess.Popen([a.pathwise, "serve", "--socket", sock, "--workers", "1", "--no-watch",
                            "--http", http, "--http-port", "0", "--http-no-auth"],
                           env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    failures = []
    try:
        port = None
        for _ in range(600):
            m = re.search(rb"http://127\.0\.0\.1:([0-9]+)/cds-services", open(errpath, "rb").read())
            if m or srv.poll() is not None:
                port = m and int(m.group(1))
                break
            time.sleep(0.05)
        if not port:
            print("FAIL: the server did not start: %s" % open(errpath, "rb").read()[-600:])
            return 1
        listeners = [("JSON-RPC socket", sock, HEALTH), ("--http socket", http, DISCOVERY),
                     ("--http-port", ("127.0.0.1", port), DISCOVERY)]
        for name, addr, data in listeners:
            f = serving(name, addr, data)
            if f:
                print("FAIL before the test: %s" % f)
                return 1
        # each listener in turn (the others too, so the one spare handle is
        # busy while it sheds): clients wait in the backlog, then no memory
        for first in range(len(listeners)):
            order = listeners[first:] + listeners[:first]
            srv.send_signal(signal.SIGSTOP)
            held = [connect(addr) for _, addr, _ in order for _ in range(3)]
            open(flag, "w").close()
            srv.send_signal(signal.SIGCONT)
            for s in held:   # each is shed: closed without a byte
                s.settimeout(5)
                try:
                    s.recv(1)
                except OSError:
                    pass
            os.unlink(flag)
            for s in held:
                s.close()
            if srv.poll() is not None:
                failures.append("the server exited (%s) shedding connections" % srv.returncode)
                break
            for name, addr, data in listeners:
                f = serving(name, addr, data)
                if f:
                    failures.append("after shedding (first %s): %s" % (order[0][0], f))
            if failures:
                break
        rejected = json.loads(answer(sock, b'{"jsonrpc":"2.0","id":2,"method":"stats"}\n'))
        print("stats: %s" % json.dumps(rejected.get("result", {}).get("connections")))
    finally:
        if os.path.exists(flag):
            os.unlink(flag)
        faultlib.stop(srv, failures, stopped=True)
        err.close()
    return faultlib.report(failures, errpath, tmp)


if __name__ == "__main__":
    sys.exit(main())
