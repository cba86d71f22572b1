#!/usr/bin/env python3
"""pathwise serve: evaluate with "what_if": true (issue 17) answers what
`pathwise eval --what-if` prints, in JSON and in text; the decision log
records the patient's own result; a wrong type is refused."""
import json
import os
import re
import subprocess

from srvlib import Server, check, eval_request, examples, log_records, read, result_text, run

TIME_JSON = re.compile(rb'"elapsed_us":\d+')
TIME_TEXT = re.compile(r"evaluations, [0-9.]+ ms\)")


def cli(args, path, *extra):
    p = subprocess.run([args.pathwise, "eval", *extra, path], capture_output=True)
    check(p.returncode == 0, "pathwise eval %s: exit %d %s" % (path, p.returncode, p.stderr))
    return p.stdout


def test_what_if_equals_eval(args, tmp):
    srv = Server(args, tmp).start()
    c = srv.conn()
    cases = examples(args.root)
    check(len(cases) >= 9, "expected the examples, found %d" % len(cases))
    for i, path in enumerate(cases):
        c.send(eval_request(read(path), i + 1, {"what_if": True}))
    got = {}
    for _ in cases:
        line = c.line()
        got[json.loads(line)["id"]] = line
    for i, path in enumerate(cases):
        want = cli(args, path, "--format", "json", "--what-if").rstrip(b"\n")
        have = result_text(got[i + 1])
        check(b'"what_if":{' in have, "%s: no what_if in the answer" % os.path.basename(path))
        check(TIME_JSON.sub(b"", have) == TIME_JSON.sub(b"", want),
              "%s: server what_if differs from pathwise eval --what-if" % os.path.basename(path))
    index = json.loads(read(cases[0]))
    # the text report, with its section
    r = c.call("evaluate", {"facts": index, "format": "text", "what_if": True})
    want = cli(args, cases[0], "--format", "text", "--what-if").decode()
    check(isinstance(r.get("result"), str) and "WHAT WOULD CHANGE THE PLAN" in r["result"], "text: %r" % r)
    check(TIME_TEXT.sub("", r["result"]) == TIME_TEXT.sub("", want), "text differs from eval --what-if")
    w = json.loads(result_text(got[1]))["what_if"]
    check(w["facts"]["molecular.msi"]["values"]["msi_high"]["pathway"] == "immunotherapy", "msi what-if")
    # false and absent: no what_if; a wrong type is refused
    r = c.call("evaluate", {"facts": index, "what_if": False})
    check("result" in r and "what_if" not in r["result"], "what_if false: %r" % str(r)[:300])
    r = c.call("evaluate", {"facts": index, "what_if": "yes"})
    check(r.get("error", {}).get("code") == -32602 and "what_if" in r["error"]["message"], "what_if type: %r" % r)
    r = c.call("check_orders", {"facts": index, "orders": ["FOLFIRI"], "what_if": True})
    check(r.get("error", {}).get("code") == -32602, "check_orders takes no what_if: %r" % r)
    c.close()
    check(srv.stop() == 0, "server did not exit 0")
    # the decision log holds the patient's own result, not a variant's
    recs = log_records(srv.log)
    check(len(recs) == len(cases) + 2, "log has %d records" % len(recs))
    own = json.loads(cli(args, cases[0], "--format", "json"))
    r = [x for x in recs if x["request_id"] == 1][0]   # the index case
    check(r["pathway"] == own["pathway"] == "second_line_systemic", "logged pathway %r" % r["pathway"])
    check(r["recommendations"] == [x["id"] for x in own["recommendations"]],
          "logged recommendations %r" % r["recommendations"])


if __name__ == "__main__":
    run([test_what_if_equals_eval])
