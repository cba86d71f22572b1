#!/usr/bin/env python3
"""fault.cjson_oom: every allocation lua-cjson makes for encode and decode
fails in turn (failmalloc.so, transient, then persistent); each run must end
by exit 0 with the Lua error "not enough memory", never lua-cjson's
exit(-1) "Out of memory" (issue 12; the vendored lua-cjson's patch,
third_party/README.md). A run with no failure must print ok.

usage: cjson_oom.py --prog cjson_oom --shim failmalloc.so
"""
import argparse, os, subprocess, sys, tempfile


def run(prog, shim, marker, log, n=None, persist=False):
    env = dict(os.environ, LD_PRELOAD=shim, PW_FAIL_AFTER=os.path.basename(marker), PW_FAIL_LOG=log)
    env["PW_FAIL_N"] = str(n if n else 1 << 60)
    if persist:
        env["PW_FAIL_PERSIST"] = "1"
    p = subprocess.run([prog, marker], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prog", required=True)
    ap.add_argument("--shim", required=True)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        marker = os.path.join(tmp, "cjson_oom_marker")
        open(marker, "w").close()
        log = os.path.join(tmp, "log")
        rc, out, err = run(a.prog, a.shim, marker, log)
        totals = [int(l.split()[1]) for l in open(log).read().split("\n") if l.startswith("total")]
        if rc != 0 or not out.startswith("ok ") or not totals or totals[-1] < 3:
            print("normal run: exit %d, %r %r, allocations %s" % (rc, out, err, totals))
            return 1
        total, bad = totals[-1], []
        for n, persist in [(n, False) for n in range(1, total + 1)] + [(1, True), (total, True)]:
            rc, out, err = run(a.prog, a.shim, marker, log, n, persist)
            if rc != 0 or not out.startswith("error: ") or "not enough memory" not in out:
                bad.append("N=%d%s: exit %d, stdout %r, stderr %r" % (
                    n, " persistent" if persist else "", rc, out.strip(), err.strip()[-200:]))
        print("cjson_oom: %d allocations by lua-cjson; %d runs, %d bad" % (total, total + 2, len(bad)))
        for b in bad[:20]:
            print("FAIL", b)
        return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
