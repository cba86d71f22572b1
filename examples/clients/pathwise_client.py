#!/usr/bin/env python3
"""A pathwise client in Python, standard library only.

As a library:

    from pathwise_client import Client
    with Client("/run/pathwise/pathwise.sock") as c:
        result = c.evaluate(facts)              # dict, as `pathwise eval --format json`
        verdict = c.check_orders(facts, ["cetuximab"])
        results = c.evaluate_many([f1, f2, f3]) # pipelined on one connection
        print(c.call("health"))

As a command:

    pathwise_client.py --socket PATH FACTS.json...    # print each result
    pathwise_client.py --socket PATH --method health  # any method

Errors from the server raise PathwiseError with .code, .message, .kind.
"""
import argparse
import itertools
import json
import socket
import sys


class PathwiseError(Exception):
    def __init__(self, error):
        self.code = error.get("code")
        self.message = error.get("message", "")
        self.kind = (error.get("data") or {}).get("kind")
        super().__init__("%s (%s): %s" % (self.code, self.kind, self.message))


class Client:
    """One connection to `pathwise serve`. Not thread-safe: one per thread."""

    def __init__(self, path, timeout=30.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.ids = itertools.count(1)

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _send(self, method, params, rid):
        req = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            req["params"] = params
        # one request per line: json.dumps never writes a raw newline
        self.sock.sendall(json.dumps(req, separators=(",", ":")).encode() + b"\n")

    def _line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("pathwise closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def _recv(self):
        """The next response as (id, raw line, parsed)."""
        line = self._line()
        resp = json.loads(line)
        return resp.get("id"), line, resp

    def call(self, method, params=None):
        rid = next(self.ids)
        self._send(method, params, rid)
        while True:
            got, _, resp = self._recv()
            if got == rid:
                break
            if got is None and "error" in resp:  # a limit hit by this connection
                raise PathwiseError(resp["error"])
        if "error" in resp:
            raise PathwiseError(resp["error"])
        return resp["result"]

    def evaluate(self, facts, protocol=None, trace=False):
        params = {"facts": facts}
        if protocol:
            params["protocol"] = protocol
        if trace:
            params["trace"] = True
        return self.call("evaluate", params)

    def check_orders(self, facts, orders):
        return self.call("check_orders", {"facts": facts, "orders": list(orders)})

    def evaluate_many(self, facts_list, protocol=None, window=64):
        """Evaluate many facts objects pipelined (up to window in flight).
        Returns results in order; an error becomes a PathwiseError in its slot."""
        facts_list = list(facts_list)
        out = [None] * len(facts_list)
        base = next(self.ids)
        sent = done = 0
        while done < len(facts_list):
            while sent < len(facts_list) and sent - done < window:
                params = {"facts": facts_list[sent]}
                if protocol:
                    params["protocol"] = protocol
                self._send("evaluate", params, base + sent)
                sent += 1
            got, _, resp = self._recv()
            i = got - base if isinstance(got, int) else -1
            if not 0 <= i < len(out):
                raise PathwiseError(resp.get("error", {"message": "unexpected response"}))
            out[i] = PathwiseError(resp["error"]) if "error" in resp else resp["result"]
            done += 1
        self.ids = itertools.count(base + len(facts_list))
        return out

    def evaluate_raw(self, facts_text):
        """Evaluate facts given as JSON text; return the result's raw JSON text,
        byte for byte what `pathwise eval --format json` prints (without its
        final newline)."""
        rid = next(self.ids)
        text = facts_text.replace(b"\r", b" ").replace(b"\n", b" ").strip()
        self.sock.sendall(b'{"jsonrpc":"2.0","id":%d,"method":"evaluate","params":{"facts":'
                          % rid + text + b"}}\n")
        got, line, resp = self._recv()
        if "error" in resp:
            raise PathwiseError(resp["error"])
        key = b',"result":'
        return line[line.index(key) + len(key):-1]


def main():
    ap = argparse.ArgumentParser(description="Talk to a running `pathwise serve`.")
    ap.add_argument("--socket", required=True)
    ap.add_argument("--method", help="call this method (health, stats, protocols, rules, reload)")
    ap.add_argument("--params", help="params object (JSON) for --method")
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("files", nargs="*", help="facts files to evaluate ('-' for stdin)")
    a = ap.parse_args()
    code = 0
    with Client(a.socket, a.timeout) as c:
        if a.method:
            try:
                res = c.call(a.method, json.loads(a.params) if a.params else None)
                print(json.dumps(res, separators=(",", ":")))
            except PathwiseError as e:
                print("pathwise_client: %s" % e, file=sys.stderr)
                code = 1
        for path in a.files:
            data = sys.stdin.buffer.read() if path == "-" else open(path, "rb").read()
            try:
                sys.stdout.buffer.write(c.evaluate_raw(data) + b"\n")
            except PathwiseError as e:
                print("pathwise_client: %s: %s" % (path, e), file=sys.stderr)
                code = 1
    return code


if __name__ == "__main__":
    sys.exit(main())
