#!/usr/bin/env python3
"""pathwise serve: malformed JSON, oversize lines, wrong types, unknown
methods, notifications, clients that vanish mid-reply, and the connection
limits. After each abuse the server must still answer everyone else."""
import json
import os
import socket
import time

from srvlib import Conn, Server, check, eval_request, examples, read, run


def err(line):
    r = json.loads(line)
    check("error" in r, "expected an error, got %r" % line[:200])
    return r["id"], r["error"]["code"], r["error"]["message"]


def test_malformed_and_wrong_types(args, tmp):
    srv = Server(args, tmp).start()
    c = srv.conn()
    facts = json.loads(read(examples(args.root)[0]))
    cases = [
        # (line, expected id, expected code, word expected in the message)
        (b'{"jsonrpc":"2.0","id":1,"method":"evaluate"', None, -32700, "Parse error"),
        (b'not json at all', None, -32700, "Parse error"),
        (b'{"jsonrpc":"2.0","id":2,"method":"health",}', None, -32700, "Parse error"),
        (b'{"jsonrpc":"2.0","id":3,"method":"health","method":"stats"}', 3, -32700, "duplicate"),
        (b'[{"jsonrpc":"2.0","id":4,"method":"health"}]', None, -32600, "batch"),
        (b'{"jsonrpc":"1.0","id":5,"method":"health"}', 5, -32600, "jsonrpc"),
        (b'{"jsonrpc":"2.0","id":6,"method":7}', 6, -32600, "method"),
        (b'{"jsonrpc":"2.0","id":{"x":1},"method":"health"}', None, -32600, "id"),
        (b'{"jsonrpc":"2.0","id":7,"method":"frobnicate"}', 7, -32601, "frobnicate"),
        (b'{"jsonrpc":"2.0","id":8,"method":"evaluate"}', 8, -32602, "params"),
        (b'{"jsonrpc":"2.0","id":9,"method":"evaluate","params":[1]}', 9, -32602, "params"),
        (b'{"jsonrpc":"2.0","id":10,"method":"evaluate","params":{"facts":[]}}', 10, -32602, "facts"),
        (b'{"jsonrpc":"2.0","id":11,"method":"evaluate","params":{"facts":"x"}}', 11, -32602, "facts"),
        (b'{"jsonrpc":"2.0","id":12,"method":"evaluate","params":{"facts":{},"fromat":"text"}}',
         12, -32602, "fromat"),
        (b'{"jsonrpc":"2.0","id":13,"method":"evaluate","params":{"facts":{},"format":"xml"}}',
         13, -32602, "format"),
        (b'{"jsonrpc":"2.0","id":14,"method":"evaluate","params":{"facts":{},"trace":1}}',
         14, -32602, "trace"),
        (b'{"jsonrpc":"2.0","id":15,"method":"check_orders","params":{"facts":{}}}',
         15, -32602, "orders"),
        (b'{"jsonrpc":"2.0","id":16,"method":"check_orders","params":{"facts":{},"orders":[1]}}',
         16, -32602, "orders"),
        (b'{"jsonrpc":"2.0","id":17,"method":"check_orders","params":{"facts":{},"orders":{}}}',
         17, -32602, "orders"),
        (b'{"jsonrpc":"2.0","id":18,"method":"evaluate","params":{"facts":{"ecog":"one"}}}',
         18, -32001, "ecog"),
        (b'{"jsonrpc":"2.0","id":19,"method":"evaluate","params":{"facts":{"ecog":NaN}}}',
         19, -32700, "Parse error"),
        (b'{"jsonrpc":"2.0","id":20,"method":"evaluate","params":{"facts":{"ecog":1,"ecog":2}}}',
         20, -32700, "duplicate"),
        (b'{"jsonrpc":"2.0","id":"s\\u00e9","method":"frobnicate"}', "s\u00e9", -32601, "frobnicate"),
        (b'{"jsonrpc":"2.0","id":21,"method":"evaluate","params":{"facts":{"a":"\xff"}}}',
         21, -32700, "UTF-8"),
        (b'{"jsonrpc":"2.0","id":22,"method":"evaluate","params":{"facts":{"a":"x\x00y"}}}',
         22, -32700, "Parse error"),
    ]
    for line, rid, code, word in cases:
        c.send(line + b"\n")
        got = err(c.line())
        check(got[0] == rid and got[1] == code and word.lower() in got[2].lower(),
              "%r -> %r (wanted id %r code %d with %r)" % (line[:80], got, rid, code, word))
    # a line nested deeper than the gate allows is refused alike, whichever
    # process answers its method (the supervisor or a worker); like every
    # parse error whose id can still be read, it echoes the id (issue 12)
    deep = b'{"x":' + b"[" * 33 + b"]" * 33 + b"}"
    for method in (b"health", b"evaluate"):
        c.send(b'{"jsonrpc":"2.0","id":23,"method":"' + method + b'","params":' + deep + b"}\n")
        got = err(c.line())
        check(got[0] == 23 and got[1] == -32700 and "nesting" in got[2],
              "%s nested 35 deep: %r" % (method.decode(), got))
    # blank lines and CRLF are fine
    c.send(b"\n  \r\n" + b'{"jsonrpc":"2.0","id":30,"method":"health"}\r\n')
    check(json.loads(c.line())["id"] == 30, "CRLF request")
    check(srv.health()["status"] == "ok", "server unhealthy after malformed input")
    c.close()
    # notifications get no answer: after EOF the server answers what it
    # read and closes once nothing is in flight (notifications count), so
    # an answer to one would arrive before the close
    c = srv.conn()
    c.send(b'{"jsonrpc":"2.0","method":"health"}\n')
    c.send(b'{"jsonrpc":"2.0","method":"evaluate","params":{"facts":' + json.dumps(facts).encode() + b"}}\n")
    c.send(b'{"jsonrpc":"2.0","id":"after","method":"health"}\n')
    c.s.shutdown(1)
    r = json.loads(c.line())
    check(r["id"] == "after", "a notification was answered: %r" % r)
    check(c.at_eof() and c.buf == b"", "a notification was answered: %r" % c.buf)
    c.close()
    # a last request without its newline, then EOF: still answered
    c = srv.conn()
    c.send(b'{"jsonrpc":"2.0","id":"last","method":"health"}')
    c.s.shutdown(1)
    check(json.loads(c.line())["id"] == "last", "unterminated last line not answered")
    check(c.at_eof(), "connection not closed after EOF")
    c.close()


def test_oversize_line(args, tmp):
    srv = Server(args, tmp, ["--max-line", "65536"]).start()
    other = srv.conn()
    c = srv.conn()
    big = b'{"jsonrpc":"2.0","id":1,"method":"evaluate","params":{"facts":{"patient_id":"' + \
        b"x" * 70000 + b'"}}}\n'
    c.send(big[:40000])
    c.send(big[40000:])
    rid, code, msg = err(c.line())
    check(code == -32008 and "65536" in msg, "oversize: %r" % msg)
    check(c.at_eof(), "connection not closed after an oversize line")
    # a line without newline growing past the limit is cut off too
    c2 = srv.conn()
    try:
        c2.send(b"{" + b" " * 100000)
    except OSError:
        pass
    rid, code, msg = err(c2.line())
    check(code == -32008, "oversize partial line: %r" % msg)
    # just under the limit is fine
    facts = b'{"patient_id":"' + b"y" * 60000 + b'"}'
    other.send(eval_request(facts, 5))
    r = json.loads(other.line())
    check(r["id"] == 5 and ("result" in r or r["error"]["code"] == -32001), "near-limit line: %r"
          % str(r)[:200])
    check(other.call("health", rid=6)["result"]["status"] == "ok", "other client unaffected")


def test_vanishing_clients(args, tmp):
    srv = Server(args, tmp).start()
    req = eval_request(read(examples(args.root)[0]), 1)
    for k in range(30):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(srv.sock)
        s.sendall(req * (50 + k))
        if k % 3 == 0:   # read a little of the answers, then vanish
            s.recv(100)
        if k % 2 == 0:   # reset instead of a clean close
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
    time.sleep(0.5)
    c = srv.conn()
    for i in range(20):
        c.send(eval_request(read(examples(args.root)[0]), i))
    ids = sorted(json.loads(c.line())["id"] for _ in range(20))
    check(ids == list(range(20)), "answers after vanishing clients: %r" % ids)
    h = srv.health()
    check(h["status"] == "ok" and h["workers"]["ready"] == 2, "health %r" % h)
    st = srv.call("stats")["result"]
    check(st["workers"]["crashed"] == 0, "a worker crashed: %r" % st["workers"])


def test_connection_limits(args, tmp):
    srv = Server(args, tmp, ["--max-connections", "4", "--idle-timeout", "1"]).start()
    held = [srv.conn() for _ in range(4)]
    for h in held:
        check(h.call("health")["result"]["status"] == "ok", "held connection works")
    extra = srv.conn()
    rid, code, msg = err(extra.line())
    check(code == -32009 and "max-connections" in msg, "5th connection: %r" % msg)
    check(extra.at_eof(), "refused connection not closed")
    # idle connections are closed after the idle timeout, with a reason
    time.sleep(2.5)
    rid, code, msg = err(held[0].line())
    check(code == -32009 and "idle" in msg, "idle close: %r" % msg)
    check(held[0].at_eof(), "idle connection not closed")
    c = srv.conn()
    check(c.call("health")["result"]["status"] == "ok", "new connection after idle close")


def test_peer_credentials(args, tmp):
    me = os.getuid()
    other = me + 4242
    srv = Server(args, tmp, ["--allow-uid", str(other)]).start(wait=False)
    time.sleep(0.3)
    t0 = time.time()
    while not os.path.exists(srv.sock) and time.time() - t0 < 20:
        time.sleep(0.05)
    time.sleep(0.2)
    c = Conn(srv.sock)
    rid, code, msg = err(c.line())
    check(code == -32011 and str(me) in msg, "forbidden uid: %r" % msg)
    check(c.at_eof(), "forbidden connection not closed")
    srv.stop()
    srv2 = Server(args, tmp, ["--allow-uid", "%d,%d" % (other, me)], name="t").start()
    check(srv2.health()["status"] == "ok", "allowed uid")
    srv2.call("evaluate", {"facts": {}})
    srv2.stop()
    with open(srv2.log) as f:
        rec = json.loads(f.readline())
    check(rec["peer"]["uid"] == me and rec["peer"]["pid"] > 0, "peer recorded: %r" % rec["peer"])


def test_ids_echoed_and_absurd_refused(args, tmp):
    """An id that could be read is echoed in an invalid-request reply; a
    non-finite or absurd id gets a clear invalid-request error (issue 12)."""
    srv = Server(args, tmp, workers=1).start()
    c = srv.conn()
    c.send(b'{"jsonrpc":"1.0","id":5,"method":"health"}\n')
    r = json.loads(c.line())
    check(r.get("id") == 5 and r["error"]["code"] == -32600, "id not echoed: %r" % r)
    c.send(b'{"jsonrpc":"2.0","id":"abc","method":7}\n')
    r = json.loads(c.line())
    check(r.get("id") == "abc" and r["error"]["code"] == -32600, "id not echoed: %r" % r)
    for bad in (b"1e400", b"-1e400", b"1e300", b'"' + b"x" * 1024 + b'"'):
        c.send(b'{"jsonrpc":"2.0","id":' + bad + b',"method":"health"}\n')
        line = c.line()
        r = json.loads(line)
        check(r.get("id") is None and r["error"]["code"] == -32600 and "id" in r["error"]["message"],
              "id %r: %r" % (bad[:20], line[:200]))
        check(b"inf" not in line.lower(), "non-finite id echoed: %r" % line[:200])
    check("result" in c.call("health"), "server not serving after bad ids")
    srv.stop()


if __name__ == "__main__":
    run([test_malformed_and_wrong_types, test_oversize_line, test_vanishing_clients,
         test_connection_limits, test_peer_credentials, test_ids_echoed_and_absurd_refused])
