#!/usr/bin/env python3
"""pathwise serve: the evaluate_fhir method answers exactly what
`pathwise eval --from fhir` prints, for the real and colorectal bundles;
its parameters are strict; evaluate keeps refusing a FHIR document."""
import glob
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from srvlib import Server, check, request, result_text, run  # noqa: E402

AS_OF = {"ctm-app__TrialMatching_Patient01": "2019-06-15"}


def bundles(root):
    out = sorted(glob.glob(os.path.join(root, "tests", "data", "fhir", "real", "*.json")))
    out += sorted(glob.glob(os.path.join(root, "tests", "data", "fhir", "colorectal", "*.json")))
    check(len(out) >= 10, "expected 3 real and 7 colorectal bundles, found %d" % len(out))
    return out


def as_of(path):
    return AS_OF.get(os.path.splitext(os.path.basename(path))[0], "2026-06-01")


def cli(args, path, *extra):
    p = subprocess.run([args.pathwise, "eval", "--from", "fhir", "--as-of", as_of(path), *extra, path],
                       capture_output=True)
    check(p.returncode == 0, "eval --from fhir %s: exit %d %s" % (path, p.returncode, p.stderr))
    return p.stdout


def fhir_line(path, rid, extra=None):
    with open(path) as f:
        params = {"bundle": json.load(f), "as_of": as_of(path)}
    params.update(extra or {})
    return request("evaluate_fhir", params, rid)


def test_equals_cli(args, tmp):
    srv = Server(args, tmp, extra=["--max-line", str(4 << 20)]).start()
    c = srv.conn()
    paths = bundles(args.root)
    for i, path in enumerate(paths):
        c.send(fhir_line(path, i + 1))
        line = c.line()
        check(json.loads(line)["id"] == i + 1, "id not echoed")
        check(result_text(line) == cli(args, path, "--format", "json").rstrip(b"\n"),
              "%s: evaluate_fhir differs from eval --from fhir" % os.path.basename(path))
    c.send(fhir_line(paths[3], 49, {"trace": True}))
    check(result_text(c.line()) == cli(args, paths[3], "--format", "json", "--trace").rstrip(b"\n"),
          "json+trace differs from eval --from fhir --trace")
    c.send(fhir_line(paths[3], 48, {"what_if": True}))
    r = json.loads(c.line())["result"]
    check("what_if" in r and r["input"]["as_of"] == as_of(paths[3]), "what_if: %r" % list(r))
    c.send(fhir_line(paths[3], 50, {"format": "text", "trace": True}))
    text = json.loads(c.line())["result"]
    check(text.encode() == cli(args, paths[3], "--format", "text", "--trace"),
          "text+trace differs from eval --from fhir --format text --trace")
    check("FHIR INPUT" in text and "as of 2026-06-01" in text, "text lacks the FHIR input section")
    with open(srv.log) as f:
        recs = [json.loads(r) for r in f.read().splitlines()]
    fhir = [r for r in recs if "evaluate_fhir" in json.dumps(r)]
    check(len(fhir) >= len(paths), "decision log: %d evaluate_fhir records for %d requests" % (len(fhir), len(paths)))
    import jsonschema
    with open(os.path.join(args.root, "schemas", "decision-log.schema.json")) as f:
        v = jsonschema.Draft202012Validator(json.load(f))
    bad = ["record %s: %s" % (r.get("seq"), e.message) for r in recs for e in v.iter_errors(r)]
    check(not bad, "decision-log records do not validate: %s" % "; ".join(bad[:3]))


def test_strict_params_and_refusals(args, tmp):
    srv = Server(args, tmp, log=False).start()
    c = srv.conn()
    path = bundles(args.root)[3]
    cases = [
        ({"bundle": {"resourceType": "Bundle"}, "facts": {}}, -32602, "unknown member 'facts'"),
        ({"bundle": [1]}, -32602, "params.bundle"),
        ({"bundle": {"resourceType": "Bundle", "entry": []}, "as_of": "2026-13-01"}, -32602, "params.as_of"),
        ({"bundle": {"resourceType": "Bundle", "type": "collection", "entry": []}}, -32001, "no FHIR resources"),
        ({"bundle": {"resourceType": "Patient", "id": "x", "deceasedBoolean": True}}, -32001, "deceased"),
    ]
    for i, (params, code, text) in enumerate(cases):
        r = c.call("evaluate_fhir", params, i + 1)
        check("error" in r and r["error"]["code"] == code and text in r["error"]["message"],
              "case %d: %r" % (i, r))
    with open(path) as f:
        bundle = json.load(f)
    r = c.call("evaluate", {"facts": bundle}, 9)
    check(r.get("error", {}).get("code") == -32001 and "resourceType 'Bundle'" in r["error"]["message"]
          and "evaluate_fhir" in r["error"]["message"], "evaluate accepted a FHIR Bundle: %r" % r)
    r = c.call("evaluate_fhir", {"bundle": bundle, "as_of": "2026-06-01"}, 10)
    check(r["result"]["input"]["as_of"] == "2026-06-01", "server stopped answering after refusals")
    stats = c.call("stats", None, 11)["result"]
    check("evaluate_fhir" in json.dumps(stats), "stats do not count evaluate_fhir: %r" % stats)


if __name__ == "__main__":
    run([test_equals_cli, test_strict_params_and_refusals])
