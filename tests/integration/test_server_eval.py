#!/usr/bin/env python3
"""pathwise serve: answers equal `pathwise eval` for every example; the
other methods; the C, Python and shell clients."""
import json
import os
import shutil
import subprocess

from srvlib import Server, check, eval_request, examples, log_records, read, result_text, run


def cli_eval(args, path, *extra):
    p = subprocess.run([args.pathwise, "eval", "--format", "json", *extra, path],
                       capture_output=True)
    check(p.returncode == 0, "pathwise eval %s: exit %d %s" % (path, p.returncode, p.stderr))
    return p.stdout


def test_every_example_equals_eval(args, tmp):
    srv = Server(args, tmp).start()
    c = srv.conn()
    cases = examples(args.root)
    check(len(cases) >= 9, "expected the examples, found %d" % len(cases))
    for i, path in enumerate(cases):
        c.send(eval_request(read(path), i + 1))
    got = {}
    for _ in cases:
        line = c.line()
        got[json.loads(line)["id"]] = line
    for i, path in enumerate(cases):
        want = cli_eval(args, path).rstrip(b"\n")
        check(result_text(got[i + 1]) == want,
              "%s: server result differs from pathwise eval" % os.path.basename(path))
    # with trace, and through the C client too
    c.send(eval_request(read(cases[0]), 99, {"trace": True}))
    check(result_text(c.line()) == cli_eval(args, cases[0], "--trace").rstrip(b"\n"),
          "trace result differs from pathwise eval --trace")
    p = subprocess.run([args.pathwise, "client", "--socket", srv.sock, *cases],
                       capture_output=True)
    check(p.returncode == 0, "client exit %d: %s" % (p.returncode, p.stderr))
    want = b"".join(cli_eval(args, x) for x in cases)
    check(p.stdout == want, "pathwise client output differs from pathwise eval")
    # one record per evaluation, each whole, with the facts hash and protocol
    c.close()
    check(srv.stop() == 0, "server did not exit 0")
    recs = log_records(srv.log)
    check(len(recs) == 2 * len(cases) + 1, "log has %d records" % len(recs))
    r = recs[0]
    for k in ("seq", "time", "request_id", "schema_version", "engine", "protocol", "facts_sha256", "pathway",
              "recommendations", "blocked", "duration_us", "crc32"):
        check(k in r, "log record lacks %s" % k)
    check(r["protocol"]["id"] == "mrc_second_line" and len(r["protocol"]["sha256"]) == 64,
          "log record protocol identity")
    check(len(r["facts_sha256"]) == 64 and "facts" not in r, "facts hashed, not logged")
    check(oct(os.stat(srv.log).st_mode & 0o777) == "0o600", "log file mode is not 0600")


def test_methods(args, tmp):
    srv = Server(args, tmp).start()
    c = srv.conn()
    r = c.call("protocols")["result"]
    check(len(r) == 1 and r[0]["id"] == "mrc_second_line" and
          set(r[0]) >= {"id", "version", "sha256", "title"}, "protocols: %r" % r)
    rules = c.call("rules")["result"]
    p = subprocess.run([args.pathwise, "rules", "--format", "json"], capture_output=True)
    check(rules == json.loads(p.stdout), "rules differ from pathwise rules --format json")
    h = c.call("health")["result"]
    check(h["status"] == "ok" and h["workers"]["ready"] == 2, "health: %r" % h)
    check(h["decision_log"]["ok"] is True, "health log")
    index = json.loads(read(examples(args.root)[0]))
    # check_orders: the kernel's verdict on given orders
    r = c.call("check_orders", {"facts": index, "orders": ["cetuximab", "FOLFIRI"]})
    check("result" in r, "check_orders failed: %r" % r)
    text = json.dumps(r["result"])
    check("cetuximab" in text and "egfr_requires_ras_wt" in text,
          "check_orders does not block cetuximab with RAS unknown: %s" % text[:400])
    # format text
    r = c.call("evaluate", {"facts": index, "format": "text"})
    check(isinstance(r.get("result"), str) and "FOLFIRI" in r["result"], "format text: %r" % r)
    # protocol named explicitly, and an unknown one
    r = c.call("evaluate", {"facts": index, "protocol": "mrc_second_line"})
    check("result" in r, "evaluate with protocol id: %r" % r)
    r = c.call("evaluate", {"facts": index, "protocol": "nope"})
    check(r["error"]["code"] == -32010 and "nope" in r["error"]["message"], "unknown protocol: %r" % r)
    s = c.call("stats")["result"]
    check(s["methods"]["evaluate"] == 3 and s["methods"]["check_orders"] == 1, "stats methods %r" % s)
    check(s["protocols"]["mrc_second_line"]["evaluations"] >= 4, "stats protocols %r" % s)
    check(s["latency_us"]["count"] >= 4 and s["latency_us"]["p50"] > 0, "stats latency %r" % s)
    check(s["errors"] == 1 and s["error_codes"].get("-32010") == 1, "stats errors %r" % s)
    # validation errors name the field
    bad = dict(index, ecog=7)
    r = c.call("evaluate", {"facts": bad})
    check(r["error"]["code"] == -32001 and "ecog" in r["error"]["message"], "validation: %r" % r)
    c.close()


def test_two_protocols(args, tmp):
    local = os.path.join(args.root, "examples", "local-protocol", "mrc_second_line_local.lua")
    if not os.path.exists(local):
        print("     (no local protocol example; skipped)")
        return
    d = os.path.join(tmp, "protocols")
    os.mkdir(d)
    shutil.copy(os.path.join(args.root, "scripts", "mrc_second_line.lua"), d)
    shutil.copy(local, d)
    srv = Server(args, tmp, ["--protocols", d]).start()
    c = srv.conn()
    ids = sorted(p["id"] for p in c.call("protocols")["result"])
    check(len(ids) == 2, "two protocols loaded: %r" % ids)
    path = examples(args.root)[0]
    want = {}
    for f in os.listdir(d):
        out = cli_eval(args, path, "--protocol", os.path.join(d, f))
        want[json.loads(out)["protocol"]["id"]] = out.rstrip(b"\n")
    check(sorted(want) == ids, "protocol ids %r vs %r" % (sorted(want), ids))
    for i, pid in enumerate(ids):
        c.send(eval_request(read(path), i, {"protocol": pid}))
        line = c.line()
        check(result_text(line) == want[pid], "%s: differs from pathwise eval --protocol" % pid)
    # without "protocol", the first in name order answers
    c.send(eval_request(read(path), 9))
    first = json.loads(c.line())["result"]["protocol"]["id"]
    check(first == json.loads(cli_eval(args, path, "--protocol", os.path.join(
        d, sorted(os.listdir(d))[0])))["protocol"]["id"], "default protocol is the first file")
    c.close()


def test_plugin(args, tmp):
    plugin = os.path.join(args.root, "plugins", "local_bev_surgery_60d.lua")
    if not os.path.exists(plugin):
        print("     (no plugin example; skipped)")
        return
    facts = json.loads(read(examples(args.root)[0]))
    facts["planned_surgery_in_days"] = 50
    path = os.path.join(tmp, "surgery50.json")
    with open(path, "w") as f:
        json.dump(facts, f)
    want = cli_eval(args, path, "--plugin", plugin).rstrip(b"\n")
    check(b"local_bev_surgery_60d" in want, "the plugin blocks nothing for eval")
    srv = Server(args, tmp, ["--plugin", plugin]).start()
    c = srv.conn()
    c.send(eval_request(read(path), 1))
    check(result_text(c.line()) == want, "serve --plugin differs from eval --plugin")
    c.close()
    srv.stop()
    recs = log_records(srv.log)
    check(any(b["rule"].startswith("local_bev_surgery_60d") for b in recs[0]["blocked"]),
          "plugin block not in the log: %r" % recs[0]["blocked"])


def test_example_clients(args, tmp):
    srv = Server(args, tmp).start()
    path = examples(args.root)[0]
    want = cli_eval(args, path)
    py = os.path.join(args.root, "examples", "clients", "pathwise_client.py")
    p = subprocess.run(["python3", py, "--socket", srv.sock, path], capture_output=True)
    check(p.returncode == 0 and p.stdout == want,
          "python client: exit %d %s" % (p.returncode, p.stderr))
    p = subprocess.run(["python3", py, "--socket", srv.sock, "--method", "health"],
                       capture_output=True)
    check(p.returncode == 0 and json.loads(p.stdout)["status"] == "ok", "python client health")
    sh = os.path.join(args.root, "examples", "clients", "pathwise_client.sh")
    if shutil.which("socat"):
        p = subprocess.run(["sh", sh, srv.sock, path], capture_output=True)
        check(p.returncode == 0, "shell client: exit %d %s" % (p.returncode, p.stderr))
        line = p.stdout.strip().split(b"\n")[-1]
        check(result_text(line) == want.rstrip(b"\n"), "shell client result differs")
        p = subprocess.run(["sh", sh, srv.sock, "-", "health"], input=b"", capture_output=True)
        check(p.returncode == 0 and b'"status":"ok"' in p.stdout, "shell client health: %r" % p.stdout)
    else:
        print("     (socat not installed: shell client skipped)")
    # raw JSON-RPC lines through the C client
    lines = os.path.join(tmp, "req.jsonl")
    with open(lines, "wb") as f:
        f.write(b'{"jsonrpc":"2.0","id":"a","method":"health"}\n')
        f.write(b'{"jsonrpc":"2.0","id":"b","method":"nope"}\n')
    p = subprocess.run([args.pathwise, "client", "--socket", srv.sock, lines], capture_output=True)
    out = p.stdout.strip().split(b"\n")
    check(p.returncode == 0 and len(out) == 2, "client raw lines: %r" % p.stdout)
    check(b'"id":"b","error":{"code":-32601' in p.stdout, "client raw unknown method")


if __name__ == "__main__":
    run([test_every_example_equals_eval, test_methods, test_two_protocols, test_plugin,
         test_example_clients])
