#!/usr/bin/env python3
"""pathwise serve: 16 concurrent clients, each pipelining, every example in
the mix; each response carries its request's id and the exact result
`pathwise eval` gives for that example; cheap methods interleaved."""
import json
import subprocess
import threading

from srvlib import Server, check, eval_request, examples, read, result_text, run

CLIENTS, PER_CLIENT, WINDOW = 16, 300, 32


def test_sixteen_pipelined_clients(args, tmp):
    srv = Server(args, tmp).start()
    cases = examples(args.root)
    want = []
    for p in cases:
        out = subprocess.run([args.pathwise, "eval", "--format", "json", p],
                             capture_output=True).stdout.rstrip(b"\n")
        want.append(out)
    facts = [read(p) for p in cases]
    problems = []
    lock = threading.Lock()

    def client(k):
        try:
            c = srv.conn()
            expect = {}
            sent = recv = 0
            while recv < PER_CLIENT:
                while sent < PER_CLIENT and sent - recv < WINDOW:
                    rid = "c%d-%d" % (k, sent)
                    if sent % 50 == 7:
                        c.send(b'{"jsonrpc":"2.0","id":"%s","method":"health"}\n' % rid.encode())
                        expect[rid] = None
                    else:
                        i = (k + sent) % len(cases)
                        c.send(eval_request(facts[i], rid))
                        expect[rid] = i
                    sent += 1
                line = c.line()
                r = json.loads(line)
                recv += 1
                rid = r.get("id")
                if rid not in expect:
                    raise AssertionError("unknown id %r" % rid)
                i = expect.pop(rid)
                if i is None:
                    if r["result"]["status"] != "ok":
                        raise AssertionError("health %r" % r)
                elif result_text(line) != want[i]:
                    raise AssertionError("%s: result differs from pathwise eval" % rid)
            c.close()
        except Exception as e:  # noqa: BLE001
            with lock:
                problems.append("client %d: %r" % (k, e))

    ts = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    check(not problems, "%d clients failed: %s" % (len(problems), problems[:3]))
    st = srv.call("stats")["result"]
    n_eval = CLIENTS * PER_CLIENT - CLIENTS * len([s for s in range(PER_CLIENT) if s % 50 == 7])
    check(st["methods"]["evaluate"] == n_eval and st["errors"] == 0, "stats: %r" % st["methods"])
    check(st["decision_log"]["records"] == n_eval, "log records %r" % st["decision_log"])
    check(st["decision_log"]["syncs"] < n_eval, "no group commit: %r" % st["decision_log"])
    check(srv.stop() == 0, "exit status")


if __name__ == "__main__":
    run([test_sixteen_pipelined_clients])
