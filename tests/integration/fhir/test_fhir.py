#!/usr/bin/env python3
"""FHIR input: `pathwise facts --from fhir` and `pathwise eval --from fhir`.

- the three real bundles (tests/data/fhir/real) give, byte for byte, the
  facts, sources and unmapped lists written by hand before the adapter
  (tests/data/fhir/expected);
- each colorectal bundle (tests/data/fhir/colorectal) gives the plain facts
  of the same patient in examples/, less what FHIR does not carry here
  (NOT_CARRIED), and evaluates to the same decision as those plain facts;
- the adapter's rules (one patient, entered-in-error, latest result, as-of,
  wild type only when reported, medication lists never complete, codes not
  displays, ambiguous ICD-10-CM codes), the limits and the refusals.
"""
import argparse
import copy
import glob
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

ARGS = None
LOINC, SCT, ICD = "http://loinc.org", "http://snomed.info/sct", "http://hl7.org/fhir/sid/icd-10-cm"
HGNC, RX = "http://www.genenames.org/geneId", "http://www.nlm.nih.gov/research/umls/rxnorm"
REAL = {"ctm-app__TrialMatching_Patient01": "2019-06-15",
        "genomics-reporting__Bundle-oncology-diagnostic": "2020-12-01",
        "genomics-reporting__Bundle-oncology-report-example": "2020-12-01"}
COLORECTAL = {"index_case": "index_case.json", "ras_wild_type": "cases/ras_wild_type.json",
              "kras_mutant": "cases/kras_mutant_proposed_cetuximab.json", "braf_v600e": "cases/braf_v600e.json",
              "msi_high": "cases/msi_high.json", "prior_groin_rt": "cases/symptomatic_nodes_prior_groin_rt.json",
              "surgery_in_30_days": "cases/surgery_in_30_days.json"}
AS_OF = "2026-06-01"


def root(*parts):
    return os.path.join(ARGS.root, *parts)


def run(*argv, stdin=None):
    p = subprocess.run([ARGS.pathwise, *argv], input=stdin, capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def facts_json(path, as_of=AS_OF, *extra):
    code, out, err = run("facts", "--from", "fhir", "--as-of", as_of, "--format", "json", *extra, path)
    assert code == 0, (path, code, err)
    return json.loads(out)


def write_temp(doc):
    f = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    f.write(doc if isinstance(doc, str) else json.dumps(doc))
    f.close()
    return f.name


def cc(system, code, display=None):
    c = {"system": system, "code": code}
    if display:
        c["display"] = display
    return {"coding": [c]}


def bundle(*resources, patient="p1"):
    entries = [{"fullUrl": "urn:uuid:pt", "resource": {"resourceType": "Patient", "id": patient}}]
    for i, r in enumerate(resources):
        r = dict(r)
        r.setdefault("subject", {"reference": "Patient/" + patient})
        entries.append({"fullUrl": "urn:uuid:r%d" % i, "resource": r})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def obs(code, date="2026-05-01", status="final", **kw):
    r = {"resourceType": "Observation", "status": status, "code": code, "effectiveDateTime": date}
    r.update(kw)
    return r


def variant(gene, pres="LA9633-4", protein=None, **kw):
    comps = [{"code": cc(LOINC, "48018-6"), "valueCodeableConcept": cc(HGNC, gene[0], gene[1] if len(gene) > 1 else None)}]
    if protein:
        comps.append({"code": cc(LOINC, "48005-3"), "valueCodeableConcept": cc("http://varnomen.hgvs.org", protein)})
    return obs(cc(LOINC, "69548-6"), valueCodeableConcept=cc(LOINC, pres), component=comps, **kw)


def adapt(*resources, as_of=AS_OF, patient="p1"):
    return facts_json(write_temp(bundle(*resources, patient=patient)), as_of)


def refused(doc, *extra):
    code, out, err = run("facts", "--from", "fhir", "--as-of", AS_OF, "--format", "json", *extra, write_temp(doc))
    return code, err


def whys(result):
    return [u["why"] for u in result["unmapped"]]


class RealBundles(unittest.TestCase):
    def adapter_sha(self):
        src = b""
        for name in ("adapter.lua", "codes.lua"):
            with open(root("plugins", "fhir", name), "rb") as f:
                src += f.read()
        return hashlib.sha256(src).hexdigest()

    def test_expected_byte_for_byte(self):
        for name, as_of in REAL.items():
            path = root("tests", "data", "fhir", "real", name + ".json")
            code, out, err = run("facts", "--from", "fhir", "--as-of", as_of, "--format", "json", path)
            self.assertEqual(code, 0, err)
            with open(root("tests", "data", "fhir", "expected", name + ".json")) as f:
                expected = f.read()
            self.assertIn('"sha256":"*"', expected)
            expected = expected.replace('"sha256":"*"', '"sha256":"%s"' % self.adapter_sha())
            self.assertEqual(out, expected, name)

    def test_text_names_every_source_and_unmapped(self):
        for name, as_of in REAL.items():
            path = root("tests", "data", "fhir", "real", name + ".json")
            code, out, _ = run("facts", "--from", "fhir", "--as-of", as_of, "--format", "text", path)
            self.assertEqual(code, 0)
            self.assertIn("as of " + as_of, out)
            doc = facts_json(path, as_of)
            for s in doc["sources"]:
                self.assertIn("%s = %s  <- %s" % (s["fact"], s["value"], s["ref"]), out)
            for u in doc["unmapped"]:
                self.assertIn(u["why"], out)

    def test_eval_states_as_of_sources_unmapped(self):
        for name, as_of in REAL.items():
            path = root("tests", "data", "fhir", "real", name + ".json")
            code, out, err = run("eval", "--from", "fhir", "--as-of", as_of, "--format", "json", path)
            self.assertEqual(code, 0, err)
            res = json.loads(out)
            self.assertEqual(res["input"]["as_of"], as_of)
            self.assertEqual(res["input"], facts_json(path, as_of))
            self.assertIn("recommendations", res)
            for fmt in (["--format", "text"], ["--format", "text", "--trace"]):
                code, out, _ = run("eval", "--from", "fhir", "--as-of", as_of, *fmt, path)
                self.assertEqual(code, 0)
                self.assertIn("FHIR INPUT", out)
                self.assertIn("as of " + as_of, out)
                self.assertIn("not mapped", out)
            code, out, _ = run("eval", "--from", "fhir", "--as-of", as_of, "--format", "json", "--trace", path)
            res = json.loads(out)
            sources = res["input"]["sources"]
            self.assertTrue(sources)
            # --trace opens with the basis of each fact
            for s, t in zip(sources, res["trace"]):
                self.assertTrue(t["text"].startswith("FHIR: %s = %s from %s" % (s["fact"], s["value"], s["ref"])), t)
            self.assertEqual(res["trace"][len(sources)]["text"].startswith("FHIR:"), False)

    def test_default_as_of_is_today_and_ecog_goes_stale(self):
        path = root("tests", "data", "fhir", "real", "ctm-app__TrialMatching_Patient01.json")
        code, out, _ = run("facts", "--from", "fhir", "--format", "json", path)
        self.assertEqual(code, 0)
        doc = json.loads(out)
        self.assertRegex(doc["as_of"], r"^\d{4}-\d\d-\d\d$")
        self.assertNotIn("ecog", doc["facts"])
        self.assertTrue(any("stale" in w for w in whys(doc)), whys(doc))
        self.assertEqual(facts_json(path, "2019-06-15")["facts"]["ecog"], 1)

    def test_plain_mode_refuses_fhir(self):
        for name in REAL:
            path = root("tests", "data", "fhir", "real", name + ".json")
            code, out, err = run("eval", path)
            self.assertEqual(code, 65, err)
            self.assertIn("resourceType 'Bundle'", err)
            self.assertIn("--from fhir", err)
            self.assertEqual(out, "")
        code, _, err = run("eval", write_temp({"resourceType": "Observation", "status": "final"}))
        self.assertEqual((code, "resourceType 'Observation'" in err), (65, True))


def project(plain):
    """The plain facts, less what these FHIR bundles do not carry: symptoms
    (never inferred), neuropathy (not mapped yet), regimen line (a list is
    never complete, so no line number can be counted),
    proposed orders (not patient data), "no surgery planned" (never
    concluded from absence) and "unknown" values (same as absent)."""
    f = copy.deepcopy(plain)
    f.pop("neuropathy", None)
    f.pop("proposed_orders", None)
    if f.get("planned_surgery_in_days") is None:
        f.pop("planned_surgery_in_days", None)
    f.get("primary", {}).pop("symptoms", None)
    for m in f.get("metastases", []):
        m.pop("symptoms", None)
    for r in f.get("prior_regimens", []):
        r.pop("line", None)
    mol = {k: v for k, v in f.get("molecular", {}).items() if v != "unknown"}
    if mol:
        f["molecular"] = mol
    else:
        f.pop("molecular", None)
    return f


NOT_CARRIED = "symptoms, neuropathy, regimen line, proposed orders, 'no surgery planned'"


class Colorectal(unittest.TestCase):
    def test_same_patient_as_plain_facts(self):
        for name, plain_path in COLORECTAL.items():
            bundle_path = root("tests", "data", "fhir", "colorectal", name + ".json")
            self.assertTrue(os.path.exists(bundle_path), bundle_path)
            with open(root("examples", plain_path)) as f:
                plain = json.load(f)
            derived = facts_json(bundle_path)
            self.assertEqual(derived["facts"], project(plain), "%s (not carried: %s)" % (name, NOT_CARRIED))
            # every derived fact has a source
            facts = {s["fact"].split("[")[0].split(".")[0] for s in derived["sources"]}
            self.assertEqual(facts, set(derived["facts"]) | ({"primary"} if "primary" in derived["facts"] else set()))

    def test_same_decision_as_plain_facts(self):
        for name, plain_path in COLORECTAL.items():
            bundle_path = root("tests", "data", "fhir", "colorectal", name + ".json")
            with open(root("examples", plain_path)) as f:
                plain = project(json.load(f))
            code, out, err = run("eval", "--from", "fhir", "--as-of", AS_OF, "--format", "json", bundle_path)
            self.assertEqual(code, 0, err)
            via_fhir = json.loads(out)
            code, out, err = run("eval", "--format", "json", write_temp(plain))
            self.assertEqual(code, 0, err)
            direct = json.loads(out)
            self.assertEqual(via_fhir.pop("input")["as_of"], AS_OF)
            self.assertEqual(via_fhir, direct, name)

    def test_bundles_are_what_the_generator_writes(self):
        with tempfile.TemporaryDirectory() as out:
            gen = root("tests", "data", "fhir", "colorectal", "make_bundles.py")
            p = subprocess.run([sys.executable, gen, "--out", out], capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stderr)
            for name in COLORECTAL:
                with open(os.path.join(out, name + ".json")) as a, \
                        open(root("tests", "data", "fhir", "colorectal", name + ".json")) as b:
                    self.assertEqual(a.read(), b.read(), name + ": regenerate with make_bundles.py")

    def test_what_if_on_derived_facts(self):
        path = root("tests", "data", "fhir", "colorectal", "index_case.json")
        code, out, err = run("eval", "--from", "fhir", "--as-of", AS_OF, "--what-if", "--format", "json", path)
        self.assertEqual(code, 0, err)
        res = json.loads(out)
        self.assertIn("what_if", res)
        self.assertEqual(res["input"]["as_of"], AS_OF)
        code, out, _ = run("eval", "--from", "fhir", "--as-of", AS_OF, "--what-if", "--format", "text", path)
        self.assertEqual(code, 0)
        self.assertIn("WHAT WOULD CHANGE THE PLAN", out)
        self.assertIn("FHIR INPUT", out)

    def test_shapes_exercised(self):
        docs = {}
        for n in COLORECTAL:
            with open(root("tests", "data", "fhir", "colorectal", n + ".json")) as f:
                docs[n] = json.load(f)
        self.assertEqual({d.get("type") for d in docs.values()} - {None}, {"collection", "transaction", "searchset"})
        self.assertNotIn("resourceType", docs["surgery_in_30_days"])          # a CDS Hooks prefetch object
        kras = facts_json(root("tests", "data", "fhir", "colorectal", "kras_mutant.json"))
        refs = [s["ref"] for s in kras["sources"] if s["fact"] == "molecular.kras"]
        self.assertTrue(refs[0].startswith("urn:uuid:case-kras"), refs)        # no id, non-UUID fullUrl
        self.assertIn("p.Gly12Asp", kras["sources"][[s["fact"] for s in kras["sources"]].index("molecular.kras")]["note"])
        idx = facts_json(root("tests", "data", "fhir", "colorectal", "index_case.json"))
        self.assertIn("entered in error: ignored", whys(idx))
        self.assertIn("status 'preliminary': not used", whys(idx))
        self.assertTrue(any("superseded by Observation/ecog-now" in w for w in whys(idx)))


class Rules(unittest.TestCase):
    def test_mixed_patients_refused(self):
        b = bundle(obs(cc(LOINC, "89247-1"), valueInteger=1))
        b["entry"].append({"fullUrl": "urn:uuid:x", "resource": {"resourceType": "Observation", "status": "final",
                           "code": cc(LOINC, "89247-1"), "valueInteger": 2, "subject": {"reference": "Patient/other"}}})
        code, err = refused(b)
        self.assertEqual(code, 65)
        self.assertIn("mixed patients", err)
        b["entry"].append({"fullUrl": "urn:uuid:p2", "resource": {"resourceType": "Patient", "id": "other"}})
        code, err = refused(b)
        self.assertEqual(code, 65)
        self.assertIn("more than one patient", err)

    def test_ecog_5_and_deceased_refused(self):
        code, err = refused(bundle(obs(cc(LOINC, "89247-1"), valueCodeableConcept=cc(LOINC, "LA9627-6"))))
        self.assertEqual(code, 65)
        self.assertIn("ECOG 5", err)
        b = bundle()
        b["entry"][0]["resource"]["deceasedBoolean"] = True
        code, err = refused(b)
        self.assertEqual((code, "deceased" in err), (65, True))

    def test_latest_result_wins_and_same_day_conflict_is_unknown(self):
        r = adapt(variant(("HGNC:6407",), "LA9634-2", date="2026-01-01"),
                  variant(("HGNC:6407",), protein="p.G12C", date="2026-03-01"))
        self.assertEqual(r["facts"]["molecular"], {"kras": "mutant"})
        self.assertTrue(any("superseded" in w for w in whys(r)))
        r = adapt(variant(("HGNC:6407",), "LA9634-2"), variant(("HGNC:6407",), protein="p.G12C"))
        self.assertNotIn("molecular", r["facts"])
        self.assertTrue(any("disagree" in w for w in whys(r)))

    def test_after_as_of_ignored_and_surgery_days_follow_as_of(self):
        r = adapt(obs(cc(LOINC, "89247-1"), date="2026-07-01", valueInteger=0))
        self.assertNotIn("ecog", r["facts"])
        self.assertTrue(any("after the as-of date" in w for w in whys(r)))
        path = root("tests", "data", "fhir", "colorectal", "surgery_in_30_days.json")
        self.assertEqual(facts_json(path, "2026-06-11")["facts"]["planned_surgery_in_days"], 20)
        later = facts_json(path, "2026-07-02")
        self.assertNotIn("planned_surgery_in_days", later["facts"])
        self.assertTrue(any("before the as-of date" in w for w in whys(later)))

    def test_wild_type_only_when_reported(self):
        r = adapt(variant(("HGNC:7989",), protein="p.Gln61Lys"))
        self.assertEqual(r["facts"]["molecular"], {"nras": "mutant"})       # KRAS, BRAF not mentioned: unknown
        r = adapt(variant(("HGNC:1097",), protein="p.Gly469Ala"))
        self.assertNotIn("molecular", r["facts"])                          # BRAF non-V600E: V600E not reported
        self.assertTrue(any("is not V600E" in w for w in whys(r)))
        r = adapt(variant(("HGNC:1097",), protein="p.Val600Glu"))
        self.assertEqual(r["facts"]["molecular"], {"braf_v600e": "mutant"})

    def test_codes_not_displays(self):
        r = adapt(variant(("HGNC:6342", "NRAS"), protein="p.D816V"))       # KIT labelled NRAS
        self.assertNotIn("molecular", r["facts"])
        self.assertIn("gene HGNC:6342 is not one the guideline uses (KRAS, NRAS, BRAF)", whys(r))
        r = adapt(variant(("HGNC:6407", "KIT"), "LA9634-2"))               # KRAS labelled KIT
        self.assertEqual(r["facts"]["molecular"], {"kras": "wild_type"})
        r = adapt(obs({"coding": [{"display": "ECOG performance status"}]}, valueInteger=1))
        self.assertNotIn("ecog", r["facts"])

    def test_msi_low_reads_as_mss_with_a_note(self):
        r = adapt(obs(cc(LOINC, "81695-9"), valueCodeableConcept=cc(LOINC, "LA26202-4")))
        self.assertEqual(r["facts"]["molecular"], {"msi": "mss"})
        self.assertIn("MSI-low", r["sources"][-1]["note"])

    def test_medication_list_never_complete(self):
        med = {"resourceType": "MedicationStatement", "status": "completed", "effectiveDateTime": "2025-01-01"}
        r = adapt(dict(med, medicationCodeableConcept=cc(RX, "253337")),
                  dict(med, medicationCodeableConcept=cc(RX, "51499")))
        self.assertNotIn("prior_regimens", r["facts"])
        self.assertTrue(any("never taken as complete" in w for w in whys(r)))
        r = adapt(dict(med, medicationCodeableConcept=cc(RX, "575971")),   # Eloxatin: product -> oxaliplatin
                  dict(med, medicationCodeableConcept=cc(RX, "194000"), status="active"))
        self.assertEqual(r["facts"]["prior_regimens"], [{"name": "CAPOX", "outcome": "ongoing"}])

    def test_ambiguous_icd_code_says_so(self):
        cond = {"resourceType": "Condition", "code": cc(ICD, "C78.6")}
        r = adapt(cond)
        self.assertNotIn("metastases", r["facts"])
        self.assertIn("code covers more than one of the guideline's sites (retroperitoneal, peritoneum): give bodySite",
                      whys(r))
        r = adapt(dict(cond, bodySite=[cc(SCT, "15425007")]))
        self.assertEqual(r["facts"]["metastases"], [{"site": "peritoneum"}])

    def test_radiotherapy_laterality(self):
        lat = {"extension": [{"url": "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-laterality-qualifier",
                              "valueCodeableConcept": cc(SCT, "7771000")}]}
        site = cc(SCT, "26893007")
        site.update(lat)
        r = adapt({"resourceType": "Procedure", "status": "completed", "code": cc(SCT, "1217123003"),
                   "performedDateTime": "2025-01-01", "bodySite": [site]})
        self.assertEqual(r["facts"]["prior_radiation_sites"], ["left groin"])


class Limits(unittest.TestCase):
    def test_limits_named_and_configurable(self):
        path = root("tests", "data", "fhir", "real", "genomics-reporting__Bundle-oncology-report-example.json")
        code, _, err = run("facts", "--from", "fhir", "--max-members", "16", path)
        self.assertEqual(code, 0, err)                                      # 16 entries: at the limit
        code, _, err = run("facts", "--from", "fhir", "--max-members", "15", path)
        self.assertEqual(code, 65)
        self.assertIn("more than 15", err)
        self.assertIn("FHIR input limits", err)
        code, _, err = run("facts", "--from", "fhir", "--max-input", "4096", path)
        self.assertEqual(code, 65)
        self.assertIn("over the limit of 4096", err)

    def test_default_limits_fit_a_large_prefetch(self):
        many = [obs(cc(LOINC, "8302-2"), valueQuantity={"value": 170, "unit": "cm"}) for _ in range(5000)]
        b = bundle(*many)
        text = json.dumps(b)
        self.assertGreater(len(text), 1 << 20)                             # over the facts gate's 1 MiB
        code, out, err = run("facts", "--from", "fhir", "--as-of", AS_OF, "--format", "json", write_temp(text))
        self.assertEqual(code, 0, err)
        self.assertEqual(len(json.loads(out)["unmapped"]), 5000)

    def test_usage(self):
        path = root("tests", "data", "fhir", "real", "ctm-app__TrialMatching_Patient01.json")
        self.assertEqual(run("facts", path)[0], 64)                        # --from required
        self.assertEqual(run("facts", "--from", "hl7v2", path)[0], 64)
        code, _, err = run("facts", "--from", "fhir", "--as-of", "2026-02-30", path)
        self.assertEqual(code, 64)
        self.assertIn("--as-of", err)
        self.assertEqual(run("facts", "--from", "fhir", "/nonexistent.json")[0], 66)
        code, out, _ = run("facts", "--help")
        self.assertEqual((code, "usage: pathwise facts" in out), (0, True))


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--pathwise", required=True)
    p.add_argument("--root", required=True)
    ARGS, rest = p.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=1)


if __name__ == "__main__":
    main()
