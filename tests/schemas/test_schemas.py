#!/usr/bin/env python3
"""schemas: every JSON Schema in schemas/ against real outputs, with the
`jsonschema` command of Debian's python3-jsonschema (4.10: -i INSTANCE SCHEMA).

- result.schema.json: pathwise eval (every example, with and without
  --trace), every line of pathwise batch over a cohort with invalid lines
  ($defs/batch_error for those), and the result of evaluate/check_orders;
- rpc.schema.json: every request sent and every response line of every
  method, each against its method's $defs (a derived schema that keeps the
  $defs and points $ref at one), and all of them against the whole schema;
- decision-log.schema.json: every record of the server's log, with and
  without --log-facts, and the reload event the reload method leaves;
- diff.schema.json: pathwise diff --format json of an extension with a
  plugin, of a plugin that leaves patients with no systemic regimen, of a
  protocol failing on some lines (errors on one side, invalid lines on
  both), and --summary-only; every key of every summary is a snake_case
  identifier.
The schemas must also refuse: a diff summary keyed by a display string,
a diff item state with an unknown status, a result with an unknown key, a log record
without its crc32, an error whose code and data.kind disagree.
"""
import argparse
import glob
import json
import os
import re
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


def schema_path(name):
    return os.path.join(ARGS.root, "schemas", name)


def derived(tmp, name, ref):
    """A schema that is schemas/NAME with its root replaced by #/$defs/REF."""
    s = json.load(open(schema_path(name)))
    d = {"$schema": s["$schema"], "$defs": s["$defs"], "$ref": "#/$defs/" + ref}
    path = os.path.join(tmp, "%s-%s.json" % (name, ref))
    json.dump(d, open(path, "w"))
    return path


def write_instances(tmp, tag, objs):
    paths = []
    for i, o in enumerate(objs):
        p = os.path.join(tmp, "%s-%d.json" % (tag, i))
        with open(p, "w") as f:
            f.write(o if isinstance(o, str) else json.dumps(o))
        paths.append(p)
    return paths


def validate(schema, instances, what, expect_valid=True):
    """Run the jsonschema command; chunks keep the command line short."""
    ok = True
    for i in range(0, len(instances), 200):
        argv = [ARGS.jsonschema]
        for p in instances[i:i + 200]:
            argv += ["-i", p]
        p = subprocess.run(argv + [schema], capture_output=True, text=True, timeout=300)
        ok = ok and p.returncode == 0
        if expect_valid and p.returncode != 0:
            print(p.stdout[-2000:], p.stderr[-2000:])
    check(ok == expect_valid, "%s: %s" % (what, "invalid" if expect_valid else "accepted but must be refused"))
    return ok


def run(*argv, **kw):
    return subprocess.run([ARGS.pathwise, *argv], capture_output=True, timeout=120, **kw)


def examples():
    return [os.path.join(ARGS.root, "examples", "index_case.json")] + \
        sorted(glob.glob(os.path.join(ARGS.root, "examples", "cases", "*.json")))


def test_eval_and_batch(tmp):
    outs = []
    for case in examples():
        for extra in ([], ["--trace"]):
            p = run("eval", "--format", "json", *extra, case)
            check(p.returncode == 0, "eval %s exit %d" % (case, p.returncode))
            outs.append(p.stdout.decode())
    validate(schema_path("result.schema.json"), write_instances(tmp, "eval", outs), "pathwise eval results")
    cohort = run("cohort", "--n", "400", "--seed", "15", "--invalid", "5").stdout
    p = run("batch", "--quiet", "--no-progress", "--jobs", "2", "--trace", "-", input=cohort)
    lines = p.stdout.decode().splitlines()
    good = [l for l in lines if not l.startswith('{"line":')]
    bad = [l for l in lines if l.startswith('{"line":')]
    check(len(lines) == 400 and bad and good, "batch: %d lines, %d errors" % (len(lines), len(bad)))
    validate(schema_path("result.schema.json"), write_instances(tmp, "batch", good), "batch results")
    validate(derived(tmp, "result.schema.json", "batch_error"), write_instances(tmp, "batcherr", bad),
             "batch error records")
    validate(derived(tmp, "result.schema.json", "batch_line"), write_instances(tmp, "batchall", lines[:100]),
             "batch lines ($defs/batch_line)")
    r = json.loads(outs[0])
    r["bogus"] = 1
    validate(schema_path("result.schema.json"), write_instances(tmp, "neg-result", [r]),
             "a result with an unknown key", expect_valid=False)


class Server:
    def __init__(self, tmp, log_facts):
        self.sock = os.path.join(tmp, "s%d.sock" % log_facts)
        self.log = os.path.join(tmp, "log%d.jsonl" % log_facts)
        argv = [ARGS.pathwise, "serve", "--socket", self.sock, "--log", self.log, "--workers", "1"]
        self.p = subprocess.Popen(argv + (["--log-facts"] if log_facts else []), stderr=subprocess.DEVNULL)
        for _ in range(200):
            if os.path.exists(self.sock):
                break
            time.sleep(0.05)
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(self.sock)
        self.f = self.s.makefile("rwb")

    def call(self, req):
        self.f.write((json.dumps(req) + "\n").encode())
        self.f.flush()
        return self.f.readline().decode()

    def stop(self):
        self.s.close()
        self.p.terminate()
        return self.p.wait(timeout=30)


def requests():
    facts = json.load(open(examples()[0]))
    kras = json.load(open(os.path.join(ARGS.root, "examples", "cases", "kras_mutant_proposed_cetuximab.json")))
    ok = [("evaluate", {"facts": facts}), ("evaluate", {"facts": kras, "trace": True}),
          ("evaluate", {"facts": facts, "format": "text"}),
          ("evaluate", {"facts": facts, "protocol": "mrc_second_line", "format": "json"}),
          ("check_orders", {"facts": kras, "orders": ["cetuximab", "FOLFIRI"]}),
          ("protocols", None), ("rules", None), ("health", None), ("stats", None), ("reload", None)]
    errors = [("nope", None), ("evaluate", {"facts": {"ecog": 9}}), ("evaluate", {"facts": facts, "fromat": "x"}),
              ("evaluate", {"facts": facts, "protocol": "absent"})]
    return ok, errors


def test_server(tmp):
    ok, errors = requests()
    rpc = schema_path("rpc.schema.json")
    all_lines, results = [], []
    for log_facts in (0, 1):
        srv = Server(tmp, log_facts)
        by_method = {}
        for n, (method, params) in enumerate(ok + errors):
            req = {"jsonrpc": "2.0", "id": n + 1, "method": method}
            if params is not None:
                req["params"] = params
            line = srv.call(req)
            resp = json.loads(line)
            all_lines.append(line)
            if (method, params) in errors:
                check("error" in resp, "%s %r: want an error" % (method, params))
                by_method.setdefault("error", []).append(line)
                continue
            check("result" in resp, "%s: %s" % (method, line[:200]))
            by_method.setdefault(method, []).append(line)
            by_method.setdefault(method + "_req", []).append(json.dumps(req))
            all_lines.append(json.dumps(req))
            if method in ("evaluate", "check_orders") and isinstance(resp.get("result"), dict):
                results.append(resp["result"])
        check(srv.stop() == 0, "serve did not exit 0 on SIGTERM")
        for m, lines in sorted(by_method.items()):
            ref = m[:-4] + "_request" if m.endswith("_req") else m + "_response"
            validate(derived(tmp, "rpc.schema.json", ref), write_instances(tmp, "rpc-%s-%d" % (m, log_facts), lines),
                     "rpc %s (log_facts=%d)" % (ref, log_facts))
        recs = open(srv.log).read().splitlines()
        events = [r for r in recs if "\"method\":\"reload\"" in r]   # the reload method's event
        check(len(events) == 1 and "\"event\":{\"kind\":\"reload\"" in events[0], "reload events: %r" % events)
        recs = [r for r in recs if r not in events]
        check(len(recs) == 6, "decision log: %d records, want 6 (4 evaluate, 1 check_orders, 1 refused facts)"
              % len(recs))
        errs = [r for r in recs if "\"error\":" in r]
        check(len(errs) == 1 and "\"kind\":\"validation\"" in errs[0], "one refused-facts record: %r" % errs)
        check(all(("\"facts\":" in r) == bool(log_facts) for r in recs if r not in errs), "facts logged iff --log-facts")
        validate(schema_path("decision-log.schema.json"), write_instances(tmp, "log%d" % log_facts, recs + events),
                 "decision log records (log_facts=%d)" % log_facts)
    validate(rpc, write_instances(tmp, "rpc-all", all_lines), "every request and response against rpc.schema.json")
    validate(schema_path("result.schema.json"), write_instances(tmp, "rpc-results", results),
             "results of evaluate and check_orders")
    rec = json.loads(recs[0])
    del rec["crc32"]
    validate(schema_path("decision-log.schema.json"), write_instances(tmp, "neg-log", [rec]),
             "a log record without crc32", expect_valid=False)
    bad = {"jsonrpc": "2.0", "id": 1, "error": {"code": -32601, "message": "m", "data": {"kind": "validation"}}}
    validate(derived(tmp, "rpc.schema.json", "error_response"), write_instances(tmp, "neg-err", [bad]),
             "an error whose code and kind disagree", expect_valid=False)


def snake_keys(o, bad):
    """Collect the object keys under o that are not snake_case identifiers."""
    if isinstance(o, dict):
        for k, v in o.items():
            if not re.fullmatch(r"[a-z][a-z0-9_]*", k):
                bad.append(k)
            snake_keys(v, bad)
    elif isinstance(o, list):
        for v in o:
            snake_keys(v, bad)


def test_diff(tmp):
    schema = schema_path("diff.schema.json")
    proto = os.path.join(ARGS.root, "scripts", "mrc_second_line.lua")
    here = os.path.join(ARGS.root, "examples", "local-protocol")
    fixtures = os.path.join(ARGS.root, "tests", "integration", "experiments", "fixtures")
    cohort = os.path.join(tmp, "diff-cohort.jsonl")
    with open(cohort, "wb") as f:
        f.write(run("cohort", "--n", "400", "--seed", "11", "--invalid", "2").stdout)
    runs = [
        ["--a", proto, "--b", os.path.join(here, "mrc_second_line_local.lua"),
         "--b-plugin", os.path.join(here, "local_bev_surgery_56d.lua")],
        ["--a", proto, "--b", proto, "--b-plugin", os.path.join(fixtures, "no_irinotecan.lua")],
        ["--a", proto, "--b", proto, "--a-plugin", os.path.join(fixtures, "no_irinotecan.lua"), "-s"],
        ["--a", proto, "--b", os.path.join(fixtures, "raising_protocol.lua")],
    ]
    docs = []
    for argv in runs:
        p = run("diff", "-f", "json", *argv, cohort)
        check(p.returncode == 0, "diff %r: exit %d %s" % (argv, p.returncode, p.stderr[-500:]))
        docs.append(json.loads(p.stdout))
    cats = {c for d in docs for case in d["cases"] for c in case["changes"]}
    check({"added", "removed", "modified", "newly_blocked", "pathway", "error"} <= cats,
          "diff: the runs cover the categories (got %s)" % sorted(cats))
    check(any(d["summary"]["no_systemic_regimen"]["only_b"]["cases"] for d in docs), "diff: a run with no regimen")
    check(any(e["side"] == "both" for d in docs for e in d["summary"]["errors"]), "diff: a run with invalid lines")
    validate(schema, write_instances(tmp, "diff", docs), "diff.schema.json: pathwise diff --format json")
    for d in docs:
        bad = []
        snake_keys(d["summary"], bad)
        check(not bad, "diff summary keys that are not identifiers: %r" % bad[:5])
    wrong = json.loads(json.dumps(docs[0]))
    wrong["summary"]["removed"] = {"FOLFIRI+cetuximab": 3}   # the old display-keyed shape
    validate(schema, write_instances(tmp, "diff-bad-summary", [wrong]), "diff.schema.json: a display-keyed summary",
             expect_valid=False)
    wrong = json.loads(json.dumps(docs[0]))
    case = next(c for c in wrong["cases"] if c["newly_blocked"])
    case["newly_blocked"][0]["b"]["status"] = "withheld"
    validate(schema, write_instances(tmp, "diff-bad-state", [wrong]), "diff.schema.json: an unknown item status",
             expect_valid=False)


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--pathwise", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--jsonschema", default="")
    ARGS = ap.parse_args()
    if not ARGS.jsonschema or not os.path.exists(ARGS.jsonschema):
        sys.exit("FAIL: the jsonschema command is missing (apt-get install python3-jsonschema)")
    for name in ("result.schema.json", "rpc.schema.json", "decision-log.schema.json", "diff.schema.json"):
        check(json.load(open(schema_path(name)))["$schema"] == "https://json-schema.org/draft/2020-12/schema",
              name + ": not draft 2020-12")
    with tempfile.TemporaryDirectory() as tmp:
        test_eval_and_batch(tmp)
        test_server(tmp)
        test_diff(tmp)
    if FAILS:
        sys.exit("%d checks failed" % len(FAILS))
    print("ok")


if __name__ == "__main__":
    main()
