#!/usr/bin/env python3
"""The new user's trial of scripts/README.md (issue 11, "Done when"), run
from the markdown itself so the doc cannot drift: the blocks marked
`<!-- doc-trial: local.lua -->` and `<!-- doc-trial: local_spec.lua -->`
are written to a temporary directory outside the repository, and there

- each is under 40 lines;
- `pathwise check local.lua` passes (the documented command);
- the two policies take effect, checked here with `pathwise eval` on both
  protocols: for a left-sided RAS/BRAF wild-type MSS case the default
  offers cetuximab before panitumumab and the extension panitumumab first
  (before cetuximab, citing its reference 6); for a painful bone
  metastasis the default recommends denosumab (so the absence can fail)
  and the extension does not, zoledronic acid staying;
- the documented spec passes when run as documented (busted from that
  directory, the module on LUA_CPATH, nothing else), every `it` counted;
- the same spec pointed at the default protocol fails (it can fail).

usage: doc_trial.py --pathwise BUILD/pathwise --build BUILD --root SRC --lua LUA --busted BUSTED
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

MAX_LINES = 40


def fail(msg):
    print("FAIL " + msg)
    sys.exit(1)


def blocks(readme):
    text = open(readme, encoding="utf-8").read()
    out = {}
    for m in re.finditer(r"<!-- doc-trial: (\S+).*?-->\n```lua\n(.*?)```\n", text, re.S):
        if m.group(1) in out:
            fail("two doc-trial blocks named %s" % m.group(1))
        out[m.group(1)] = m.group(2)
    for name in ("local.lua", "local_spec.lua"):
        if name not in out:
            fail("scripts/README.md has no doc-trial block %s" % name)
    return out


def run(argv, cwd, env=None):
    return subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=240)


def evaluate(a, cwd, protocol, facts):
    p = subprocess.run([a.pathwise, "eval", "--protocol", protocol, "--format", "json", "-"], cwd=cwd,
                       input=json.dumps(facts).encode(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if p.returncode != 0:
        fail("eval --protocol %s: %s" % (protocol, p.stderr.decode()[-500:]))
    return json.loads(p.stdout)["recommendations"]


def case(site, metastases=None):
    f = {"ecog": 1, "metastatic": True, "primary": {"site": site, "resected": True},
         "prior_regimens": [{"name": "FOLFOX", "line": 1, "outcome": "progression"}],
         "neuropathy": {"grade": 0, "persistent": False},
         "molecular": {"kras": "wild_type", "nras": "wild_type", "braf_v600e": "wild_type", "msi": "mss"},
         "planned_surgery_in_days": None}
    if metastases:
        f["metastases"] = metastases
    return f


def position(recs, rid):
    for i, x in enumerate(recs):
        if x["id"] == rid:
            return i
    return None


def check_policies(a, d):
    left = case("colon_left")
    base, ours = evaluate(a, d, "mrc_second_line", left), evaluate(a, d, "local.lua", left)
    bc, bp = position(base, "FOLFIRI+cetuximab"), position(base, "FOLFIRI+panitumumab")
    if bc is None or bp is None or not bc < bp:
        fail("the default no longer offers cetuximab before panitumumab (left, RAS wild type): %s" %
             [x["id"] for x in base])
    oc, op = position(ours, "FOLFIRI+cetuximab"), position(ours, "FOLFIRI+panitumumab")
    egfr = [x["id"] for x in ours if x["id"] in ("FOLFIRI+cetuximab", "FOLFIRI+panitumumab")]
    if op is None or (oc is not None and not op < oc) or egfr[0] != "FOLFIRI+panitumumab":
        fail("the extension does not put panitumumab first among anti-EGFR agents: %s" % [x["id"] for x in ours])
    if 6 not in ours[op]["citations"]:
        fail("the extension's panitumumab does not cite its policy [6]: %r" % ours[op]["citations"])
    bone = case("rectum", [{"site": "bone", "symptoms": ["pain"]}])
    base, ours = evaluate(a, d, "mrc_second_line", bone), evaluate(a, d, "local.lua", bone)
    if position(base, "denosumab") is None:
        fail("the default does not recommend denosumab for a painful bone metastasis: the absence check "
             "could not fail: %s" % [x["id"] for x in base])
    if position(ours, "denosumab") is not None:
        fail("the extension still recommends denosumab: %s" % [x["id"] for x in ours])
    if position(ours, "zoledronic_acid") is None:
        fail("the extension lost zoledronic acid: %s" % [x["id"] for x in ours])


def busted(a, d, spec):
    env = dict(os.environ)
    env["LUA_CPATH"] = os.path.join(os.path.abspath(a.build), "lua", "?.so") + ";;"
    for k in ("PW_BUILD_DIR", "PW_SOURCE_DIR", "LUA_PATH"):   # the docs need none of them
        env.pop(k, None)
    env["PATHWISE_PATH"] = ""
    return run([a.lua, a.busted, "-o", "utfTerminal", spec], d, env)


def main():
    ap = argparse.ArgumentParser()
    for k in ("pathwise", "build", "root", "lua", "busted"):
        ap.add_argument("--" + k, required=True)
    a = ap.parse_args()
    a.pathwise, a.build = os.path.abspath(a.pathwise), os.path.abspath(a.build)
    files = blocks(os.path.join(a.root, "scripts", "README.md"))
    d = tempfile.mkdtemp(prefix="pw-doc-trial-")
    try:
        for name, text in files.items():
            n = text.count("\n")
            print("%s: %d lines" % (name, n))
            if n >= MAX_LINES:
                fail("%s is %d lines, the docs promise under %d" % (name, n, MAX_LINES))
            with open(os.path.join(d, name), "w") as f:
                f.write(text)
        p = run([a.pathwise, "check", "local.lua"], d)
        if p.returncode != 0:
            fail("pathwise check local.lua: %s%s" % (p.stdout.decode()[-800:], p.stderr.decode()[-400:]))
        print("ok   pathwise check local.lua")
        check_policies(a, d)
        print("ok   panitumumab first (left, RAS/BRAF wild type, MSS); no denosumab (bone); both seen in the default")
        p = busted(a, d, "local_spec.lua")
        its = len(re.findall(r"\bit\(", files["local_spec.lua"]))
        want = "%d successes / 0 failures / 0 errors" % its
        out = p.stdout.decode() + p.stderr.decode()
        if p.returncode != 0 or want not in out:
            fail("busted local_spec.lua (want %r): %s" % (want, out[-1500:]))
        print("ok   busted local_spec.lua: %s" % want)
        with open(os.path.join(d, "default_spec.lua"), "w") as f:
            spec = files["local_spec.lua"]
            if 'protocol = "local.lua"' not in spec:
                fail('the spec does not load protocol = "local.lua"')
            f.write(spec.replace('protocol = "local.lua"', 'protocol = "mrc_second_line"'))
        p = busted(a, d, "default_spec.lua")
        if p.returncode == 0:
            fail("the documented spec passes against the default protocol: it cannot fail")
        print("ok   the same spec fails against the default protocol")
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
