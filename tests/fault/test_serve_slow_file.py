#!/usr/bin/env python3
"""A reload never does blocking file I/O on the supervisor's loop (issue
12, "never hang"; registered in ctest, label fault).

1. A slow file system: failmalloc.so (PW_BLOCK_OPEN, PW_BLOCK_WHILE) holds
   every open of the plugin file while a flag file exists. A reload is
   asked for; meanwhile `health` must still answer. Once the file is
   released the reload completes.
2. The plugin path swapped for a FIFO: the reload is refused naming the
   file (never the host path), and `health` answers meanwhile.
3. SIGTERM while a reload's read hangs: the reload is answered with an
   error and the server exits (it cannot wait for the hung thread).

usage: test_serve_slow_file.py --pathwise BIN --shim failmalloc.so --root SRC
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

import faultlib

WAIT = 20   # seconds an answer may take before the loop counts as stalled


class Conn:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.settimeout(WAIT)
        self.s.connect(path)
        self.f = self.s.makefile("rb")

    def send(self, method, rid):
        self.s.sendall(json.dumps({"jsonrpc": "2.0", "id": rid, "method": method}).encode() + b"\n")

    def reply(self):
        line = self.f.readline()
        if not line:
            raise EOFError("connection closed")
        return json.loads(line)

    def close(self):
        self.f.close()
        self.s.close()


def health(sock):
    """health's reply, or the reason there was none within WAIT s"""
    try:
        c = Conn(sock)
        try:
            c.send("health", 1)
            r = c.reply()
        finally:
            c.close()
    except (OSError, EOFError, ValueError) as e:
        return None, "no health answer within %d s (%s)" % (WAIT, e)
    return r, None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pathwise", required=True)
    ap.add_argument("--shim", required=True)
    ap.add_argument("--root", required=True)
    a = ap.parse_args()
    src = os.path.join(a.root, "plugins", "local_brain_mets_mdt.lua")
    if not os.path.exists(src):
        print("FAIL: %s is missing" % src)
        return 1
    tmp = tempfile.mkdtemp(prefix="pwslow")
    sock, flag, plug = (os.path.join(tmp, n) for n in ("s.sock", "hold", "plug.lua"))
    shutil.copy(src, plug)
    errpath = os.path.join(tmp, "stderr")
    env = dict(os.environ, LD_PRELOAD=a.shim, PW_BLOCK_OPEN="plug.lua", PW_BLOCK_WHILE=flag)
    err = open(errpath, "wb")
    srv = subprocess.Popen([a.pathwise, "serve", "--socket", sock, "--workers", "1", "--no-watch",
                            "--plugin", plug], env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=err)
    failures = []
    try:
        for _ in range(600):
            if os.path.exists(sock) and health(sock)[0] or srv.poll() is not None:
                break
            time.sleep(0.05)
        r, why = health(sock)
        if not r:
            print("FAIL: the server did not start: %s %s" % (why, open(errpath, "rb").read()[-600:]))
            return 1
        # 1. the plugin file hangs on open while the reload reads it
        open(flag, "w").close()
        c = Conn(sock)
        c.send("reload", 7)
        r, why = health(sock)
        if why:
            failures.append("a reload reading a hung file stalled the supervisor: " + why)
        elif not r.get("result", {}).get("reload", {}).get("in_progress"):
            failures.append("health does not say a reload is in progress: %r" % r)
        os.unlink(flag)
        try:
            r = c.reply()
            if not r.get("result", {}).get("reloaded"):
                failures.append("the reload failed once the file was released: %r" % r)
        except (OSError, EOFError, ValueError) as e:
            failures.append("no reload answer once the file was released: %s" % e)
        c.close()
        # 2. the plugin swapped for a FIFO: refused, naming it, never blocking
        os.unlink(plug)
        os.mkfifo(plug)
        c = Conn(sock)
        c.send("reload", 8)
        r, why = health(sock)
        if why:
            failures.append("a reload reading a FIFO stalled the supervisor: " + why)
        try:
            r = c.reply()
            msg = r.get("error", {}).get("message", "")
            if "error" not in r or "plug.lua" not in msg or tmp in msg:
                failures.append("the FIFO reload was not refused naming plug.lua (only): %r" % r)
        except (OSError, EOFError, ValueError) as e:
            failures.append("no reload answer with a FIFO for the plugin: %s" % e)
        c.close()
        r, why = health(sock)
        if why:
            failures.append("after the FIFO reload: " + why)
        # 3. SIGTERM while a reload's read hangs: the server still exits
        open(flag, "w").close()
        c = Conn(sock)
        c.send("reload", 9)
        r, why = health(sock)
        if why:
            failures.append("the second hung reload stalled the supervisor: " + why)
        srv.send_signal(signal.SIGTERM)
        try:
            r = c.reply()
            if r.get("error", {}).get("code") is None:
                failures.append("the reload cut by SIGTERM was not answered with an error: %r" % r)
        except (OSError, EOFError, ValueError) as e:
            failures.append("no answer to the reload cut by SIGTERM: %s" % e)
        c.close()
        try:
            srv.wait(60)
        except subprocess.TimeoutExpired:
            failures.append("SIGTERM while a reload's read hangs: the server did not exit")
    finally:
        if os.path.exists(flag):
            os.unlink(flag)
        faultlib.stop(srv, failures)
        err.close()
    return faultlib.report(failures, errpath, tmp)


if __name__ == "__main__":
    sys.exit(main())
