#!/usr/bin/env python3
"""`pathwise check` refuses example cases that check nothing (issue 9): an
unknown key in `expect` or in the example, an id pathwise does not know, a
fact path that does not exist, a value of the wrong type; `strength`,
`preferred` and `order` are asserted. A server reload runs the same check,
so a protocol with such an example is refused and the old one keeps serving.
"""
import os
import re
import subprocess

from srvlib import Server, check, read, run

# A protocol recommending msi_testing (preferred, in group g) then
# ras_testing (strength consider): actions, allowed whatever the facts.
PROTOCOL = """return {
  id = "strict_examples", version = "%(version)s", title = "strict examples",
  references = { [1] = "ref" },
  applies = function(f) return true end,
  evaluate = function(f, out)
    out.pathway("p")
    out.recommend{ id = "msi_testing", text = "x", citations = {1}, group = "g", preferred = true }
    out.recommend{ id = "ras_testing", text = "y", citations = {1}, strength = "consider" }
  end,
  examples = {
    { name = "good", facts = {}, expect = { pathway = "p", recommend = { "msi_testing" },
      not_recommend = { "FOLFIRI" }, preferred = { "msi_testing" }, order = { "msi_testing", "ras_testing" },
      strength = { msi_testing = "recommended", ras_testing = "consider" } } },
    %(extra)s
  },
}
"""

# (example, what the report must say). Each passed `pathwise check` before.
BAD = [
    ('{ name = "bad", facts = {}, expect = { recomend = { "NOT_AN_ID" } } }',
     "expect has unknown key 'recomend'"),
    ('{ name = "bad", facts = {}, expect = { not_recommend = { "FOLFIRl" } } }',
     "expect.not_recommend: unknown id 'FOLFIRl'"),
    ('{ name = "bad", facts = {}, expect = { blocked = { "bevacizumab+NOPE" } } }',
     "expect.blocked:"),
    ('{ name = "bad", facts = {}, expect = { missing = { "molecular.kraz" } } }',
     "expect.missing: 'molecular.kraz' is not a fact path"),
    ('{ name = "bad", facts = {}, expct = { pathway = "p" }, expect = { pathway = "p" } }',
     "the example has unknown key 'expct'"),
    ('{ name = "bad", facts = {}, expect = { recommend = "msi_testing" } }',
     "expect.recommend must be a list of ids"),
    ('{ name = "bad", facts = {}, expect = { order = { "ras_testing", "msi_testing" } } }',
     "expect.order: 'msi_testing' comes before"),
    ('{ name = "bad", facts = {}, expect = { strength = { ras_testing = "recommended" } } }',
     "expect.strength: 'ras_testing' has strength consider"),
    ('{ name = "bad", facts = {}, expect = { preferred = { "ras_testing" } } }',
     "expect.preferred 'ras_testing' does not hold"),
]


def write(tmp, name, extra="", version="1.0.0"):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(PROTOCOL % {"extra": extra, "version": version})
    return path


def check_cli(args, path):
    p = subprocess.run([args.pathwise, "check", path], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


def test_check_refuses_examples_that_check_nothing(args, tmp):
    code, out = check_cli(args, write(tmp, "good.lua"))
    check(code == 0 and "ok   good" in out, "the good example fails: %d %s" % (code, out))
    for i, (example, says) in enumerate(BAD):
        code, out = check_cli(args, write(tmp, "bad%d.lua" % i, example + ","))
        check(code == 1, "exit %d for %s (wanted 1): %s" % (code, example, out))
        check(says in out, "%r not in the report for %s: %s" % (says, example, out))
        check("ok   good" in out and "1 failed" in out, "report: %s" % out)


def test_reload_runs_the_same_check(args, tmp):
    proto = write(tmp, "p.lua")
    srv = Server(args, tmp, ["--protocol", proto]).start()
    with open(proto, "w") as f:
        f.write(PROTOCOL % {"extra": BAD[0][0] + ",", "version": "9.9.9"})
    r = srv.call("reload")
    check(r.get("error", {}).get("code") == -32012 and "recomend" in r["error"]["message"],
          "a protocol whose example has a misspelt key was reloaded: %r" % r)
    versions = [p["version"] for p in srv.call("protocols")["result"]]
    check(versions == ["1.0.0"], "old protocol replaced: %r" % versions)
    check(srv.stop() == 0, "exit status")


# Passes its examples (facts = {}) but raises for ECOG 2, as real patients have.
RAISES = PROTOCOL.replace('out.pathway("p")', 'if f.ecog == 2 then error("boom for ECOG 2") end\n    out.pathway("p")')
PLUGIN = """return { id = "raising_plugin", version = "0.1.0",
  check = function(facts, items, out)
    if facts.ecog == 2 then error("plugin boom for ECOG 2") end
  end }
"""


def cohort_failures(out):
    fails = [l for l in out.splitlines() if l.startswith("FAIL built-in cohort case")]
    m = re.search(r"built-in cohort: 200 cases \(seed \d+\), (\d+) failed", out)
    check(m, "no cohort summary: %s" % out)
    return fails, int(m.group(1))


def test_check_runs_a_built_in_cohort(args, tmp):
    path = os.path.join(tmp, "raises.lua")
    with open(path, "w") as f:
        f.write(RAISES % {"extra": "", "version": "1.0.0"})
    code, out = check_cli(args, path)
    fails, n = cohort_failures(out)
    check(code == 1 and n > 0, "a protocol raising on ECOG 2 passed check: %d %s" % (code, out))
    check(len(fails) == n, "every failing case listed, none more: %d of %d" % (len(fails), n))
    check(all("(protocol, in %s)" % path in l and "boom for ECOG 2" in l for l in fails), "file at fault: %s" % out)
    check(out.count('"ecog":2') >= n, "the failing cases' facts are shown: %s" % out)
    # the good protocol passes the cohort; a raising plugin is named as the file at fault
    good = write(tmp, "good.lua")
    code, out = check_cli(args, good)
    check(code == 0 and cohort_failures(out) == ([], 0), "good protocol: %d %s" % (code, out))
    plug = os.path.join(tmp, "raising_plugin.lua")
    with open(plug, "w") as f:
        f.write(PLUGIN)
    p = subprocess.run([args.pathwise, "check", "--plugin", plug, good], capture_output=True, text=True, timeout=60)
    fails, n = cohort_failures(p.stdout + p.stderr)
    check(p.returncode == 1 and n > 0 and all("(plugin, in %s)" % plug in l for l in fails),
          "raising plugin: %d %s" % (p.returncode, p.stdout + p.stderr))


def test_check_lints_enum_literals(args, tmp):
    path = os.path.join(tmp, "lint.lua")
    body = PROTOCOL.replace("evaluate = function(f, out)", "evaluate = function(facts, out)\n"
                            "    if facts.primary.site == \"colon_lft\" then return end\n"
                            "    if \"mutnt\" ~= facts.molecular.kras then end\n"
                            "    if facts.primary.site == \"colon_left\" then end")
    with open(path, "w") as f:
        f.write(body % {"extra": "", "version": "1.0.0"})
    code, out = check_cli(args, path)
    check(code == 1, "a comparison with a value outside the enum passed check: %s" % out)
    check(re.search(r"FAIL lint .*lint\.lua:6: facts\.primary\.site compared with \"colon_lft\"", out), out)
    check(re.search(r"FAIL lint .*lint\.lua:7: facts\.molecular\.kras compared with \"mutnt\"", out), out)
    check(out.count("FAIL lint") == 2, "colon_left is a value of primary.site: %s" % out)


def test_reload_runs_the_cohort(args, tmp):
    proto = write(tmp, "q.lua")
    srv = Server(args, tmp, ["--protocol", proto]).start()
    with open(proto, "w") as f:
        f.write(RAISES % {"extra": "", "version": "9.9.9"})
    r = srv.call("reload")
    msg = r.get("error", {}).get("message", "")
    check(r.get("error", {}).get("code") == -32012 and "built-in cohort" in msg and "boom for ECOG 2" in msg,
          "a protocol raising on the cohort was reloaded: %r" % r)
    check("ok   good" not in msg, "the refusal lists only the failing cases: %s" % msg)
    versions = [p["version"] for p in srv.call("protocols")["result"]]
    check(versions == ["1.0.0"], "old protocol replaced: %r" % versions)
    check(srv.stop() == 0, "exit status")


def test_results_carry_plugin_provenance(args, tmp):
    import json
    good = write(tmp, "prov.lua")
    shas = []
    for days in ("56", "57"):   # two plugins that differ in one number
        plug = os.path.join(tmp, "bev%s.lua" % days)
        with open(plug, "w") as f:
            f.write('return { id = "bev_local", version = "1.0", check = function(facts, items, out)\n'
                    '  if facts.planned_surgery_in_days and facts.planned_surgery_in_days < %s then end end }\n' % days)
        p = subprocess.run([args.pathwise, "eval", "--protocol", good, "--plugin", plug, "-"], input="{}",
                           capture_output=True, text=True, timeout=60)
        check(p.returncode == 0, "eval with plugin: %s" % p.stderr)
        plugins = json.loads(p.stdout)["protocol"].get("plugins")
        check(plugins and plugins[0]["id"] == "bev_local" and plugins[0]["version"] == "1.0" and
              plugins[0]["file"] == os.path.basename(plug), "plugin provenance in the result: %r" % plugins)
        shas.append(plugins[0]["sha256"])
    check(shas[0] != shas[1] and all(len(x) == 64 for x in shas), "plugins told apart: %r" % shas)
    p = subprocess.run([args.pathwise, "check", "--plugin", plug, good], capture_output=True, text=True, timeout=60)
    check(p.returncode == 0 and shas[1] in p.stdout and '"id":"bev_local"' in p.stdout,
          "check shows the plugin's provenance: %s" % p.stdout)


if __name__ == "__main__":
    run([test_check_refuses_examples_that_check_nothing, test_reload_runs_the_same_check,
         test_check_runs_a_built_in_cohort, test_check_lints_enum_literals, test_reload_runs_the_cohort,
         test_results_carry_plugin_provenance])
