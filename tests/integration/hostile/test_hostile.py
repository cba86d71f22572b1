#!/usr/bin/env python3
"""Hostile protocols: one long C call per trick (issue 12, "never hang").

Each *.lua here makes one library call that runs long without allocating or
running the count hook. In every mode (eval, batch, diff, check --coverage)
and at load time (check, eval, serve start) it must end with a budget or
deadline error that names the protocol file and line. Nothing here is
timed: a hang is caught by ctest's TIMEOUT.
"""
import argparse, glob, json, os, re, shutil, subprocess, sys, tempfile

FAILS = []


def expect(cond, what):
    if not cond:
        FAILS.append(what)
        print("FAIL", what)


def kind_ok(text, name):
    """a budget or deadline error naming NAME.lua and a line"""
    return re.search(re.escape(name) + r"\.lua:\d+: ", text) is not None and (
        "exceeds the instruction budget" in text or "instruction budget of" in text or "deadline of" in text)


def run(args, **kw):
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=kw.get("timeout", 100))


def poison_later_evaluations(pw, proto, tmp):
    """Ordinary cases between poisoning ones, on one engine (--jobs 1): each
    ordinary case gets the ordinary answer."""
    ids = ["a", "env_nil", "b", "env_nil_error", "c", "helper", "d", "env_swap", "e", "deep", "f"]
    cohort = os.path.join(tmp, "poison.jsonl")
    with open(cohort, "w") as f:
        for i in ids:
            f.write(json.dumps({"patient_id": i, "ecog": 1}) + "\n")
    expect(os.path.exists(proto), "missing " + proto)
    r = run([pw, "batch", "--jobs", "1", "--quiet", "--protocol", proto, cohort])
    recs = [json.loads(l) for l in r.stdout.decode().splitlines()]
    expect(len(recs) == len(ids), "poison batch: %d records" % len(recs))
    for pid, rec in zip(ids, recs):
        if len(pid) == 1:
            expect(rec.get("pathway") == "ok_1", "poison: case %s after poisoning: %s" % (pid, json.dumps(rec)[:300]))
        elif pid == "deep":
            expect("stack overflow" in rec.get("error", {}).get("message", ""), "poison: deep: %s" % json.dumps(rec)[:300])


BOUNDS = [
    # (name, applies body, evaluate body, error the eval must name)
    ("warn_cap", "return true", 'for i = 1, 300 do out.warn{text = "w" .. i, citations = {1}} end',
     "out.warn: more than 256 entries"),
    ("recommend_cap", "return true",
     'for i = 1, 300 do out.recommend{id = "FOLFIRI", text = "t", citations = {1}} end',
     "out.recommend: more than 256 recommendations"),
    ("note_cap", "return true", 'for i = 1, 300 do out.note("n") end', "out.note: more than 256 notes"),
    ("text_total", "return true",
     'for i = 1, 100 do out.warn{text = string.rep("x", 4000), citations = {1}} end', "bytes of text in all"),
    ("note_type", "return true", "out.note({})", "out.note: the text must be a string, got table"),
    ("note_utf8", "return true", 'out.note("\\255")', "out.note: the text is not valid UTF-8"),
    ("applies_utf8", 'return true, "\\255"', "", "applies: the reason (second value) is not valid UTF-8"),
    ("applies_type", "return 5", "", "applies must return true, false or nil"),
    ("evaluate_returns", "return true", 'do return "done" end', "evaluate returned a string"),
    ("pathway_options", "return true", 'out.pathway("p", "options")', "out.pathway: the options (argument 2) must be a table"),
]


def output_bounds(pw, index, tmp):
    """Protocol output is bounded and checked: each wrong output is an error
    naming the call and field, with and without --trace."""
    for name, applies, evaluate, want in BOUNDS:
        p = os.path.join(tmp, "bound_%s.lua" % name)
        with open(p, "w") as f:
            f.write('return { id = "bound_%s", version = "0.1.0", title = "bounds",\n'
                    '  references = { [1] = "r" },\n'
                    '  applies = function(facts, out) %s end,\n'
                    '  evaluate = function(facts, out) %s end }\n' % (name, applies, evaluate))
        for trace in ([], ["--trace"]):
            r = run([pw, "eval", "--format", "json", "--protocol", p] + trace + [index])
            err = r.stderr.decode(errors="replace")
            expect(r.returncode == 70 and want in err, "bounds %s %s: exit %d %s" % (name, trace, r.returncode, err[:300]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pathwise", required=True)
    ap.add_argument("--root", required=True)
    a = ap.parse_args()
    pw, here = a.pathwise, os.path.dirname(os.path.abspath(__file__))
    protos = sorted(glob.glob(os.path.join(here, "*.lua")))
    expect(len(protos) >= 4, "the hostile protocols are missing")
    tmp = tempfile.mkdtemp()
    try:
        cases = ["examples/index_case.json", "examples/cases/ras_wild_type.json", "tests/bench/cases/minimal_facts.json"]
        cohort = os.path.join(tmp, "cohort.jsonl")
        with open(cohort, "wb") as f:
            for c in cases:
                f.write(b" ".join(open(os.path.join(a.root, c), "rb").read().split()) + b"\n")
        index = os.path.join(a.root, cases[0])
        normal = os.path.join(a.root, "scripts/mrc_second_line.lua")
        for p in protos:
            name = os.path.basename(p)[:-4]
            r = run([pw, "eval", "--format", "json", "--protocol", p, index])
            expect(r.returncode == 70 and kind_ok(r.stderr.decode(), name), "%s eval: %d %s" % (name, r.returncode, r.stderr[:300]))
            r = run([pw, "batch", "--jobs", "1", "--quiet", "--protocol", p, cohort])
            recs = [json.loads(l) for l in r.stdout.decode().splitlines()]
            expect(r.returncode == 0 and len(recs) == 3, "%s batch: %d records, exit %d" % (name, len(recs), r.returncode))
            for rec in recs:
                e = rec.get("error", {})
                expect(e.get("status") == "budget" and kind_ok(e.get("message", ""), name), "%s batch: %s" % (name, rec))
            r = run([pw, "diff", "--a", p, "--b", normal, "--format", "text", cohort])
            errs = [l for l in r.stdout.decode().splitlines() if "error in A:" in l]
            expect(r.returncode == 0 and len(errs) == 3 and all(kind_ok(l, name) for l in errs),
                   "%s diff: exit %d %s" % (name, r.returncode, r.stdout[:400]))
            r = run([pw, "check", "--coverage", p, cohort])
            expect(r.returncode in (0, 1) and re.search(rb"0 evaluated, 3 failed", r.stdout),
                   "%s check --coverage: exit %d %s" % (name, r.returncode, r.stdout[:300]))
            # the same call while the chunk loads
            lp = os.path.join(tmp, name + ".lua")
            src = open(p).read()
            expect("local at_load = false" in src, name + ": no at_load switch")
            open(lp, "w").write(src.replace("local at_load = false", "local at_load = true"))
            r = run([pw, "check", lp])
            expect(r.returncode == 78 and kind_ok(r.stderr.decode(), name), "%s check at load: %d %s" % (name, r.returncode, r.stderr[:300]))
            r = run([pw, "eval", "--protocol", lp, index])
            expect(r.returncode == 78 and kind_ok(r.stderr.decode(), name), "%s eval at load: %d %s" % (name, r.returncode, r.stderr[:300]))
            sock = os.path.join(tmp, "s.sock")
            r = run([pw, "serve", "--socket", sock, "--no-watch", "--workers", "1", "--protocol", lp])
            expect(r.returncode != 0 and kind_ok(r.stderr.decode(), name), "%s serve at start: %d %s" % (name, r.returncode, r.stderr[:300]))
        poison_later_evaluations(pw, os.path.join(here, "poison", "poison.lua"), tmp)
        output_bounds(pw, index, tmp)
    finally:
        shutil.rmtree(tmp)
    print("%d hostile protocols, %d failures" % (len(protos), len(FAILS)))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
