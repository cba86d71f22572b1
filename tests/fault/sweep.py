#!/usr/bin/env python3
"""Allocation-failure sweep (issue 12, "never die").

Runs a pathwise command under the failmalloc.so LD_PRELOAD shim once per N,
the Nth host allocation failing (transient; a few persistent runs too), and
checks each run:
  - it ended by exit, not by a signal or abort (exit code < 128, not 134);
  - when it failed: a message on stderr and a non-zero exit code;
  - when it succeeded: stdout is byte for byte the normal output.
N covers the first allocations one by one, then a stride, then the last
allocations one by one (where the output is written). The one known
exception is reported, not hidden: lua-cjson 2.1.0's own buffers call
exit(-1) with "Out of memory" (exit 255, no abort), see --allow-cjson-exit.

usage: sweep.py --pathwise BIN --shim failmalloc.so --root SRC --mode eval|batch|check
                [--runs N] [--allow-cjson-exit]
"""
import argparse, json, os, subprocess, sys, tempfile

CJSON_DIE = b"Out of memory\n"
# Bugs the sweep found in code others own, reported (KNOWN in the output)
# until fixed: {message substring: what}. Empty: all found so far are fixed.
KNOWN = {}


def command(mode, pw, root, tmp):
    if mode == "eval":
        return [pw, "eval", "--format", "json", os.path.join(root, "examples/index_case.json")], None
    if mode == "check":
        return [pw, "check", os.path.join(root, "scripts/mrc_second_line.lua")], None
    if mode == "batch":
        cases = ["examples/index_case.json", "examples/cases/ras_wild_type.json",
                 "tests/bench/cases/minimal_facts.json"]
        lines = []
        for c in cases:
            with open(os.path.join(root, c), "rb") as f:
                lines.append(b" ".join(f.read().split()))
        lines.append(b'{"ecog": 9}')   # an invalid line: an error record, not a failure
        path = os.path.join(tmp, "cohort.jsonl")
        with open(path, "wb") as f:
            f.write(b"\n".join(lines) + b"\n")
        return [pw, "batch", "--jobs", "1", "--quiet", path], None
    raise SystemExit("unknown mode " + mode)


def same_or_memory(ref, out, bad, what):
    """batch: each line is the normal line, or that line's error record with
    status memory (its evaluation ran out of memory; the run goes on)."""
    r, o = ref.split(b"\n"), out.split(b"\n")
    if len(r) != len(o):
        return False
    for i, (x, y) in enumerate(zip(r, o)):
        if x == y:
            continue
        try:
            rec = json.loads(y)
        except ValueError:
            return False
        msg = rec.get("error", {}).get("message", "")
        known = [v for k, v in KNOWN.items() if k in msg]
        if known:
            print("KNOWN %s: %s" % (what, known[0]))
        elif rec.get("line") != i + 1 or rec.get("error", {}).get("status") != "memory":
            bad.append("%s: line %d: %s" % (what, i + 1, y[:200].decode(errors="replace")))
    return True


def run(cmd, shim, n, log, persist=False):
    env = dict(os.environ, LD_PRELOAD=shim, PW_FAIL_N=str(n), PW_FAIL_LOG=log)
    if persist:
        env["PW_FAIL_PERSIST"] = "1"
    if os.path.exists(log):
        os.unlink(log)
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    fired = os.path.exists(log) and b"fired" in open(log, "rb").read()
    return p.returncode, p.stdout, p.stderr, fired


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pathwise", required=True)
    ap.add_argument("--shim", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--mode", required=True)
    ap.add_argument("--runs", type=int, default=500)
    ap.add_argument("--allow-cjson-exit", action="store_true")
    a = ap.parse_args()
    for f in (a.pathwise, a.shim):
        if not os.path.exists(f):
            print("missing " + f)
            return 1
    with tempfile.TemporaryDirectory() as tmp:
        cmd, _ = command(a.mode, a.pathwise, a.root, tmp)
        log = os.path.join(tmp, "fail.log")
        ref = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if ref.returncode != 0:
            print("reference run failed:", ref.returncode, ref.stderr.decode(errors="replace"))
            return 1
        # count the allocations of a normal run (the shim never fires past the end)
        rc, out, err, fired = run(cmd, a.shim, 1 << 60, log)
        total = int([l.split()[1] for l in open(log).read().split("\n") if l.startswith("total")][0])
        if rc != 0 or out != ref.stdout or fired or total < 10:
            print("shim run differs from the normal run (rc %d, %d allocations)" % (rc, total))
            return 1
        head, tail = min(total, a.runs // 3), min(total, a.runs // 3)
        stride = max(1, (total - head - tail) // max(1, a.runs // 3))
        ns = sorted(set(list(range(1, head + 1)) + list(range(head, total - tail, stride)) +
                        list(range(max(1, total - tail), total + 1))))
        bad, cjson_exits, failed_runs, ok_runs = [], 0, 0, 0
        for i, n in enumerate(ns + [1, 2, total // 2, total - 1]):
            persist = i >= len(ns)
            rc, out, err, fired = run(cmd, a.shim, n, log, persist)
            what = "N=%d%s" % (n, " persistent" if persist else "")
            if rc < 0 or rc >= 128:
                if rc == 255 and err == CJSON_DIE and a.allow_cjson_exit:
                    cjson_exits += 1
                    continue
                bad.append("%s: died (exit %d) %s" % (what, rc, err[-300:].decode(errors="replace")))
            elif rc == 0:
                ok_runs += 1
                if out != ref.stdout and not (a.mode == "batch" and same_or_memory(ref.stdout, out, bad, what)):
                    bad.append("%s: exit 0 but the output differs (%d bytes, normal %d)" % (what, len(out), len(ref.stdout)))
            else:
                failed_runs += 1
                if not err.strip():
                    bad.append("%s: exit %d with nothing on stderr" % (what, rc))
        print("%s: %d allocations in a normal run; %d runs: %d succeeded with the normal output, "
              "%d failed with an error, %d lua-cjson exits" % (a.mode, total, len(ns) + 4, ok_runs, failed_runs, cjson_exits))
        for b in bad[:30]:
            print("FAIL", b)
        return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
