#!/usr/bin/env python3
"""pathwise serve: the socket file. Born with its final mode whatever the
umask; a too-long path refused; a stale socket replaced, a live server's
not; two servers starting at once cannot unlink each other's; SIGTERM and
SIGINT finish what is in flight, remove the socket and exit 0."""
import json
import os
import signal
import socket
import stat
import subprocess
import time

from srvlib import Conn, Server, check, eval_request, examples, read, run


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def start_with_umask(args, tmp, umask, extra=(), name="s"):
    srv = Server(args, tmp, extra, name=name)
    old = os.umask(umask)
    try:
        srv.start()
    finally:
        os.umask(old)
    return srv


def test_socket_mode(args, tmp):
    for umask in (0o000, 0o077):
        srv = start_with_umask(args, tmp, umask, name="u%o" % umask)
        check(stat.S_ISSOCK(os.lstat(srv.sock).st_mode), "not a socket")
        check(mode(srv.sock) == 0o660, "umask %03o: socket mode %03o, wanted 660"
              % (umask, mode(srv.sock)))
        check(mode(srv.log) == 0o600, "log mode %03o" % mode(srv.log))
        check(srv.stop() == 0, "stop")
        check(not os.path.exists(srv.sock), "socket left after SIGTERM")
    srv = start_with_umask(args, tmp, 0, ["--socket-mode", "0600"], name="m")
    check(mode(srv.sock) == 0o600, "--socket-mode 0600 gave %03o" % mode(srv.sock))
    srv.stop()
    p = subprocess.run([args.pathwise, "serve", "--socket", os.path.join(tmp, "x.sock"),
                        "--socket-mode", "0066"], capture_output=True)
    check(p.returncode == 64, "a mode the owner cannot use is refused: %d" % p.returncode)


def test_path_too_long(args, tmp):
    d = os.path.join(tmp, "d" * 60)
    os.mkdir(d)
    path = os.path.join(d, "s" * (108 - len(d)) + ".sock")
    check(len(path.encode()) > 107, "path not long enough")
    p = subprocess.run([args.pathwise, "serve", "--socket", path], capture_output=True, timeout=30)
    check(p.returncode == 64, "exit %d for a too-long path" % p.returncode)
    check(b"107" in p.stderr and b"bytes" in p.stderr, "message: %r" % p.stderr)
    check(not os.listdir(d), "something was created: %r" % os.listdir(d))


def test_stale_and_live(args, tmp):
    path = os.path.join(tmp, "s.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()   # a socket file nobody listens on: stale
    srv = Server(args, tmp, sock=path).start()
    check("stale" in srv.stderr(), "stale socket not reported: %s" % srv.stderr())
    ino = os.lstat(path).st_ino
    # a second server on the same path must not take a live server's socket
    other = Server(args, tmp, sock=path, name="o").start(wait=False)
    rc = other.proc.wait(30)
    check(rc == 69, "second server exit %d, wanted 69: %s" % (rc, other.stderr()))
    check(os.lstat(path).st_ino == ino, "the live socket was replaced")
    check(srv.health()["status"] == "ok", "first server still serves")
    check(srv.stop() == 0 and not os.path.exists(path), "stop")
    # a path that is not a socket is never removed
    with open(path, "w") as f:
        f.write("precious")
    p = subprocess.run([args.pathwise, "serve", "--socket", path], capture_output=True, timeout=30)
    check(p.returncode == 73 and read(path) == b"precious", "non-socket: exit %d" % p.returncode)


def test_two_start_at_once(args, tmp):
    for k in range(3):
        path = os.path.join(tmp, "r%d.sock" % k)
        a = Server(args, tmp, sock=path, name="a%d" % k).start(wait=False)
        b = Server(args, tmp, sock=path, name="b%d" % k).start(wait=False)
        t0 = time.time()
        while a.proc.poll() is None and b.proc.poll() is None and time.time() - t0 < 30:
            time.sleep(0.02)
        loser, winner = (a, b) if a.proc.poll() is not None else (b, a)
        check(loser.proc.wait(30) == 69, "loser exit %s: %s" % (loser.proc.returncode, loser.stderr()))
        h = winner.wait_ready()
        check(h["pid"] == winner.proc.pid, "the socket belongs to the winner")
        check(winner.stop() == 0 and not os.path.exists(path), "winner stops cleanly")


def test_sigterm_finishes_in_flight(args, tmp):
    for sig in (signal.SIGTERM, signal.SIGINT):
        srv = Server(args, tmp, name="t%d" % sig).start()
        facts = read(examples(args.root)[0])
        c = Conn(srv.sock)
        n = 300
        c.send(b"".join(eval_request(facts, i) for i in range(n)))
        time.sleep(0.01)
        srv.proc.send_signal(sig)
        got = []
        try:
            while True:
                got.append(json.loads(c.line()))
        except EOFError:
            pass
        rc = srv.proc.wait(30)
        check(rc == 0, "exit %d after signal %d" % (rc, sig))
        check(not os.path.exists(srv.sock), "socket not removed")
        ok = [r for r in got if "result" in r]
        check(len(ok) == len(got) and len(got) > 0, "in-flight requests failed: %r"
              % [r for r in got if "result" not in r][:3])
        with open(srv.log) as f:
            logged = sum(1 for _ in f)
        check(logged == len(ok), "%d answered, %d logged" % (len(ok), logged))
        try:
            Conn(srv.sock)
            check(False, "connect after stop succeeded")
        except OSError:
            pass


def test_std_fds_closed(args, tmp):
    """Started with 0, 1 and 2 closed (issue 12): the server holds them on
    /dev/null, so its own descriptors (epoll, the lock file) never take
    them; it serves, and SIGTERM ends it cleanly."""
    srv = Server(args, tmp, name="c")
    srv.proc = subprocess.Popen(["sh", "-c", 'exec "$@" 0<&- 1>&- 2>&-', "sh"] + srv.cmd)
    srv.wait_ready()
    fds = {fd: os.readlink("/proc/%d/fd/%d" % (srv.proc.pid, fd)) for fd in (0, 1, 2)}
    check(all(v == "/dev/null" for v in fds.values()), "fds 0-2: %r" % fds)
    facts = read(examples(args.root)[0])
    c = Conn(srv.sock)
    c.send(b"".join(eval_request(facts, i) for i in range(1, 6)))
    got = [json.loads(c.line()) for _ in range(5)]
    check(all("result" in r for r in got), "errors: %r" % [r for r in got if "result" not in r])
    c.close()
    srv.proc.send_signal(signal.SIGTERM)
    rc = srv.proc.wait(30)
    check(rc == 0, "exit %d after SIGTERM with 0-2 closed" % rc)
    check(os.path.getsize(srv.sock + ".lock") == 0, "diagnostics went to the lock file")
    with open(srv.log) as f:
        check(sum(1 for _ in f) == 5, "5 answered, not 5 logged")


if __name__ == "__main__":
    run([test_socket_mode, test_path_too_long, test_stale_and_live, test_two_start_at_once,
         test_sigterm_finishes_in_flight, test_std_fds_closed])
