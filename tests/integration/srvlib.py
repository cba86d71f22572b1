"""Shared helpers for the `pathwise serve` integration tests (stdlib only).

Each test script calls run(tests): every test function gets a fresh
temporary directory (sockets live there, so paths stay short) and the
parsed arguments (--pathwise BINARY --root SOURCE_TREE). Servers started
through Server are always stopped (SIGKILL as a last resort) at the end of
their test, so one failure does not leave processes behind.
"""
import argparse
import glob
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import zlib


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def parse_args():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pathwise", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--bench", default=None, help="pw_load binary, if built")
    ap.add_argument("only", nargs="*")
    return ap.parse_args()


def examples(root):
    """Every example facts file in the source tree."""
    out = [os.path.join(root, "examples", "index_case.json")]
    out += sorted(glob.glob(os.path.join(root, "examples", "cases", "*.json")))
    return [p for p in out if os.path.exists(p)]


def read(path):
    with open(path, "rb") as f:
        return f.read()


def sanitized(pathwise):
    """True when the binary is the sanitizer build (it links libasan)."""
    with open(pathwise, "rb") as f:
        return b"libasan" in f.read()


def wait_until(what, cond, timeout=20):
    """Poll cond() until it holds and return its value; fail with `what`
    after timeout seconds (a bound on a hang, not a speed check)."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        v = cond()
        if v:
            return v
        time.sleep(0.1)
    raise Fail("%s: not within %ss" % (what, timeout))


def time_scale(args):
    """How much longer than on an idle machine's normal build a deadline
    under test must be: PW_TEST_TIME_SCALE if set, else 4 for the sanitizer
    build (it evaluates about 3x slower, and CI runs the suite with -j2 on
    2 cores), else 1. Deadlines that a test expects to fire are scaled with
    the ones it expects to hold, so what it checks stays the same."""
    env = os.environ.get("PW_TEST_TIME_SCALE")
    if env:
        return float(env)
    if not hasattr(args, "_time_scale"):
        args._time_scale = 4.0 if sanitized(args.pathwise) else 1.0
    return args._time_scale


def one_line(data):
    """Facts text on one line (CR and LF can only be white space in JSON)."""
    return data.replace(b"\r", b" ").replace(b"\n", b" ").strip()


def request(method, params=None, rid=1):
    req = {"jsonrpc": "2.0", "id": rid, "method": method}
    if params is not None:
        req["params"] = params
    return (json.dumps(req, separators=(",", ":")) + "\n").encode()


def eval_request(facts_text, rid, extra=None):
    """An evaluate line carrying the facts text verbatim."""
    head = b'{"jsonrpc":"2.0","id":' + json.dumps(rid).encode() + \
        b',"method":"evaluate","params":{'
    if extra:
        for k, v in extra.items():
            head += json.dumps(k).encode() + b":" + json.dumps(v).encode() + b","
    return head + b'"facts":' + one_line(facts_text) + b"}}\n"


def result_text(line):
    """The raw text of "result" in one of our response lines."""
    key = b',"result":'
    i = line.find(key)
    check(i > 0 and line.endswith(b"}"), "not a result line: %r" % line[:200])
    return line[i + len(key):-1]


class Conn:
    def __init__(self, path, timeout=30):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.s.recv(1 << 16)
            if not chunk:
                raise EOFError("server closed the connection")
            self.buf += chunk
        i = self.buf.index(b"\n")
        out, self.buf = self.buf[:i], self.buf[i + 1:]
        return out

    def lines(self, n):
        return [self.line() for _ in range(n)]

    def call(self, method, params=None, rid=1):
        self.send(request(method, params, rid))
        return json.loads(self.line())

    def at_eof(self, timeout=5):
        """True when the server closes the connection (after any lines)."""
        self.s.settimeout(timeout)
        try:
            while True:
                chunk = self.s.recv(1 << 16)
                if not chunk:
                    return True
                self.buf += chunk
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


class Server:
    """One `pathwise serve` process on a socket in tmp."""

    def __init__(self, args, tmp, extra=(), log=True, sync="always", workers=2,
                 sock=None, name="s"):
        self.args, self.tmp = args, tmp
        self.sock = sock or os.path.join(tmp, name + ".sock")
        self.log = os.path.join(tmp, name + ".log.jsonl") if log else None
        self.errpath = os.path.join(tmp, name + ".stderr")
        cmd = [args.pathwise, "serve", "--socket", self.sock, "--workers", str(workers)]
        if self.log:
            cmd += ["--log", self.log, "--log-sync", sync]
        cmd += list(extra)
        self.cmd = cmd
        self.proc = None

    def start(self, wait=True, timeout=30):
        self.err = open(self.errpath, "ab")
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self.err)
        _live.append(self)
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=30):
        t0 = time.time()
        while time.time() - t0 < timeout:
            if self.proc.poll() is not None:
                raise Fail("server exited with %s: %s" % (self.proc.returncode, self.stderr()))
            try:
                c = Conn(self.sock, timeout=5)
                r = c.call("health")
                c.close()
                if r.get("result", {}).get("status") in ("ok", "degraded"):
                    return r["result"]
            except (OSError, EOFError, ValueError):
                pass
            time.sleep(0.05)
        raise Fail("server not ready after %ss: %s" % (timeout, self.stderr()))

    def stderr(self):
        try:
            return read(self.errpath).decode(errors="replace")
        except OSError:
            return ""

    def conn(self, timeout=30):
        return Conn(self.sock, timeout)

    def call(self, method, params=None):
        c = self.conn()
        try:
            return c.call(method, params)
        finally:
            c.close()

    def health(self):
        return self.call("health")["result"]

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise Fail("server did not stop within %ss after signal %d" % (timeout, sig))

    def kill9(self):
        self.proc.kill()
        self.proc.wait()


_live = []


class Load:
    """Client threads keeping `window` evaluations in flight each, until the
    `with` block ends. Counts answers (`ok`), keeps every error object
    (`errors`; a client-side failure has code 0), the protocol versions that
    answered (`versions`) and the longest answer time (`max_latency`, s)."""

    def __init__(self, srv, facts, threads=4, window=16):
        self.srv, self.facts, self.window = srv, facts, window
        self.stop = threading.Event()
        self.ok = 0
        self.errors = []
        self.versions = set()
        self.max_latency = 0.0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.loop) for _ in range(threads)]

    def loop(self):
        try:
            c = self.srv.conn()
            sent = {}
            rid = 0
            while not self.stop.is_set() or sent:
                while len(sent) < self.window and not self.stop.is_set():
                    rid += 1
                    sent[rid] = time.time()
                    c.send(eval_request(self.facts, rid))
                r = json.loads(c.line())
                lat = time.time() - sent.pop(r["id"])
                with self.lock:
                    self.max_latency = max(self.max_latency, lat)
                    if "result" in r:
                        self.ok += 1
                        self.versions.add(r["result"]["protocol"]["version"])
                    else:
                        self.errors.append(r["error"])
            c.close()
        except Exception as e:  # noqa: BLE001
            with self.lock:
                self.errors.append({"code": 0, "message": "client: %r" % e})

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(60)

    def wait_for(self, n, timeout=30):
        """Wait until n more answers arrived; fail after timeout seconds."""
        t0, start = time.time(), self.ok
        while self.ok < start + n:
            if time.time() - t0 > timeout:
                raise Fail("traffic stalled: %d of %d answers in %ds (errors: %r)"
                           % (self.ok - start, n, timeout, self.errors[-3:]))
            time.sleep(0.01)


def log_records(path, allow_torn=False, events=False):
    """Parse a decision log, checking every line is whole with a good CRC
    and seq numbers increase by one. Reload events (method "reload": start,
    reload, refused, error cleared) are checked too but returned only with
    events=True; by default the evaluation records."""
    recs = []
    data = read(path)
    if not data:
        return recs
    check(allow_torn or data.endswith(b"\n"), "log does not end with a newline")
    prev = None
    for n, line in enumerate(data.split(b"\n")[:-1], 1):
        i = line.rfind(b',"crc32":"')
        check(i > 0, "log line %d has no crc32" % n)
        want = int(line[i + 10:i + 18], 16)
        check(zlib.crc32(line[:i]) == want, "log line %d: bad crc32" % n)
        rec = json.loads(line)
        if prev is not None:
            check(rec["seq"] == prev + 1, "log line %d: seq %d after %d" % (n, rec["seq"], prev))
        prev = rec["seq"]
        if events or rec.get("method") != "reload":
            recs.append(rec)
    return recs


def run(tests):
    args = parse_args()
    failed = 0
    for t in tests:
        if args.only and t.__name__ not in args.only:
            continue
        tmp = tempfile.mkdtemp(prefix="pws")
        t0 = time.time()
        try:
            t(args, tmp)
            print("ok   %-45s %.1fs" % (t.__name__, time.time() - t0), flush=True)
        except Exception as e:  # noqa: BLE001 - report every kind of failure
            failed += 1
            print("FAIL %-45s %s" % (t.__name__, e), flush=True)
            traceback.print_exc()
            for s in _live:
                if s.proc and s.tmp == tmp:
                    print("---- server stderr (%s):\n%s" % (s.sock, s.stderr()[-4000:]))
        finally:
            for s in list(_live):
                if s.proc and s.proc.poll() is None:
                    s.proc.kill()
                    s.proc.wait()
                _live.remove(s)
            subprocess.run(["rm", "-rf", tmp])
    print("%d failed" % failed if failed else "all passed")
    sys.exit(1 if failed else 0)


# Lua that makes the default protocol fail on chosen patient ids.
HOSTILE_IDS = """
  if facts.patient_id == "boom" then error("boom") end
  if facts.patient_id == "loop" then while true do end end
  if facts.patient_id == "bomb" then
    local t = {}
    for i = 1, 100000000 do t[i] = string.rep("x", 4096) .. i end
  end
"""


def hooked_protocol(args, tmp, code, name="p.lua", prelude=""):
    """The default protocol, written to tmp/name, with code at the top of
    evaluate() (and prelude, e.g. a chunk-level local, before it all)."""
    src = read(os.path.join(args.root, "scripts", "mrc_second_line.lua")).decode()
    hook = "local function evaluate(facts, out)\n"
    check(hook in src, "evaluate() not found in the protocol")
    proto = os.path.join(tmp, name)
    with open(proto, "w") as f:
        f.write(prelude + src.replace(hook, hook + code, 1))
    return proto


def hostile_protocol(args, tmp):
    """The default protocol, written to tmp/p.lua, with HOSTILE_IDS at the
    top of evaluate(): patient ids boom (script error), loop (budget) and
    bomb (memory)."""
    return hooked_protocol(args, tmp, HOSTILE_IDS)
