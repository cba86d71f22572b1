#!/usr/bin/env python3
"""`pathwise eval --what-if` and `batch --what-if` (issue 17): which values
of each missing or unknown fact, and of each test panel, would change the
plan.

Cases are tests/integration/cli/whatif/*.json plus the index case and two
examples (ECOG unknown, ECOG 3). The text section of each is compared with
tests/integration/cli/golden/whatif/NAME.txt (the time masked). After an
intended change, regenerate and review:
    python3 tests/integration/cli/test_whatif.py --pathwise build/pathwise --root . --update
"""
import argparse
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

ARGS = None
TIME = re.compile(r"\((\d+) evaluations, [0-9.]+ ms\)")


def run(*argv, stdin=None):
    p = subprocess.run([ARGS.pathwise, *argv], input=stdin, capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def root(*parts):
    return os.path.join(ARGS.root, *parts)


def cases():
    out = [("index_case", root("examples", "index_case.json")),
           ("ecog_unknown", root("examples", "cases", "ecog_unknown.json")),
           ("ecog_3", root("examples", "cases", "ecog_3.json"))]
    out += [(os.path.splitext(os.path.basename(p))[0], p)
            for p in sorted(glob.glob(root("tests", "integration", "cli", "whatif", "*.json")))]
    for _, p in out:
        if not os.path.exists(p):
            raise SystemExit("missing case file %s" % p)
    return out


def case(name):
    return dict(cases())[name]


def section(text):
    """The what-if section of a text report, its time masked."""
    start = text.index("\nWHAT WOULD CHANGE THE PLAN")
    end = text.find("\n\n", start + 1)
    return TIME.sub(r"(\1 evaluations, T ms)", text[start + 1:end + 1])


def what_if(path, *extra):
    code, out, err = run("eval", "--what-if", "--format", "json", *extra, path)
    assert code == 0, err
    return json.loads(out)


def strip_what_if(text):
    """The result JSON text without its what_if member."""
    i = text.index(',"what_if":')
    return text[:i] + "}\n"


def no_time(text):
    return re.sub(r'"elapsed_us":\d+', '"elapsed_us":0', text)


class Goldens(unittest.TestCase):
    def test_sections_match_goldens(self):
        gdir = root("tests", "integration", "cli", "golden", "whatif")
        names = set()
        for name, path in cases():
            code, out, err = run("eval", "--what-if", "--format", "text", path)
            self.assertEqual(code, 0, err)
            got = section(out)
            golden = os.path.join(gdir, name + ".txt")
            names.add(name + ".txt")
            if ARGS.update:
                os.makedirs(gdir, exist_ok=True)
                with open(golden, "w") as f:
                    f.write(got)
                continue
            self.assertTrue(os.path.exists(golden), "no golden for %s" % name)
            with open(golden) as f:
                self.assertEqual(got, f.read(), name)
        if not ARGS.update:   # no stale goldens
            self.assertEqual(set(os.listdir(gdir)), names)

    def test_section_follows_missing_facts(self):
        code, out, _ = run("eval", "--what-if", "--format", "text", case("index_case"))
        self.assertEqual(code, 0)
        m, w, warn = out.index("\nMISSING FACTS"), out.index("\nWHAT WOULD CHANGE THE PLAN"), out.index("\nWARNINGS")
        self.assertLess(m, w)
        self.assertLess(w, warn)
        self.assertRegex(out, r"WHAT WOULD CHANGE THE PLAN \(28 evaluations, [0-9.]+ ms\)")
        # without --what-if the report has no such section, and is otherwise the same
        code, plain, _ = run("eval", "--format", "text", case("index_case"))
        self.assertNotIn("WHAT WOULD CHANGE", plain)
        self.assertEqual(out[:w + 1] + out[out.index("\n\n", w + 1) + 2:], plain)


class Answers(unittest.TestCase):
    def test_msi_result_switches_the_pathway(self):
        w = what_if(case("index_case"))["what_if"]
        msi = w["facts"]["molecular.msi"]
        self.assertEqual(msi["impact"], "pathway")
        self.assertEqual(w["ranking"][0], "molecular.msi")
        high = msi["values"]["msi_high"]
        self.assertEqual(high["pathway"], "immunotherapy")
        self.assertEqual(high["added"], ["pembrolizumab", "nivolumab"])
        self.assertEqual(high["removed"], ["FOLFIRI+bevacizumab"])
        self.assertEqual(msi["values"]["mss"]["impact"], "none")
        self.assertEqual(msi["orders"], ["msi_testing"])
        # the test that yields the result is not reported as "removed"
        self.assertNotIn("msi_testing", high["removed"])

    def test_ras_result_adds_anti_egfr_options(self):
        w = what_if(case("ras_pending"))["what_if"]
        self.assertEqual(set(w["facts"]), {"molecular.kras", "molecular.nras", "panel.ras"})
        ras = w["facts"]["panel.ras"]
        self.assertEqual(ras["impact"], "option")
        self.assertEqual(ras["evaluations"], 4)
        wt = ras["values"]["kras=wild_type,nras=wild_type"]
        self.assertEqual(wt["added"], ["FOLFIRI+cetuximab", "FOLFIRI+panitumumab"])
        self.assertEqual(wt["pathway"], "second_line_systemic")
        for key in ("kras=wild_type,nras=mutant", "kras=mutant,nras=wild_type", "kras=mutant,nras=mutant"):
            self.assertEqual(ras["values"][key]["impact"], "none", key)
        # one gene alone cannot confirm RAS wild type
        self.assertEqual(w["facts"]["molecular.kras"]["impact"], "none")
        self.assertEqual(w["changes_nothing"], [])
        # with NRAS known wild type, KRAS alone decides
        k = what_if(case("kras_pending_nras_wild_type"))["what_if"]["facts"]["molecular.kras"]
        self.assertEqual(k["impact"], "option")
        self.assertEqual(k["values"]["wild_type"]["added"], ["FOLFIRI+cetuximab", "FOLFIRI+panitumumab"])
        self.assertEqual(k["values"]["mutant"]["added"], [])

    def test_braf_matters_only_with_ras_wild_type(self):
        w = what_if(case("index_case"))["what_if"]
        self.assertEqual(w["facts"]["molecular.braf_v600e"]["impact"], "none")
        panel = w["facts"]["panel.molecular"]["values"]
        self.assertIn("encorafenib+cetuximab",
                      panel["kras=wild_type,nras=wild_type,braf_v600e=mutant,msi=mss"]["added"])
        self.assertNotIn("encorafenib+cetuximab",
                         panel["kras=mutant,nras=wild_type,braf_v600e=mutant,msi=mss"]["added"])

    def test_ecog_decides_chemotherapy_or_best_supportive_care(self):
        r = what_if(case("ecog_unknown"))
        self.assertEqual(r["pathway"], "needs_assessment")
        ecog = r["what_if"]["facts"]["ecog"]
        self.assertEqual(ecog["impact"], "pathway")
        self.assertEqual(list(ecog["values"]), ["0", "1", "2", "3", "4"])
        for v in "012":
            self.assertEqual(ecog["values"][v]["pathway"], "second_line_systemic", v)
            self.assertIn("FOLFIRI+bevacizumab", ecog["values"][v]["added"])
        for v in "34":
            self.assertEqual(ecog["values"][v]["pathway"], "best_supportive_care", v)
            self.assertIn("best_supportive_care", ecog["values"][v]["added"])
            self.assertNotIn("FOLFIRI+bevacizumab", ecog["values"][v]["added"])

    def test_nothing_pending_changes_anything(self):
        code, out, _ = run("eval", "--what-if", "--format", "text", case("ecog_3"))
        self.assertEqual(code, 0)
        self.assertIn("No pending result or missing fact changes the plan for this patient.", section(out))
        w = what_if(case("ecog_3"))["what_if"]
        self.assertIn("molecular.msi", w["facts"])   # it was explored ...
        self.assertTrue(all(f["impact"] == "none" for f in w["facts"].values()))   # ... and changes nothing
        self.assertEqual(w["changes_nothing"], w["ranking"])
        # nothing missing at all
        code, out, _ = run("eval", "--what-if", "--format", "text", case("nothing_to_try"))
        self.assertIn("nothing to explore", section(out))
        self.assertEqual(what_if(case("nothing_to_try"))["what_if"]["evaluations"], 0)

    def test_missing_facts_without_values_are_named_not_dismissed(self):
        r = what_if(case("history_incomplete"))
        # (issue 10: the primary's site, resection and pelvic radiation are reported missing too)
        self.assertEqual({m["fact"] for m in r["missing"]}, {"prior_regimens", "metastases", "primary.site",
                                                              "primary.resected", "primary.prior_pelvic_radiation"})
        w = r["what_if"]
        # the FOLFOX outcome is tried record by record; the metastatic sites cannot be
        self.assertEqual([x["fact"] for x in w["not_explored"]], ["metastases"])
        o = w["facts"]["prior_regimens[0].outcome"]
        self.assertEqual((o["impact"], o["listed_missing"], o["test"]), ("pathway", True, "treatment history review"))
        self.assertEqual(o["values"]["progression"]["pathway"], "second_line_systemic")
        self.assertEqual(o["values"]["ongoing"]["applicable"], False)
        # nothing changes apart from that, and still the section does not say "nothing"
        r["what_if"]["facts"].pop("prior_regimens[0].outcome")
        # issue 10: a non-colorectal primary is outside the guideline
        self.assertEqual(r["what_if"]["facts"].pop("primary.site")["impact"], "pathway")
        self.assertTrue(all(f["impact"] == "none" for f in w["facts"].values()))
        code, out, _ = run("eval", "--what-if", "--format", "text", case("history_incomplete"))
        sec = section(out)
        self.assertNotIn("No pending result", sec)
        self.assertIn("Not explored: metastases (no values to try for this fact).", sec)
        code, out, _ = run("eval", "--what-if", "--format", "text", "-",
                           stdin='{"ecog":1,"metastatic":true,"prior_regimens":[{"name":"FOLFOX","line":1,'
                                 '"outcome":"progression"}],"molecular":{"kras":"mutant","nras":"wild_type",'
                                 '"braf_v600e":"wild_type","msi":"mss"},"proposed_orders":["palliative_rt_bone"],'
                                 '"primary":{"site":"rectum","resected":true,"prior_pelvic_radiation":true,'
                                 '"symptoms":[]},"neuropathy":{"grade":0,"persistent":false},'
                                 '"planned_surgery_in_days":null,"prior_radiation_sites":[]}')
        sec = section(out)
        self.assertIn("No missing fact that pathwise can try; those not explored (below) may change the plan.", sec)
        self.assertIn("Not explored: metastases", sec)
        self.assertNotIn("No pending result", sec)
        self.assertNotIn("nothing to explore", sec)

    def test_symptoms_of_each_metastasis(self):
        w = what_if(case("metastasis_symptoms_unknown"))["what_if"]
        self.assertEqual(set(w["facts"]), {"metastases[0].symptoms", "metastases[2].symptoms"})
        bone = w["facts"]["metastases[0].symptoms"]
        self.assertEqual(bone["impact"], "option")
        self.assertEqual(list(bone["values"]), ["none", "pain", "fracture_risk", "skin_breakdown", "lymphedema",
                                                "obstruction", "neurologic"])
        self.assertEqual(bone["values"]["pain"]["added"], ["palliative_rt_bone@1"])
        self.assertEqual(bone["values"]["none"]["added"], [])
        self.assertEqual(w["facts"]["metastases[2].symptoms"]["values"]["obstruction"]["added"],
                         ["palliative_rt_retroperitoneal@3"])

    def test_surgery_date_changes_the_regimen_with_the_same_plugins(self):
        s = what_if(case("surgery_unknown"))["what_if"]["facts"]["planned_surgery_in_days"]
        self.assertEqual(s["impact"], "regimen")
        self.assertEqual(list(s["values"]), ["none", "30", "60"])
        self.assertEqual(s["values"]["30"]["removed"], ["FOLFIRI+bevacizumab"])
        self.assertEqual(s["values"]["30"]["added"], ["FOLFIRI"])
        self.assertEqual(s["values"]["60"]["impact"], "none")
        # an institution's 60-day rule (a plugin) is applied to every variant
        s = what_if(case("surgery_unknown"), "--plugin", root("plugins", "local_bev_surgery_60d.lua"))
        v60 = s["what_if"]["facts"]["planned_surgery_in_days"]["values"]["60"]
        self.assertEqual(v60["newly_blocked"], [{"item": "FOLFIRI+bevacizumab",
                                                  "rule": "local_bev_surgery_60d/bev_surgery_60d"}])

    def test_radiation_history_changes_an_option(self):
        r = what_if(case("groin_history_unknown"))["what_if"]["facts"]["prior_radiation_sites"]
        self.assertEqual(r["impact"], "option")
        self.assertEqual(r["values"]["none"]["added"], ["palliative_rt_inguinal@2"])
        self.assertEqual(r["values"]["groin"]["impact"], "none")

    def test_ranking_and_impacts(self):
        w = what_if(case("index_case"))["what_if"]
        order = {"pathway": 3, "regimen": 2, "option": 1, "none": 0}
        ranks = [order[w["facts"][k]["impact"]] for k in w["ranking"]]
        self.assertEqual(ranks, sorted(ranks, reverse=True))
        self.assertEqual([w["facts"][k]["rank"] for k in w["ranking"]], list(range(1, len(ranks) + 1)))
        self.assertEqual(list(w["facts"]), w["ranking"])
        self.assertEqual(w["facts"]["panel.ras"]["impact"], "option")


class Properties(unittest.TestCase):
    def test_result_is_the_patients_own(self):
        """--what-if adds what_if and changes nothing else, byte for byte
        (the facts table is restored and the patient evaluated again)."""
        paths = [p for _, p in cases()] + sorted(glob.glob(root("examples", "cases", "*.json")))
        for path in paths:
            for extra in ([], ["--trace"]):
                code, plain, _ = run("eval", "--format", "json", *extra, path)
                self.assertEqual(code, 0)
                code, wi, _ = run("eval", "--format", "json", "--what-if", *extra, path)
                self.assertEqual(code, 0)
                self.assertEqual(strip_what_if(wi), plain, (path, extra))

    def test_deterministic(self):
        for _, path in cases():
            a = run("eval", "--what-if", "--format", "json", path)[1]
            b = run("eval", "--what-if", "--format", "json", path)[1]
            self.assertEqual(no_time(a), no_time(b), path)

    def test_bounded_and_timed(self):
        r = what_if(case("everything_unknown"))["what_if"]
        self.assertLessEqual(r["evaluations"], r["limit"])
        self.assertEqual(r["limit"], 256)
        self.assertEqual(r["evaluations"], sum(f["evaluations"] for f in r["facts"].values()))
        self.assertGreater(r["elapsed_us"], 0)
        self.assertIn("ecog", r["facts"])
        self.assertEqual(r["facts"]["metastatic"]["values"]["false"]["applicable"], False)

    def test_value_objects_have_every_list(self):
        w = what_if(case("index_case"))["what_if"]
        keys = {"impact", "changes", "applicable", "pathway", "added", "removed", "modified",
                "newly_blocked", "no_longer_blocked"}
        for fid, f in w["facts"].items():
            self.assertEqual(set(f), {"label", "facts", "orders", "test", "listed_missing", "impact",
                                      "rank", "evaluations", "errors", "values"}, fid)
            self.assertEqual(f["errors"], 0, fid)
            for vid, v in f["values"].items():
                self.assertEqual(set(v), keys, (fid, vid))

    def test_invalid_input_fails_as_without_what_if(self):
        code, out, err = run("eval", "--what-if", "--format", "json", "-", stdin='{"ecog": 7}')
        self.assertEqual(code, 65)
        self.assertEqual(out, "")
        self.assertIn("ecog: expected integer 0..4, got 7", err)

    def test_help(self):
        self.assertIn("--what-if", run("eval", "--help")[1])
        self.assertIn("--what-if", run("batch", "--help")[1])


class Batch(unittest.TestCase):
    def test_cohort_results_unchanged_by_what_if(self):
        """Over a generated cohort with spoiled lines: every result with
        --what-if is the result without it plus what_if; errors are the
        same records."""
        code, cohort, err = run("cohort", "--n", "1500", "--seed", "17", "--invalid", "5")
        self.assertEqual(code, 0, err)
        code, plain, _ = run("batch", "--jobs", "2", "--no-progress", "--quiet", "-", stdin=cohort)
        self.assertEqual(code, 0)
        code, wi, _ = run("batch", "--what-if", "--jobs", "2", "--no-progress", "--quiet", "-", stdin=cohort)
        self.assertEqual(code, 0)
        plain, wi = plain.splitlines(), wi.splitlines()
        self.assertEqual(len(plain), len(wi))
        errors = tried = 0
        for a, b in zip(plain, wi):
            if '"error":{' in a and '"what_if":' not in b:
                errors += 1
                self.assertEqual(a, b)
                continue
            w = json.loads(b)["what_if"]
            tried += bool(w["facts"])
            self.assertLessEqual(w["evaluations"], w["limit"])
            self.assertEqual(strip_what_if(b + "\n"), a + "\n")
        self.assertGreater(errors, 20)
        self.assertGreater(tried, 1000)

    def test_batch_lines_equal_eval_and_summary_counts(self):
        paths = [p for _, p in cases()]
        with tempfile.TemporaryDirectory() as tmp:
            cohort = os.path.join(tmp, "c.jsonl")
            with open(cohort, "w") as f:
                for p in paths:
                    with open(p) as g:
                        f.write(json.dumps(json.load(g)) + "\n")
            summary = os.path.join(tmp, "s.json")
            code, out, err = run("batch", "--what-if", "--jobs", "2", "--no-progress", "--summary", summary, cohort)
            self.assertEqual(code, 0, err)
            lines = out.splitlines()
            self.assertEqual(len(lines), len(paths))
            for line, p in zip(lines, paths):
                self.assertEqual(no_time(line + "\n"), no_time(run("eval", "--what-if", "--format", "json", p)[1]), p)
            self.assertIn("what would change the plan", err)
            with open(summary) as f:
                s = json.load(f)["what_if"]
            self.assertEqual(s["cases"], len(paths))
            changing = sum(1 for l in lines if any(f["impact"] != "none" for f in json.loads(l)["what_if"]["facts"].values()))
            tried = sum(1 for l in lines if json.loads(l)["what_if"]["facts"])
            self.assertEqual((s["cases_tried"], s["cases_changing"]), (tried, changing))
            # every case has a fact to try but nothing_to_try; all of those change the plan but ecog_3
            self.assertEqual((tried, changing), (len(paths) - 1, len(paths) - 2))
            msi = s["facts"]["molecular.msi"]
            # msi unknown in the index case, ECOG unknown, ECOG 3 and everything unknown:
            # only in the index case does it change the plan
            self.assertEqual((msi["unknown"], msi["changes"], msi["pathway"]), (4, 1, 1))
            self.assertEqual(s["facts"]["panel.ras"]["option"], 2)   # index case, ras_pending
            # a field of list records counts once per case (two metastases in one case)
            m = s["facts"]["metastases[].symptoms"]
            self.assertEqual((m["unknown"], m["changes"], m["option"]), (1, 1, 1))
            self.assertNotIn("metastases[0].symptoms", s["facts"])
            self.assertEqual(s["evaluations"], sum(json.loads(l)["what_if"]["evaluations"] for l in lines))
            code, out, err = run("batch", "--no-progress", cohort)   # without --what-if: none of it
            self.assertNotIn("what would change the plan", err)
            self.assertNotIn('"what_if"', out)


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--pathwise", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--update", action="store_true")
    ARGS, rest = ap.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
