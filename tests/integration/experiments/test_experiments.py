#!/usr/bin/env python3
"""CLI tests for the experiment commands: cohort, batch, diff, check --coverage
and plugins (issue 5).

Run one class (as ctest does) or all of them:
    python3 tests/integration/experiments/test_experiments.py \
        --pathwise build/pathwise --root . [Cohort|Batch|Diff|Coverage|Plugins]

The expected diff of examples/local-protocol is committed; after an intended
change to a protocol or the plugin, run examples/local-protocol/regenerate.sh
and review the diff.
"""
import argparse
import hashlib
import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import tempfile
import unittest

ARGS = None
TMP = None


def root(*parts):
    return os.path.join(ARGS.root, *parts)


def run(*argv, stdin=None, timeout=300):
    p = subprocess.run([ARGS.pathwise, *argv], input=stdin, capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def tmp(name):
    return os.path.join(TMP, name)


def unk(v):
    """"unknown" means unknown, as absent and null do."""
    return None if v == "unknown" else v


def cohort(n, seed, *extra):
    """Path of a generated cohort (made once per n/seed/extra)."""
    path = tmp("cohort_%d_%d%s.jsonl" % (n, seed, "".join(extra).replace("-", "_")))
    if not os.path.exists(path):
        code, _, err = run("cohort", "--n", str(n), "--seed", str(seed), *extra, "-o", path)
        assert code == 0, err
    return path


def lines_of(text):
    return [l for l in text.split("\n") if l]


PROTOCOL = None
LOCAL = None
BEV60 = None
BRAIN = None
ROGUE = None
TINY = None
RAISING = None


class Cohort(unittest.TestCase):
    def test_reproducible(self):
        a = run("cohort", "--n", "2000", "--seed", "7")
        b = run("cohort", "--n", "2000", "--seed", "7")
        self.assertEqual(a[0], 0)
        self.assertEqual(a[1], b[1], "same seed, same bytes")
        self.assertEqual(len(lines_of(a[1])), 2000)
        c = run("cohort", "--n", "2000", "--seed", "8")
        self.assertNotEqual(a[1], c[1])
        path = tmp("seed7.jsonl")
        self.assertEqual(run("cohort", "--n", "2000", "--seed", "7", "--output", path)[0], 0)
        with open(path) as f:
            self.assertEqual(f.read(), a[1])
        # a prefix: the first cases do not depend on --n
        d = run("cohort", "--n", "100", "--seed", "7")
        self.assertTrue(a[1].startswith(d[1]))
        self.assertEqual(run("cohort", "--n", "0")[1], "")

    def test_help_states_proportions(self):
        code, out, _ = run("cohort", "--help")
        self.assertEqual(code, 0)
        for claim in ("RAS mutant 45%", "BRAF V600E 9%", "MSI-high 4.5%", "ECOG", "unknown"):
            self.assertIn(claim, out)

    def test_every_field_and_value(self):
        with open(cohort(5000, 11)) as f:
            facts = [json.loads(l) for l in f]
        seen = {}

        def see(path, value):
            seen.setdefault(path, set()).add(json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value)

        absent = {}
        top = ["patient_id", "ecog", "metastatic", "primary", "prior_regimens", "neuropathy", "molecular",
               "metastases", "prior_radiation_sites", "planned_surgery_in_days", "proposed_orders"]
        for f in facts:
            for k in top:
                if k not in f:
                    absent[k] = absent.get(k, 0) + 1
            for k in ("ecog", "metastatic", "planned_surgery_in_days"):
                if k in f:
                    see(k, f[k] if f[k] is None or k != "planned_surgery_in_days" else "int")
            p = unk(f.get("primary")) or {}
            for k in ("site", "resected", "prior_pelvic_radiation"):
                see("primary." + k, p.get(k, "<absent>"))
            for s in unk(p.get("symptoms")) or []:
                see("primary.symptoms[]", s)
            for r in unk(f.get("prior_regimens")) or []:
                see("prior_regimens[].name", r.get("name"))
                see("prior_regimens[].line", r.get("line", "<absent>"))
                see("prior_regimens[].outcome", r.get("outcome", "<absent>"))
            n = unk(f.get("neuropathy")) or {}
            see("neuropathy.grade", n.get("grade", "<absent>"))
            see("neuropathy.persistent", n.get("persistent", "<absent>"))
            m = unk(f.get("molecular")) or {}
            for k in ("kras", "nras", "braf_v600e", "msi"):
                see("molecular." + k, m.get(k, "<absent>"))
            for k in top:
                if f.get(k) == "unknown":
                    see("whole field \"unknown\"", k)
            for met in unk(f.get("metastases")) or []:
                see("metastases[].site", met["site"])
                if met["site"] == "bone":
                    see("metastases[].spine", met.get("spine", "<absent>"))
                else:
                    self.assertNotIn("spine", met, "spine only on a bone site")
                if "symptoms" not in met:
                    see("metastases[].symptoms", "<absent>")
                for s in unk(met.get("symptoms")) or []:
                    see("metastases[].symptoms[]", s)
            for s in unk(f.get("prior_radiation_sites")) or []:
                see("prior_radiation_sites[]", s)
            for o in unk(f.get("proposed_orders")) or []:
                see("proposed_orders[]", o)
            if f.get("proposed_orders") == []:
                see("proposed_orders", "[]")
            if "notes" in f:
                see("unknown field", "notes")
        every = {
            "ecog": {0, 1, 2, 3, 4, None},
            "metastatic": {True, False, None},
            "planned_surgery_in_days": {None, "int"},
            "primary.site": {"rectum", "colon_left", "colon_right", "colon", "non_colorectal", "<absent>"},
            "primary.resected": {True, False, "<absent>"},
            "primary.prior_pelvic_radiation": {True, False, "<absent>"},
            "primary.symptoms[]": {"bleeding", "obstruction", "intractable_pain"},
            "prior_regimens[].outcome": {"progression", "ongoing", "intolerance", "<absent>"},
            "prior_regimens[].line": {1, 2, "<absent>"},
            "neuropathy.grade": {0, 1, 2, 3, 4, "<absent>"},
            "neuropathy.persistent": {True, False, "<absent>"},
            "molecular.kras": {"wild_type", "mutant", "unknown", None, "<absent>"},
            "molecular.nras": {"wild_type", "mutant", "unknown", None, "<absent>"},
            "molecular.braf_v600e": {"wild_type", "mutant", "unknown", None, "<absent>"},
            "molecular.msi": {"msi_high", "mss", "unknown", None, "<absent>"},
            "metastases[].site": {"bone", "inguinal_nodes", "retroperitoneal", "liver", "lung", "peritoneum",
                                  "brain", "other"},
            "metastases[].symptoms": {"<absent>"},
            "metastases[].spine": {True, False, None, "unknown", "<absent>"},
            "whole field \"unknown\"": {"ecog", "metastatic", "primary", "prior_regimens", "neuropathy",
                                        "molecular", "metastases", "prior_radiation_sites"},
            "metastases[].symptoms[]": {"pain", "fracture_risk", "skin_breakdown", "lymphedema", "obstruction",
                                        "neurologic"},
            "prior_radiation_sites[]": {"pelvis", "groin", "inguinal", "spine", "chest", "Groin (L)",
                                        "para-aortic nodes"},
            "proposed_orders": {"[]"},
            "unknown field": {"notes"},
        }
        for path, values in every.items():
            self.assertTrue(values <= seen.get(path, set()), "%s: missing %s" % (path, values - seen.get(path, set())))
        # every agent, regimen and action as a proposed order
        agents = {"fluorouracil", "leucovorin", "irinotecan", "oxaliplatin", "bevacizumab", "cetuximab",
                  "panitumumab", "encorafenib", "pembrolizumab", "nivolumab", "zoledronic_acid", "denosumab"}
        actions = {"palliative_rt_bone", "palliative_rt_inguinal", "palliative_rt_retroperitoneal",
                   "primary_local_therapy", "primary_resection", "long_course_chemoradiation", "ras_testing",
                   "braf_testing", "msi_testing", "ct_reassessment", "best_supportive_care"}
        parts = set()
        for o in seen["proposed_orders[]"]:
            parts |= set(o.split("+"))
        self.assertTrue(agents | actions | {"FOLFIRI", "FOLFOX"} <= parts, (agents | actions) - parts)
        sites = seen["prior_radiation_sites[]"]
        for side in ("left ", "right ", "bilateral "):   # laterality
            self.assertTrue(any(x.startswith(side) for x in sites), side)
        for k in top:   # every field is sometimes absent (unknown)
            self.assertIn(k, absent, k)
        # unknown and invalid-looking names appear only where the model allows
        names = seen["prior_regimens[].name"]
        self.assertTrue({"FOLFOX", "mFOLFOX6", "FOLFOX4", "CAPOX", "FOLFOXIRI", "FOLFIRI"} <= names)

    def test_proportions_match_help(self):
        with open(cohort(40000, 3)) as f:
            facts = [json.loads(l) for l in f]
        n = len(facts)

        def share(pred, among=lambda f: True):
            sel = [f for f in facts if among(f)]
            return 100.0 * sum(1 for f in sel if pred(f)) / len(sel)

        mol = lambda f: unk(f.get("molecular")) or {}
        known = lambda v: v in ("wild_type", "mutant", "msi_high", "mss")
        both_ras = lambda f: known(mol(f).get("kras")) and known(mol(f).get("nras"))
        ras_mut = share(lambda f: "mutant" in (mol(f).get("kras"), mol(f).get("nras")), both_ras)
        self.assertAlmostEqual(ras_mut, 45, delta=1.5)
        kras_mut = share(lambda f: mol(f)["kras"] == "mutant", lambda f: known(mol(f).get("kras")))
        self.assertAlmostEqual(kras_mut, 40, delta=1.5)
        braf = share(lambda f: mol(f)["braf_v600e"] == "mutant", lambda f: known(mol(f).get("braf_v600e")))
        self.assertAlmostEqual(braf, 9, delta=1)
        msi = share(lambda f: mol(f)["msi"] == "msi_high", lambda f: known(mol(f).get("msi")))
        self.assertAlmostEqual(msi, 4.5, delta=0.7)
        # BRAF V600E only in RAS wild-type tumours
        self.assertEqual(0, sum(1 for f in facts if mol(f).get("braf_v600e") == "mutant" and
                                "mutant" in (mol(f).get("kras"), mol(f).get("nras"))))
        for grade, pct in ((0, 25), (1, 40), (2, 17), (3, 8), (4, 3)):
            self.assertAlmostEqual(share(lambda f: f.get("ecog") == grade), pct, delta=1.2)
        self.assertAlmostEqual(share(lambda f: unk(f.get("ecog")) is None), 7, delta=1)
        self.assertAlmostEqual(share(lambda f: f.get("metastatic") is True), 94, delta=1)
        self.assertAlmostEqual(share(lambda f: (unk(f.get("primary")) or {}).get("site") == "rectum"), 70, delta=1.5)
        self.assertAlmostEqual(share(lambda f: f.get("planned_surgery_in_days", 0) is None), 80, delta=1.5)
        self.assertAlmostEqual(share(lambda f: "planned_surgery_in_days" not in f), 12, delta=1)
        self.assertAlmostEqual(share(lambda f: "proposed_orders" not in f), 75, delta=1.5)
        bone = lambda f: any(m["site"] == "bone" for m in unk(f.get("metastases")) or [])
        self.assertAlmostEqual(share(bone, lambda f: f.get("metastases")), 20, delta=1.5)

    def test_all_generated_lines_are_valid(self):
        code, out, err = run("batch", "--summary", tmp("valid.json"), cohort(5000, 11))
        self.assertEqual(code, 0, err)
        with open(tmp("valid.json")) as f:
            s = json.load(f)
        self.assertEqual(s["cases"], 5000)
        self.assertEqual(s["errors"], 0, s["first_errors"])

    def test_invalid_lines_on_purpose(self):
        code, out, err = run("batch", "--summary", tmp("invalid.json"), cohort(4000, 5, "--invalid", "10"))
        self.assertEqual(code, 0, err)
        with open(tmp("invalid.json")) as f:
            s = json.load(f)
        self.assertGreater(s["errors"], 250)
        self.assertLess(s["errors"], 450)
        for field in ("ecog", "molecular.kras", "$"):
            self.assertIn(field, s["errors_by_field"])

    def test_usage(self):
        for argv in (["--n", "-1"], ["--n", "x"], ["--seed", "abc"], ["--invalid", "200"], ["extra"], ["--bogus"]):
            code, _, err = run("cohort", *argv)
            self.assertEqual(code, 64, argv)
            self.assertIn("usage: pathwise cohort", err)
        self.assertEqual(run("cohort", "-o", "/nonexistent/dir/x.jsonl")[0], 74)


class Batch(unittest.TestCase):
    def make_input(self):
        """A cohort with invalid lines, a blank line, and no final newline."""
        with open(cohort(3000, 21, "--invalid", "5")) as f:
            text = f.read()
        rows = text.split("\n")[:-1]
        rows.insert(100, "   ")
        path = tmp("batch_input.jsonl")
        with open(path, "w") as f:
            f.write("\n".join(rows))   # no newline at the end
        return path, rows

    def test_order_error_records_and_jobs(self):
        path, rows = self.make_input()
        outs = {}
        for jobs in ("1", "3"):
            code, out, err = run("batch", "--jobs", jobs, "--quiet", path)
            self.assertEqual(code, 0, err)
            self.assertEqual(err, "")
            outs[jobs] = out
        self.assertEqual(outs["1"], outs["3"], "same output in the same order whatever the threads")
        recs = [json.loads(l) for l in outs["1"].split("\n") if l]
        self.assertEqual(len(recs), len(rows) - 1, "one record per non-blank line")
        inputs = [(i + 1, r) for i, r in enumerate(rows) if r.strip()]
        errors = 0
        for (lineno, row), rec in zip(inputs, recs):
            if "error" in rec:
                errors += 1
                self.assertEqual(rec["line"], lineno)
                self.assertEqual(rec["error"]["status"], "input")
                field = rec["error"]["field"]
                self.assertTrue(rec["error"]["message"].startswith(field + ": "), rec)
                if field != "$":
                    head = field.split(".")[0].split("[")[0]
                    self.assertIn('"%s"' % head, row)
            else:
                self.assertEqual(rec["patient_id"], json.loads(row).get("patient_id"))
                self.assertIn("recommendations", rec)
        self.assertGreater(errors, 50)

    def test_stdin_summary_and_clean_stdout(self):
        path, rows = self.make_input()
        with open(path, "rb") as f:
            data = f.read()
        code, out, err = run("batch", "--summary", tmp("sum.json"), "-", stdin=data)
        self.assertEqual(code, 0)
        records = [json.loads(l) for l in out.split("\n") if l]
        self.assertTrue(all(isinstance(r, dict) for r in records))
        for part in ("pathwise batch: 3000 cases", "pathways", "most frequent recommendations",
                     "most frequent blocks (rule: item)", "invalid input by field", "first errors:",
                     "blank lines skipped 1"):
            self.assertIn(part, err)
        with open(tmp("sum.json")) as f:
            s = json.load(f)
        self.assertEqual(s["cases"], 3000)
        # counted from the records written, not from the summary's own sums
        self.assertEqual(s["errors"], sum("error" in r for r in records))
        self.assertEqual(s["evaluated"], sum("pathway" in r for r in records))
        self.assertEqual(len(records), 3000)
        self.assertEqual(sum(s["pathways"].values()), s["evaluated"])
        self.assertEqual(sum(s["errors_by_field"].values()), s["errors"])
        self.assertEqual(s["blank_lines"], 1)
        self.assertIn("egfr_requires_ras_wt: cetuximab", s["blocks"])
        self.assertEqual([e["line"] for e in s["first_errors"]], sorted(e["line"] for e in s["first_errors"]))
        code, out2, err = run("batch", "--quiet", "-", stdin=data)
        self.assertEqual(err, "")
        self.assertEqual(out, out2)

    def test_strict_exit_codes(self):
        path, _ = self.make_input()
        self.assertEqual(run("batch", "--strict", "-q", path)[0], 65)
        self.assertEqual(run("batch", "--strict", "-q", cohort(500, 1))[0], 0)

    def test_protocol_and_budget_errors_continue(self):
        src = "\n".join(json.dumps({"patient_id": "p%d" % i, "ecog": i % 5}) for i in range(20)) + "\n"
        code, out, err = run("batch", "-q", "-p", RAISING, "--instructions", "200000", "-", stdin=src.encode())
        self.assertEqual(code, 0, err)
        recs = [json.loads(l) for l in lines_of(out)]
        self.assertEqual(len(recs), 20)
        for i, rec in enumerate(recs):
            if i % 5 == 4:
                self.assertEqual(rec["error"]["status"], "protocol")
                self.assertIsNone(rec["error"]["field"])
                self.assertIn("deliberate failure", rec["error"]["message"])
            elif i % 5 == 3:
                self.assertEqual(rec["error"]["status"], "budget")
            else:
                self.assertEqual(rec["pathway"], "fine")
        code, _, _ = run("batch", "-q", "--strict", "-p", RAISING, "--instructions", "200000", "-", stdin=src.encode())
        self.assertEqual(code, 70)

    def test_partitions_concatenate(self):
        """What Spark's RDD.pipe or Hadoop Streaming do: run per partition, concatenate."""
        path = cohort(2000, 4)
        whole = run("batch", "-q", path)[1]
        with open(path) as f:
            rows = f.read().split("\n")[:-1]
        parts = [rows[:700], rows[700:1300], rows[1300:]]
        out = "".join(run("batch", "-q", "-j", "1", "-", stdin=("\n".join(p) + "\n").encode())[1] for p in parts)
        self.assertEqual(whole, out)

    def test_same_results_as_eval(self):
        path = root("examples", "index_case.json")
        with open(path) as f:
            line = json.dumps(json.load(f))
        ev = run("eval", "--format", "json", path)[1]
        b = run("batch", "-q", "-", stdin=(line + "\n").encode())[1]
        self.assertEqual(ev, b)

    def test_progress_only_on_a_terminal(self):
        path = cohort(3000, 9)
        _, _, err = run("batch", path)
        self.assertNotIn("\r", err, "no progress bar when stderr is not a terminal")
        _, _, err = run("batch", "--progress", "-j", "1", path)
        self.assertIn("\r", err)
        self.assertRegex(err, r"cases +\d+/s")
        self.assertIn("ETA", err)
        # stderr a real terminal, stdout a pipe: the bar shows, stdout stays clean
        master, slave = pty.openpty()
        p = subprocess.Popen([ARGS.pathwise, "batch", "-j", "1", path], stdout=subprocess.PIPE, stderr=slave)
        os.close(slave)
        out = p.stdout.read()
        p.stdout.close()
        p.wait(timeout=120)
        tty = b""
        while True:
            r, _, _ = select.select([master], [], [], 0.5)
            if not r:
                break
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            tty += chunk
        os.close(master)
        self.assertEqual(p.returncode, 0)
        self.assertIn(b"pathwise batch: 3000 cases", tty)
        self.assertIn(b"/s", tty)
        self.assertNotIn(b"\r", out)
        self.assertEqual(len(lines_of(out.decode())), 3000)

    def test_usage_and_exit_codes(self):
        self.assertEqual(run("batch", "--help")[0], 0)
        self.assertIn("usage: pathwise batch", run("batch", "--help")[1])
        for argv in ([], ["a", "b"], ["--jobs", "0", "x"], ["--jobs", "x", "x"], ["--bogus", "x"]):
            code, _, err = run("batch", *argv)
            self.assertEqual(code, 64, argv)
        self.assertEqual(run("batch", "/nonexistent.jsonl")[0], 66)
        self.assertEqual(run("batch", "-p", "/nonexistent.lua", "-", stdin=b"")[0], 66)
        bad = tmp("bad_protocol.lua")
        with open(bad, "w") as f:
            f.write("return 42\n")
        self.assertEqual(run("batch", "-p", bad, "-", stdin=b"")[0], 78)
        code, out, err = run("batch", "-", stdin=b"")
        self.assertEqual((code, out), (0, ""))
        self.assertIn("0 cases", err)


class Diff(unittest.TestCase):
    def test_expected_output_of_the_local_protocol(self):
        here = root("examples", "local-protocol")
        code, out, err = run("cohort", "--n", "1000", "--seed", "2024")
        with open(os.path.join(here, "cohort.jsonl")) as f:
            self.assertEqual(out, f.read(), "the committed cohort regenerates byte for byte")
        code, out, err = run("diff", "--a", PROTOCOL, "--b", LOCAL, "--b-plugin", BEV60,
                             os.path.join(here, "cohort.jsonl"))
        self.assertEqual(code, 0, err)
        with open(os.path.join(here, "diff_vs_default.txt")) as f:
            expected = f.read()
        if out != expected:
            import difflib
            d = "".join(list(difflib.unified_diff(expected.splitlines(True), out.splitlines(True),
                                                  "expected", "actual"))[:60])
            self.fail("diff output changed; if intended, run examples/local-protocol/regenerate.sh\n" + d)

    def test_text_json_and_html_agree(self):
        path = cohort(3000, 12, "--invalid", "2")
        html = tmp("diff.html")
        code, text, err = run("diff", "--a", PROTOCOL, "--b", LOCAL, "--b-plugin", BEV60, "--html", html, path)
        self.assertEqual(code, 0, err)
        code, js, err = run("diff", "--a", PROTOCOL, "--b", LOCAL, "--b-plugin", BEV60, "-f", "json", "-j", "3", path)
        self.assertEqual(code, 0, err)
        d = json.loads(js)
        s = d["summary"]
        self.assertEqual(d["a"]["protocol"]["id"], "mrc_second_line")
        self.assertEqual(d["b"]["protocol"]["id"], "mrc_second_line_local")
        self.assertEqual(d["b"]["plugins"], ["local_bev_surgery_60d.lua"])
        self.assertEqual(s["cases"], 3000)
        self.assertGreater(s["invalid"], 0)
        self.assertEqual(len(d["cases"]), s["changed"])
        self.assertGreater(s["categories"]["newly_blocked"], 0)   # so the loops below check something
        self.assertRegex(text, r"\n  changed +%d " % s["changed"])
        self.assertEqual(len(re.findall(r"^line \d+", text, re.M)), s["changed"])
        for c in d["cases"]:
            for b in c["newly_blocked"]:
                self.assertEqual(b["rule"], "local_bev_surgery_60d/bev_surgery_60d")
        with open(path) as f:
            rows = f.read().split("\n")
        for c in d["cases"]:
            if c["newly_blocked"]:
                days = json.loads(rows[c["line"] - 1]).get("planned_surgery_in_days")
                self.assertIsInstance(days, int)
                self.assertTrue(42 < days <= 60, days)
        self.assertEqual(s["categories"]["removed"], {r["item"]: r["cases"] for r in s["removed"]}["FOLFIRI+cetuximab"])
        with open(html) as f:
            page = f.read()
        self.assertTrue(page.startswith("<!DOCTYPE html>"))
        self.assertIn("<svg", page)
        self.assertIn("<table", page)
        self.assertNotIn("<script", page)
        self.assertNotRegex(page, r"(src|href)\s*=")
        self.assertNotIn("https://", page)
        self.assertIn(">%d</td>" % s["changed"], page.replace("<b>", "").replace("</b>", ""))

    def test_changed_items_show_before_after_block_reason_and_key_facts(self):
        """Issue 11: each changed item with its state under A and B, the block's
        rule and plugin, and the patient's ECOG, RAS/BRAF/MSI, symptomatic
        sites and surgery timing; in JSON and in HTML."""
        here = root("examples", "local-protocol")
        b56 = os.path.join(here, "local_bev_surgery_56d.lua")
        path = os.path.join(here, "cohort.jsonl")
        html = tmp("diff-items.html")
        code, js, err = run("diff", "--a", PROTOCOL, "--b", LOCAL, "--b-plugin", b56, "-f", "json", "--html", html, path)
        self.assertEqual(code, 0, err)
        d = json.loads(js)
        with open(path) as f:
            rows = [json.loads(l) for l in f if l.strip()]
        with open(html) as f:
            page = f.read()
        in_page = {c["line"] for c in d["cases"][:200]}   # the page lists the first 200 changed cases
        blocked = [(c, b) for c in d["cases"] for b in c["newly_blocked"]]
        self.assertTrue(blocked, "the 56-day plugin blocks someone in this cohort")
        for c, b in blocked:
            self.assertEqual(b["item"], "FOLFIRI+bevacizumab")
            self.assertEqual(b["a"]["status"], "recommended")
            self.assertEqual((b["a"]["strength"], b["a"]["preferred"], b["a"]["choice"]), ("recommended", True, 1))
            self.assertEqual(b["b"], {"status": "blocked", "rule": "local_bev_surgery_56d/bev_surgery_56d",
                                      "by": "local_policy", "plugin": "local_bev_surgery_56d", "reason": b["reason"]})
            row = rows[c["line"] - 1]
            f = c["facts"]
            self.assertEqual(f["ecog"], row["ecog"])
            self.assertEqual(f["planned_surgery_in_days"], row["planned_surgery_in_days"])
            self.assertEqual(f["surgery"], "planned")
            for k in ("kras", "nras", "braf_v600e", "msi"):
                want = row.get("molecular", {}).get(k)
                self.assertEqual(f[k], None if want in (None, "unknown") else want, k)
            sites = [s["site"] for s in f["symptomatic_sites"]]
            want = (["primary"] if row.get("primary", {}).get("symptoms") else []) + \
                [m["site"] for m in row.get("metastases", []) if m.get("symptoms")]
            self.assertEqual(sites, want)
            # the fallback the protocol offers is there, as first choice
            added = [a for a in c["added"] if a["item"] == "FOLFIRI"]
            self.assertEqual([(a["a"], a["b"]["status"], a["b"]["choice"]) for a in added], [(None, "recommended", 1)])
            if c["line"] in in_page:
                self.assertRegex(page, r"<tr><td>%d</td><td>[^<]*</td><td>ECOG %d;[^<]*; planned surgery in %d days</td>"
                                 % (c["line"], row["ecog"], row["planned_surgery_in_days"]))
        self.assertTrue(any(c["line"] in in_page for c, _ in blocked))
        # "consider, second choice -> not offered" and a strength/choice change before -> after
        removed = [r for c in d["cases"] for r in c["removed"] if r["item"] == "FOLFIRI+cetuximab"]
        self.assertTrue(removed)
        self.assertEqual({(r["a"]["strength"], r["a"]["choice"], r["b"]) for r in removed}, {("consider", 2, None)})
        self.assertIn("<b>FOLFIRI+cetuximab</b> <small>removed</small>: consider, second choice (#2 in the plan)", page)
        self.assertIn(" &rarr; not offered", page)
        self.assertRegex(page, r"<b>FOLFIRI\+bevacizumab</b> <small>newly blocked</small>: recommended, first choice "
                               r"\(preferred\) \(#1 in the plan\)[^<]* &rarr; blocked by local_bev_surgery_56d/bev_surgery_56d "
                               r"\(local policy, plugin local_bev_surgery_56d\): Local policy: no bevacizumab")
        self.assertRegex(page, r"<td>ECOG [0-4]; KRAS [a-z_]+, NRAS [a-z_]+, BRAF V600E [a-z_]+, MSI [a-z_]+; symptoms: ")

    def test_a_long_plugin_id_is_named_whole(self):
        """A plugin id (256 bytes at most) and its rule names are kept whole:
        out.block composed "plugin/rule" in 160 bytes (the block then read
        as a kernel rule), diff and batch counted it under 200- and 300-byte
        keys."""
        here = root("examples", "local-protocol")
        with open(os.path.join(here, "local_bev_surgery_56d.lua")) as f:
            src = f.read()
        long_id = "local_bev_surgery_56d_" + "x" * 200
        long_rule = "bev_surgery_56d_" + "y" * 150
        for old in ('id = "local_bev_surgery_56d"', 'rule = "bev_surgery_56d"'):
            self.assertIn(old, src)
        plugin = tmp("long_id_plugin.lua")
        with open(plugin, "w") as f:
            f.write(src.replace('id = "local_bev_surgery_56d"', 'id = "%s"' % long_id, 1)
                       .replace('rule = "bev_surgery_56d"', 'rule = "%s"' % long_rule, 1))
        rule = long_id + "/" + long_rule
        html = tmp("diff-long-id.html")
        code, js, err = run("diff", "--a", PROTOCOL, "--b", LOCAL, "--b-plugin", plugin, "-f", "json", "--html", html,
                            os.path.join(here, "cohort.jsonl"))
        self.assertEqual(code, 0, err)
        d = json.loads(js)
        blocks = [b["b"] for c in d["cases"] for b in c["newly_blocked"]]
        self.assertTrue(blocks, "the plugin blocks someone in this cohort")
        self.assertEqual({(b["plugin"], b["rule"]) for b in blocks}, {(long_id, rule)})
        self.assertEqual([(b["plugin"], b["rule"]) for b in d["summary"]["newly_blocked"]], [(long_id, rule)])
        with open(html) as f:
            self.assertIn("(local policy, plugin %s)" % long_id, f.read())
        # batch's block counts name it whole too
        code, _, err = run("batch", "-q", "-p", LOCAL, "--plugin", plugin, "--summary", tmp("long-id-sum.json"),
                           os.path.join(here, "cohort.jsonl"))
        self.assertEqual(code, 0, err)
        with open(tmp("long-id-sum.json")) as f:
            self.assertIn("%s: FOLFIRI+bevacizumab" % rule, json.load(f)["blocks"])

    def test_patients_left_with_no_regimen_are_counted_and_listed(self):
        plugin = root("tests", "integration", "experiments", "fixtures", "no_irinotecan.lua")
        path = cohort(600, 5)
        # the truth, from the results themselves
        code, out, err = run("batch", "--plugin", plugin, path)
        self.assertEqual(code, 0, err)
        truth = [i + 1 for i, l in enumerate(lines_of(out))
                 if any(w["id"] == "no_systemic_regimen" for w in json.loads(l).get("warnings", []))]
        self.assertGreater(len(truth), 0, "the fixture leaves someone with no regimen")
        html = tmp("diff-nr.html")
        code, js, err = run("diff", "--a", PROTOCOL, "--b", PROTOCOL, "--b-plugin", plugin, "-f", "json", "-j", "2",
                            "--html", html, path)
        self.assertEqual(code, 0, err)
        d = json.loads(js)
        nr = d["summary"]["no_systemic_regimen"]
        self.assertEqual(nr["a"], {"cases": 0, "patients": []})
        self.assertEqual(nr["only_a"], {"cases": 0, "patients": []})
        for k in ("b", "only_b"):
            self.assertEqual(nr[k]["cases"], len(truth))
            self.assertEqual([p["line"] for p in nr[k]["patients"]], truth[:200])
        flagged = [c["line"] for c in d["cases"] if c["no_systemic_regimen"]["b"]]
        self.assertEqual(flagged, truth)
        self.assertTrue(all(c["no_systemic_regimen"]["a"] is False for c in d["cases"]))
        with open(html) as f:
            page = f.read()
        self.assertIn("Patients left with no systemic regimen", page)
        self.assertIn("<tr><td>under B but not under A (the change leaves them with none)</td><td class=\"n\">%d</td>"
                      % len(truth), page)
        # the other way round: the change gives them one
        code, js, err = run("diff", "--a", PROTOCOL, "--a-plugin", plugin, "--b", PROTOCOL, "-f", "json", "-s", path)
        self.assertEqual(code, 0, err)
        nr = json.loads(js)["summary"]["no_systemic_regimen"]
        self.assertEqual((nr["a"]["cases"], nr["only_a"]["cases"], nr["b"]["cases"]), (len(truth), len(truth), 0))

    def test_summary_keys_are_identifiers(self):
        code, js, err = run("diff", "--a", PROTOCOL, "--b", LOCAL, "--b-plugin", BEV60, "-f", "json",
                            cohort(3000, 12, "--invalid", "2"))
        self.assertEqual(code, 0, err)
        s = json.loads(js)["summary"]
        bad = []

        def walk(o):
            if isinstance(o, dict):
                bad.extend(k for k in o if not re.fullmatch(r"[a-z][a-z0-9_]*", k))
                for v in o.values():
                    walk(v)
            elif isinstance(o, list):
                for v in o:
                    walk(v)
        walk(s)
        self.assertEqual(bad, [])
        self.assertEqual([set(r) for r in s["newly_blocked"]], [{"item", "rule", "plugin", "cases"}] * len(s["newly_blocked"]))
        self.assertIn(("FOLFIRI+bevacizumab", "local_bev_surgery_60d/bev_surgery_60d", "local_bev_surgery_60d"),
                      [(r["item"], r["rule"], r["plugin"]) for r in s["newly_blocked"]])
        self.assertTrue(any(e["side"] == "both" and e["status"] == "input" and e["field"] for e in s["errors"]), s["errors"])
        self.assertTrue(s["modified"], "the run modifies some item (else the shape check below checks nothing)")
        self.assertTrue(all(set(m) == {"item", "fields", "cases"} for m in s["modified"]))

    def test_header_provenance_and_references(self):
        """Issue 11: the report's header names each side's protocol (id, version,
        sha256, the base it extends) and plugins (id, version, sha256); its
        references section shows the texts, a plugin's [6] included."""
        plugin = root("tests", "integration", "experiments", "fixtures", "no_irinotecan.lua")
        html = tmp("diff-head.html")
        code, js, err = run("diff", "--a", PROTOCOL, "--a-plugin", plugin, "--b", LOCAL, "-f", "json", "-s",
                            "--html", html, cohort(200, 3))
        self.assertEqual(code, 0, err)
        d = json.loads(js)
        with open(html) as f:
            page = f.read()
        head = page[page.index('<h2 id="provenance">'):page.index("<h2>Summary</h2>")]

        def sha(p):
            with open(p, "rb") as f:
                return hashlib.sha256(f.read()).hexdigest()
        base = d["b"]["protocol"]["extends"]
        self.assertEqual(base["id"], "mrc_second_line")
        for text in ("<code>mrc_second_line</code> version <code>1.0.0</code>", sha(PROTOCOL),
                     "<code>mrc_second_line_local</code>", d["b"]["protocol"]["version"], sha(LOCAL),
                     "extends <code>mrc_second_line</code>", base["sha256"],
                     "plugin <code>no_irinotecan</code> version <code>2026.03-test</code>", sha(plugin)):
            self.assertIn(text, head)
        self.assertEqual(d["a"]["protocol"]["plugins"][0]["sha256"], sha(plugin))
        refs = page[page.index('<h2 id="references">'):]
        local6 = {r["number"]: r["text"] for r in d["b"]["references"]}[6]
        self.assertIn("<tr><td>[6]</td><td>Institutional policy 2026-03 (test): irinotecan off the formulary</td><td>%s</td></tr>"
                      % local6, refs)
        self.assertIn("<tr><td>[1]</td><td>Guideline reference 1", refs)
        self.assertEqual({r["number"] for r in d["a"]["references"]}, {1, 2, 3, 4, 5, 6})
        self.assertIn({"number": 6, "text": "Institutional policy 2026-03 (test): irinotecan off the formulary"},
                      d["a"]["references"])

    def test_identical_sides_do_not_change(self):
        code, out, err = run("diff", "--a", PROTOCOL, "--b", PROTOCOL, "-f", "json", cohort(1000, 2))
        self.assertEqual(code, 0, err)
        s = json.loads(out)["summary"]
        self.assertEqual((s["changed"], s["unchanged"]), (0, 1000))

    def test_a_plugin_alone(self):
        code, out, err = run("diff", "--a", PROTOCOL, "--b", PROTOCOL, "--b-plugin", BEV60, "-s", cohort(3000, 12))
        self.assertEqual(code, 0, err)
        self.assertIn("+ plugin local_bev_surgery_60d.lua", out)
        self.assertNotRegex(out, r"^line ", "summary only")
        self.assertRegex(out, r"newly blocked +[1-9]")
        self.assertRegex(out, r"removed +0 ")

    def test_usage(self):
        self.assertEqual(run("diff", "--help")[0], 0)
        for argv in ([], ["--a", PROTOCOL, "x"], ["--a", PROTOCOL, "--b", PROTOCOL], ["--a", PROTOCOL, "--b", PROTOCOL, "-f", "xml", "x"]):
            self.assertEqual(run("diff", *argv)[0], 64, argv)
        self.assertEqual(run("diff", "--a", PROTOCOL, "--b", "/nonexistent.lua", "x")[0], 66)
        self.assertEqual(run("diff", "--a", PROTOCOL, "--b", PROTOCOL, "/nonexistent.jsonl")[0], 66)


class Coverage(unittest.TestCase):
    def tiny_cohort(self):
        path = tmp("tiny.jsonl")
        with open(path, "w") as f:
            f.write('{"ecog":0,"metastatic":true}\n{"ecog":1}\n{"metastatic":true}\n{"ecog":9}\n')
        return path

    def test_exact_on_a_known_protocol(self):
        code, out, err = run("check", "--coverage", TINY, self.tiny_cohort())
        self.assertEqual(code, 0, err)
        self.assertIn("3 evaluated, 1 failed", out)
        self.assertIn("10 of 12 active lines ran: 83.3%", out)
        self.assertIn("2 of 4 if/elseif/else arms ran: 50.0%", out)
        never = re.findall(r"^ +(\d+)  (.*)$", out.split("lines that never ran")[1].split("branches never")[0], re.M)
        self.assertEqual(never, [("14", 'out.note("poor performance status")'), ("31", 'out.note("not metastatic")')])
        self.assertRegex(out, r"13  elseif \(if at 11\) body from line 14")
        self.assertRegex(out, r"30  if +body from line 31")
        code, js, _ = run("check", "--coverage", "--format", "json", TINY, self.tiny_cohort())
        d = json.loads(js)
        self.assertEqual((d["lines"]["active"], d["lines"]["ran"]), (12, 10))
        self.assertEqual([l["line"] for l in d["lines"]["never_ran"]], [14, 31])
        self.assertEqual((d["branches"]["arms"], d["branches"]["covered"]), (4, 2))
        self.assertEqual([(a["kind"], a["count"]) for a in d["branches"]["list"]],
                         [("if", 1), ("elseif", 0), ("else", 2), ("if", 0)])
        self.assertNotIn("7", d["lines"]["counts"], "unreachable function not counted")
        self.assertEqual(d["cases"]["by_status"], {"input": 1})

    def test_thresholds(self):
        c = self.tiny_cohort()
        self.assertEqual(run("check", "--coverage", "--threshold", "80", TINY, c)[0], 0)
        code, out, err = run("check", "--coverage", "--threshold", "90", TINY, c)
        self.assertEqual(code, 1)
        self.assertIn("line coverage 83.3% is below the threshold 90%", err)
        self.assertEqual(run("check", "--coverage", "--branch-threshold", "50", TINY, c)[0], 0)
        self.assertEqual(run("check", "--coverage", "--branch-threshold", "51", TINY, c)[0], 1)
        code, js, _ = run("check", "--coverage", "-f", "json", "--threshold", "90", TINY, c)
        self.assertEqual(code, 1)
        self.assertFalse(json.loads(js)["threshold"]["passed"])

    def test_failing_cases_fail_whatever_the_threshold(self):
        c = tmp("raising.jsonl")
        with open(c, "w") as f:
            f.write('{"ecog":0,"metastatic":true}\n{"ecog":4}\n{"ecog":3}\n{"ecog":4}\n')
        code, out, err = run("check", "--coverage", "--threshold", "0", RAISING, c)
        self.assertEqual(code, 1, err)
        self.assertIn("the protocol failed on 3 of 4 cases", err)
        self.assertRegex(err, r"raising\.jsonl:2: protocol: .*raising_protocol\.lua:13: deliberate failure")
        self.assertRegex(err, r"raising\.jsonl:3: budget: .*raising_protocol\.lua:16: instruction budget")
        code, js, _ = run("check", "--coverage", "-f", "json", RAISING, c)
        self.assertEqual(code, 1)
        self.assertFalse(json.loads(js)["threshold"]["passed"])

    def test_default_protocol_and_rules(self):
        code, js, err = run("check", "--coverage", "-f", "json", PROTOCOL, cohort(5000, 11))
        self.assertEqual(code, 0, err)
        d = json.loads(js)
        self.assertEqual(d["cases"]["evaluated"], 5000)
        self.assertGreater(d["lines"]["percent"], 90)
        self.assertGreater(d["branches"]["percent"], 85)
        code, rules, _ = run("rules", "--format", "json")
        ids = [r["id"] for r in json.loads(rules)]
        self.assertEqual([r["id"] for r in d["rules"]][:len(ids)], ids)
        fired = {r["id"]: r for r in d["rules"]}
        self.assertGreater(fired["egfr_requires_ras_wt"]["items"], 0)
        for r in d["rules"]:
            self.assertLessEqual(r["cases"], r["items"])
        # the same counts whatever the threads
        code, js1, _ = run("check", "--coverage", "-f", "json", "-j", "1", PROTOCOL, cohort(5000, 11))
        self.assertEqual(json.loads(js1)["lines"], d["lines"])
        self.assertEqual(json.loads(js1)["rules"], d["rules"])

    def test_plugin_rules_are_counted(self):
        code, out, err = run("check", "--coverage", "--plugin", BEV60, PROTOCOL, cohort(3000, 12))
        self.assertEqual(code, 0, err)
        self.assertRegex(out, r"local_bev_surgery_60d/bev_surgery_60d +[1-9]")

    def test_annotate_and_usage(self):
        code, out, _ = run("check", "--coverage", "--annotate", TINY, self.tiny_cohort())
        self.assertEqual(code, 0)
        self.assertRegex(out, r"#####: +14:")
        self.assertRegex(out, r" -: +7:   return 1")
        self.assertIn("usage: pathwise check --coverage", run("check", "--coverage", "--help")[1])
        self.assertEqual(run("check", "--coverage", TINY)[0], 64)
        self.assertEqual(run("check", "--coverage", "--threshold", "150", TINY, "x")[0], 64)
        self.assertEqual(run("check", "--coverage", TINY, "/nonexistent.jsonl")[0], 66)
        # plain check is untouched
        self.assertEqual(run("check", PROTOCOL)[0], 0)


class Plugins(unittest.TestCase):
    ROGUE_ATTEMPTS = ["unblock", "write_item", "remove", "replace", "recommend", "pathway", "write_fact",
                      "rewrite_out", "metatable", "tamper_string", "tamper_items", "global"]

    def kras_mutant_cetuximab(self, pid):
        with open(root("examples", "cases", "kras_mutant_proposed_cetuximab.json")) as f:
            facts = json.load(f)
        facts["patient_id"] = pid
        return json.dumps(facts)

    def test_rogue_plugin_is_refused_by_eval(self):
        for attempt in self.ROGUE_ATTEMPTS:
            code, out, err = run("eval", "--plugin", ROGUE, "-f", "json", "-",
                                 stdin=self.kras_mutant_cetuximab("rogue-" + attempt).encode())
            self.assertEqual(code, 70, attempt)
            self.assertEqual(out, "")
            self.assertIn("plugin rogue:", err)

    def test_rogue_plugin_leaves_nothing_behind_in_batch(self):
        rows = []
        for attempt in self.ROGUE_ATTEMPTS:
            rows.append(self.kras_mutant_cetuximab("rogue-" + attempt))
            rows.append(self.kras_mutant_cetuximab("clean-after-" + attempt))
        with open(cohort(300, 13)) as f:
            rows += f.read().split("\n")[:-1]
        src = ("\n".join(rows) + "\n").encode()
        code, out, err = run("batch", "-q", "-j", "1", "--plugin", ROGUE, "-", stdin=src)
        self.assertEqual(code, 0, err)
        plain = lines_of(run("batch", "-q", "-j", "1", "-", stdin=src)[1])
        got = lines_of(out)
        self.assertEqual(len(got), len(plain))
        for i, (g, p) in enumerate(zip(got, plain)):
            if i < 2 * len(self.ROGUE_ATTEMPTS) and i % 2 == 0:
                rec = json.loads(g)
                self.assertEqual(rec["error"]["status"], "protocol")
                self.assertRegex(rec["error"]["message"], r"plugins may only tighten|read-only|protected metatable")
            else:
                # the same decision; the result names the plugin it ran with (provenance)
                gd = json.loads(g)
                self.assertEqual([x["id"] for x in gd["protocol"].pop("plugins")], ["rogue"])
                self.assertEqual(gd, json.loads(p), "line %d decides as without the plugin" % (i + 1))
        self.assertIn('"rule":"egfr_requires_ras_wt"', got[1])

    def test_tightening_plugin_in_eval_and_batch(self):
        with open(root("examples", "local-protocol", "cases", "surgery_in_50_days.json")) as f:
            facts = f.read()
        code, out, err = run("eval", "-f", "json", "--plugin", BEV60, "-", stdin=facts.encode())
        self.assertEqual(code, 0, err)
        r = json.loads(out)
        rules = {b["id"]: b["rule"] for b in r["blocked"]}
        self.assertEqual(rules.get("FOLFIRI+bevacizumab"), "local_bev_surgery_60d/bev_surgery_60d")
        self.assertEqual(rules.get("bevacizumab"), "local_bev_surgery_60d/bev_surgery_60d")
        code, out, err = run("batch", "--summary", tmp("plug.json"), "--plugin", BEV60, "--plugin", BRAIN,
                             cohort(3000, 12))
        self.assertEqual(code, 0, err)
        with open(tmp("plug.json")) as f:
            s = json.load(f)
        self.assertTrue(any(k.startswith("local_bev_surgery_60d/bev_surgery_60d: ") for k in s["blocks"]))
        self.assertTrue(any('"local_brain_mets_mdt"' in l for l in lines_of(out)))

    def test_example_plugins_load_with_both_protocols(self):
        for proto in (PROTOCOL, LOCAL):
            code, out, err = run("check", "--plugin", BEV60, "--plugin", BRAIN, proto)
            self.assertEqual(code, 0, err)


def main():
    global ARGS, TMP, PROTOCOL, LOCAL, BEV60, BRAIN, ROGUE, TINY, RAISING
    ap = argparse.ArgumentParser()
    ap.add_argument("--pathwise", required=True)
    ap.add_argument("--root", required=True)
    ARGS, rest = ap.parse_known_args()
    ARGS.pathwise = os.path.abspath(ARGS.pathwise)
    ARGS.root = os.path.abspath(ARGS.root)
    PROTOCOL = root("scripts", "mrc_second_line.lua")
    LOCAL = root("examples", "local-protocol", "mrc_second_line_local.lua")
    BEV60 = root("plugins", "local_bev_surgery_60d.lua")
    BRAIN = root("plugins", "local_brain_mets_mdt.lua")
    ROGUE = root("tests", "plugins", "rogue.lua")
    TINY = root("tests", "integration", "experiments", "fixtures", "tiny_protocol.lua")
    RAISING = root("tests", "integration", "experiments", "fixtures", "raising_protocol.lua")
    os.environ.pop("PATHWISE_PROTOCOL", None)
    TMP = tempfile.mkdtemp(prefix="pw-exp-")
    try:
        unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
    finally:
        shutil.rmtree(TMP, ignore_errors=True)


if __name__ == "__main__":
    main()
