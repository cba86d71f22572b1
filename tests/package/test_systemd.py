#!/usr/bin/env python3
"""package.systemd: pathwise serve speaks systemd's protocol, tested without
systemd running:

- notifications: READY=1 with STATUS and MAINPID at start; on SIGHUP
  RELOADING=1 (with MONOTONIC_USEC) and then READY=1; a refused reload also
  ends with READY=1; STOPPING=1 on SIGTERM (a datagram socket stands in for
  $NOTIFY_SOCKET);
- journal priorities: with stderr the stream named by $JOURNAL_STREAM, every
  log line starts with <3>, <4> or <6>, information at <6> and a refused
  reload at <4>; with JOURNAL_STREAM naming another file, no prefix;
- socket activation: under systemd-socket-activate (LISTEN_FDS, as
  pathwise.socket does) the server adopts the passed socket, answers on it,
  and leaves the socket file alone on exit; a passed socket bound to another
  path is refused (exit 78).
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ARGS = None
FAILS = []


def check(cond, msg):
    if not cond:
        FAILS.append(msg)
        print("FAIL:", msg)


def wait_for(pred, what, timeout=30):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    check(False, "timed out waiting for " + what)
    return False


def call(path, method, params=None):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    req = {"jsonrpc": "2.0", "id": 1, "method": method}
    if params is not None:
        req["params"] = params
    s.sendall((json.dumps(req) + "\n").encode())
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    s.close()
    return json.loads(buf)


class Notify:
    def __init__(self, tmp):
        self.path = os.path.join(tmp, "notify")
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.s.bind(self.path)
        self.s.settimeout(30)

    def next(self):
        try:
            return self.s.recv(4096).decode()
        except socket.timeout:
            return ""


def protocol_copy(tmp):
    p = os.path.join(tmp, "protocol.lua")
    shutil.copy(os.path.join(ARGS.root, "scripts", "mrc_second_line.lua"), p)
    return p


def test_notify_and_journal(tmp):
    n = Notify(tmp)
    sock = os.path.join(tmp, "s.sock")
    errpath = os.path.join(tmp, "stderr")
    proto = protocol_copy(tmp)
    err = open(errpath, "wb")
    st = os.fstat(err.fileno())
    env = dict(os.environ, NOTIFY_SOCKET=n.path, JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))
    p = subprocess.Popen([ARGS.pathwise, "serve", "--socket", sock, "--protocol", proto, "--workers", "1",
                          "--no-watch"], stderr=err, env=env)
    m = n.next()
    check(m.startswith("READY=1\n") and "STATUS=serving on " + sock in m and "MAINPID=%d" % p.pid in m,
          "start: %r" % m)
    p.send_signal(signal.SIGHUP)
    m = n.next()
    check(m.startswith("RELOADING=1\nMONOTONIC_USEC=") and "STATUS=" in m, "SIGHUP: first %r" % m)
    m = n.next()
    check(m.startswith("READY=1"), "SIGHUP: then %r" % m)
    with open(proto, "a") as f:
        f.write("\nthis is not Lua\n")
    p.send_signal(signal.SIGHUP)
    m = n.next()
    check(m.startswith("RELOADING=1"), "refused reload: first %r" % m)
    m = n.next()
    check(m.startswith("READY=1") and "refused" in m, "refused reload: then %r" % m)
    check(call(sock, "health")["result"]["status"] == "ok", "still serving after a refused reload")
    p.send_signal(signal.SIGTERM)
    m = n.next()
    check(m.startswith("STOPPING=1"), "SIGTERM: %r" % m)
    check(p.wait(timeout=30) == 0, "serve exit code")
    err.close()
    lines = open(errpath, "rb").read().decode().splitlines()
    check(lines and all(l[:3] in ("<3>", "<4>", "<6>") for l in lines), "unprefixed lines: %r" % lines)
    check(any(l.startswith("<6>pathwise serve: ready on") for l in lines), "ready is not <6>: %r" % lines)
    check(any(l.startswith("<4>pathwise serve: reload refused") for l in lines), "refused reload is not <4>: %r" % lines)
    # JOURNAL_STREAM naming another file: stderr is not the journal, no prefixes
    err2 = os.path.join(tmp, "stderr2")
    env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
    env.pop("NOTIFY_SOCKET")
    with open(err2, "wb") as e2:
        q = subprocess.Popen([ARGS.pathwise, "serve", "--socket", sock, "--protocol",
                              os.path.join(ARGS.root, "scripts", "mrc_second_line.lua"), "--workers", "1"],
                             stderr=e2, env=env)
        wait_for(lambda: os.path.exists(sock), "the socket")
        wait_for(lambda: b"ready on" in open(err2, "rb").read(), "ready")
        q.send_signal(signal.SIGTERM)
        check(q.wait(timeout=30) == 0, "second serve exit code")
    text = open(err2).read()
    check("ready on" in text and "<6>" not in text and "<4>" not in text, "prefixes without the journal: %r" % text)


def test_socket_activation(tmp):
    sock = os.path.join(tmp, "act.sock")
    activate = shutil.which("systemd-socket-activate")
    if not activate:
        check(False, "systemd-socket-activate is missing (Debian package systemd)")
        return
    p = subprocess.Popen([activate, "-l", sock, ARGS.pathwise, "serve", "--socket", sock, "--workers", "1"],
                         stderr=subprocess.PIPE)
    wait_for(lambda: os.path.exists(sock), "the activation socket")
    # the first connection starts the server (systemd-socket-activate execs it on accept-ready)
    try:
        r = call(sock, "evaluate", {"facts": json.load(open(os.path.join(ARGS.root, "examples", "index_case.json")))})
    except OSError as e:
        r = {"exception": str(e)}
    check("result" in r and r["result"]["recommendations"], "no answer on the activated socket: %r" % r)
    p.send_signal(signal.SIGTERM)
    rc = p.wait(timeout=30)
    err = p.stderr.read().decode()
    check(rc == 0, "activated serve exit %d: %s" % (rc, err))
    check("socket activation" in err or "from systemd" in err, "the server did not say it adopted the socket: %r" % err)
    check(os.path.exists(sock), "the server removed the socket file systemd owns")
    os.unlink(sock)
    # a socket bound to another path: refused (a misconfigured socket unit)
    other = os.path.join(tmp, "other.sock")
    p = subprocess.Popen([activate, "-l", other, ARGS.pathwise, "serve", "--socket", sock, "--workers", "1"],
                         stderr=subprocess.PIPE)
    wait_for(lambda: os.path.exists(other), "the other socket")
    c = socket.socket(socket.AF_UNIX)
    c.connect(other)
    rc = p.wait(timeout=30)
    err = p.stderr.read().decode()
    c.close()
    check(rc == 78 and "not to --socket" in err, "mismatched socket: exit %d: %r" % (rc, err))


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--pathwise", required=True)
    ap.add_argument("--root", required=True)
    ARGS = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="pw-sd-") as tmp:
        test_notify_and_journal(tmp)
        test_socket_activation(tmp)
    if FAILS:
        sys.exit("%d checks failed" % len(FAILS))
    print("ok")


if __name__ == "__main__":
    main()
