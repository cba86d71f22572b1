#!/usr/bin/env python3
"""CLI tests for `pathwise`: exit codes, error messages, golden outputs.

Golden files live in tests/integration/cli/golden/. After an intended change
to the protocol or the output, regenerate them and review the diff:
    python3 tests/integration/cli/test_cli.py --pathwise build/pathwise --root . --update
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import unittest

ARGS = None


def run(*argv, stdin=None):
    p = subprocess.run([ARGS.pathwise, *argv], input=stdin, capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def root(*parts):
    return os.path.join(ARGS.root, *parts)


def examples():
    cases = [root("examples", "index_case.json")] + sorted(glob.glob(root("examples", "cases", "*.json")))
    return [(os.path.splitext(os.path.basename(c))[0], c) for c in cases]


def write_temp(text, suffix):
    f = tempfile.NamedTemporaryFile("w", suffix=suffix, delete=False)
    f.write(text)
    f.close()
    return f.name


class ExitCodes(unittest.TestCase):
    def test_help_and_version(self):
        code, out, _ = run("--help")
        self.assertEqual(code, 0)
        self.assertIn("usage: pathwise", out)
        code, out, _ = run("--version")
        self.assertEqual(code, 0)
        # GNU style line 1 (help2man reads it), then the build and its libraries
        self.assertRegex(out, r"^pathwise \d+\.\d+\.\d+\ncommit ([0-9a-f]{12}|unknown)\n"
                              r"result schema 1\nLua 5\.4\.\d+, lua-cjson 2\.\d+\.\d+, libuv 1\.\d+\.\d+\n")
        has_git = subprocess.run(["git", "-C", ARGS.root, "rev-parse", "HEAD"],
                                 capture_output=True).returncode == 0
        if has_git:
            self.assertNotIn("commit unknown", out, "built from a git checkout: the commit is known")
        code, out2, _ = run("-V")
        self.assertEqual((code, out2), (0, out))
        for cmd in ("eval", "check", "rules"):
            code, out, _ = run(cmd, "--help")
            self.assertEqual(code, 0, cmd)
            self.assertIn("usage: pathwise " + cmd, out)

    def test_usage_errors_are_64(self):
        self.assertEqual(run()[0], 64)
        code, _, err = run("frobnicate")
        self.assertEqual(code, 64)
        self.assertIn("unknown command 'frobnicate'", err)
        code, _, err = run("eval", "--format", "yaml", root("examples", "index_case.json"))
        self.assertEqual(code, 64)
        self.assertIn("--format takes text or json", err)
        self.assertEqual(run("eval")[0], 64)
        self.assertEqual(run("eval", "--bogus", "x")[0], 64)

    def test_missing_input_is_66(self):
        code, _, err = run("eval", "/nonexistent/facts.json")
        self.assertEqual(code, 66)
        self.assertIn("/nonexistent/facts.json", err)
        code, _, err = run("eval", "--protocol", "/nonexistent/p.lua", root("examples", "index_case.json"))
        self.assertEqual(code, 66)

    def test_bad_data_is_65_and_names_the_field(self):
        code, out, err = run("eval", "--format", "json", "-", stdin='{"ecog": 7}')
        self.assertEqual(code, 65)
        self.assertEqual(out, "")
        self.assertIn("ecog: expected integer 0..4, got 7", err)
        code, _, err = run("eval", "-", stdin='{"molecular": {"kras": "mutant", "kras": "wild_type"}}')
        self.assertEqual(code, 65)
        self.assertIn("duplicate key 'kras'", err)
        code, _, err = run("eval", "-", stdin='{"ecog": NaN}')
        self.assertEqual(code, 65)
        code, _, err = run("eval", "-", stdin='{"proposed_orders": ["aspirin"]}')
        self.assertEqual(code, 65)
        self.assertIn("proposed_orders[0]: unknown id 'aspirin'", err)

    def test_protocol_errors(self):
        broken = write_temp("return {\n  id = 'x',\n  version = \n", ".lua")
        code, _, err = run("eval", "--protocol", broken, root("examples", "index_case.json"))
        self.assertEqual(code, 78)
        self.assertIn(os.path.basename(broken) + ":", err)
        raising = write_temp(
            "return { id = 'x', version = '1', title = 't', references = { [1] = 'r' },\n"
            "  applies = function() return true end,\n"
            "  evaluate = function(facts, out)\n    error('boom at line 4')\n  end }\n", ".lua")
        code, _, err = run("eval", "--protocol", raising, root("examples", "index_case.json"))
        self.assertEqual(code, 70)
        self.assertRegex(err, r"\.lua:4: boom")
        looping = write_temp(
            "return { id = 'x', version = '1', title = 't', references = { [1] = 'r' },\n"
            "  applies = function() return true end,\n"
            "  evaluate = function() while true do end end }\n", ".lua")
        code, _, err = run("eval", "--instructions", "100000", "--protocol", looping, root("examples", "index_case.json"))
        self.assertEqual(code, 70)
        self.assertIn("instruction budget", err)
        for f in (broken, raising, looping):
            os.unlink(f)


class Output(unittest.TestCase):
    def test_json_when_piped_and_every_list_an_array(self):
        code, out, _ = run("eval", root("examples", "index_case.json"))
        self.assertEqual(code, 0)
        r = json.loads(out)
        for key in ("recommendations", "blocked", "missing", "warnings", "followup", "outcomes",
                    "alternatives", "orders"):
            self.assertIsInstance(r[key], list, key)
        self.assertNotIn("trace", r)
        self.assertEqual(r["engine"]["name"], "pathwise")
        self.assertEqual(len(r["protocol"]["sha256"]), 64)

    def test_stdin(self):
        with open(root("examples", "index_case.json")) as f:
            code, out, _ = run("eval", "--format", "json", "-", stdin=f.read())
        self.assertEqual(code, 0)
        self.assertEqual(json.loads(out)["patient_id"], "index-001")

    def test_index_case_offers_radiotherapy_to_the_painful_site_only(self):
        code, out, _ = run("eval", "--format", "json", root("examples", "index_case.json"))
        r = json.loads(out)
        rt = [x for x in r["recommendations"] if x["id"].startswith("palliative_rt")]
        self.assertEqual([(x["id"], x["target"]) for x in rt], [("palliative_rt_bone", 1)])
        self.assertEqual(r["pathway"], "second_line_systemic")
        ids = [x["id"] for x in r["recommendations"]]
        self.assertIn("FOLFIRI+bevacizumab", ids)
        self.assertEqual(sorted(m["fact"] for m in r["missing"]),
                         ["molecular.braf_v600e", "molecular.kras", "molecular.msi", "molecular.nras"])
        for x in r["recommendations"]:
            self.assertTrue(x["citations"], x["id"])

    def test_trace_explains(self):
        code, out, _ = run("eval", "--format", "json", "--trace",
                           root("examples", "cases", "kras_mutant_proposed_cetuximab.json"))
        self.assertEqual(code, 0)
        r = json.loads(out)
        self.assertTrue(any(t.get("rule") == "egfr_requires_ras_wt" for t in r["trace"]))
        self.assertTrue(all("evidence" in x for x in r["recommendations"]))
        # a block carries the guideline sentence its rule enforces, verbatim
        blocked = [b for b in r["blocked"] if b["rule"] == "egfr_requires_ras_wt"]
        self.assertTrue(blocked)
        self.assertIn("Do not use EGFR inhibitors without confirming RAS wild-type status", blocked[0]["evidence"])
        code, text, _ = run("eval", "--format", "text", "--trace",
                            root("examples", "cases", "kras_mutant_proposed_cetuximab.json"))
        self.assertIn("by egfr_requires_ras_wt [2, 4]", text)
        self.assertIn("Guideline: \"If RAS wild-type (KRAS and NRAS)", text)
        code, text, _ = run("eval", "--format", "text", "--trace", root("examples", "index_case.json"))
        self.assertIn("TRACE", text)
        self.assertIn("Guideline: \"", text)

    def test_rules(self):
        code, out, _ = run("rules", "--format", "json")
        self.assertEqual(code, 0)
        ids = [r["id"] for r in json.loads(out)]
        for rule in ("ecog_gate", "egfr_requires_ras_wt", "single_biologic", "oxaliplatin_neuropathy",
                     "bev_surgery_window", "no_long_course_crt_metastatic", "primary_resection_needs_symptoms",
                     "rt_symptomatic_sites_only", "groin_rt_prior_radiation", "checkpoint_requires_msi_high",
                     "encorafenib_requires_braf_v600e"):
            self.assertIn(rule, ids)
        # a guideline rule quotes and cites it; a rule beyond it names its source instead (issue 10)
        rules = json.loads(out)
        for r in rules:
            if r["beyond_guideline"] is None:
                self.assertTrue(r["guideline"] and r["citations"], r["id"])
            else:
                self.assertTrue(r["guideline"] is None and r["citations"] == [], r["id"])
        beyond = {r["id"] for r in rules if r["beyond_guideline"]}
        self.assertEqual(beyond, {"encorafenib_needs_anti_egfr", "single_pd1_inhibitor", "single_bone_agent",
                                  "oxaliplatin_neuropathy_grade_3_4"})
        self.assertIn("BEACON", [r for r in rules if r["id"] == "encorafenib_needs_anti_egfr"][0]["beyond_guideline"])
        code, out, _ = run("rules")
        self.assertIn("ecog_gate", out)
        self.assertIn("[beyond the guideline]", out)
        self.assertIn("source (beyond the guideline): BEACON CRC", out)

    def test_check(self):
        code, out, _ = run("check", root("scripts", "mrc_second_line.lua"))
        self.assertEqual(code, 0, out)
        self.assertRegex(out, r"\d+ examples, \d+ passed, 0 failed")
        code, out, _ = run("check", root("examples", "local-protocol", "mrc_second_line_local.lua"))
        self.assertEqual(code, 0, out)
        failing = write_temp(
            "return { id = 'x', version = '1', title = 't', references = { [1] = 'r' },\n"
            "  applies = function() return true end,\n"
            "  evaluate = function(facts, out) out.pathway('p') end,\n"
            "  examples = { { name = 'wrong', facts = { ecog = 1 }, expect = { pathway = 'q' } } } }\n", ".lua")
        code, out, err = run("check", failing)
        os.unlink(failing)
        self.assertEqual(code, 1)
        self.assertIn("FAIL wrong: expected pathway q, got p", out)

    def test_institution_variant_still_bound_by_the_kernel(self):
        local = root("examples", "local-protocol", "mrc_second_line_local.lua")
        code, out, _ = run("eval", "--format", "json", "--protocol", local, root("examples", "index_case.json"))
        self.assertEqual(code, 0)
        r = json.loads(out)
        self.assertEqual(r["protocol"]["id"], "mrc_second_line_local")
        bone = [x for x in r["recommendations"] if x["id"] == "palliative_rt_bone"]
        self.assertIn("8 Gy", bone[0]["text"])
        code, out, _ = run("eval", "--format", "json", "--protocol", local,
                           root("examples", "cases", "kras_mutant_proposed_cetuximab.json"))
        r = json.loads(out)
        self.assertIn(("cetuximab", "egfr_requires_ras_wt"), [(b["id"], b["rule"]) for b in r["blocked"]])


class Golden(unittest.TestCase):
    def test_examples_match_golden_outputs(self):
        for name, path in examples():
            for fmt in ("json", "text"):
                code, out, err = run("eval", "--format", fmt, path)
                self.assertEqual(code, 0, err)
                golden = root("tests", "integration", "cli", "golden", "%s.%s" % (name, "json" if fmt == "json" else "txt"))
                if ARGS.update:
                    with open(golden, "w") as f:
                        f.write(out)
                    continue
                with open(golden) as f:
                    want = f.read()
                self.assertEqual(out, want, "%s (%s) differs from %s" % (name, fmt, golden))


class LocalPolicyFallback(unittest.TestCase):
    """Issue 11: a stricter local rule (56 days) that blocks the preferred
    FOLFIRI+bevacizumab leaves FOLFIRI without it, reported as local policy."""

    def test_56_day_plugin_leaves_folfiri(self):
        here = root("examples", "local-protocol")
        case = os.path.join(here, "cases", "surgery_in_50_days_kras_mutant.json")
        plugin = os.path.join(here, "local_bev_surgery_56d.lua")
        for fmt in ("json", "text"):
            code, out, err = run("eval", "--format", fmt, "--plugin", plugin, case)
            self.assertEqual(code, 0, err)
            golden = root("tests", "integration", "cli", "golden", "local_bev_56d_surgery_50.%s" % ("json" if fmt == "json" else "txt"))
            if ARGS.update:
                with open(golden, "w") as f:
                    f.write(out)
                continue
            with open(golden) as f:
                self.assertEqual(out, f.read(), golden)
        r = json.loads(run("eval", "--plugin", plugin, case)[1])
        self.assertEqual([x["id"] for x in r["recommendations"] if x.get("group") == "second_line_regimen"], ["FOLFIRI"])
        self.assertEqual([(b["id"], b["by"], b["plugin"]) for b in r["blocked"]],
                         [("FOLFIRI+bevacizumab", "local_policy", "local_bev_surgery_56d")])
        # the result carries the reference texts: the guideline's [1]-[5] and the plugin's own [7]
        refs = {x["number"]: x["text"] for x in r["references"]}
        self.assertEqual(sorted(refs), [1, 2, 3, 4, 5, 7])
        self.assertTrue(refs[7].startswith("Institutional policy 2026-03"), refs[7])
        self.assertIn(7, r["blocked"][0]["citations"])
        text = run("eval", "--format", "text", "--plugin", plugin, case)[1]
        self.assertIn("BLOCKED BY SAFETY RULES: none", text)
        self.assertIn("WITHHELD BY LOCAL POLICY", text)
        self.assertNotIn("plus biologics", text)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--pathwise", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--update", action="store_true")
    ARGS, rest = ap.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=1)
