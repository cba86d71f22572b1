#!/usr/bin/env python3
"""Build the colorectal FHIR R4 bundles (mCODE-profiled) for the guideline's
cases: each is the same patient as a plain-facts example in examples/ (named
in CASES), written the way an EHR would hold it. Run from anywhere; writes
the *.json bundles next to this file (committed; the tests read those).

The shapes vary on purpose, to exercise the adapter's rules: resources with
and without ids, urn:uuid, absolute-URL and non-UUID fullUrls, references by
fullUrl and by Type/id, collection/transaction/searchset bundles and one CDS
Hooks prefetch object, codes in SNOMED CT and ICD-10-CM, a metastasis coded
by an ICD-10-CM code that covers two sites resolved by bodySite, genes by
HGNC code with one- and three-letter protein changes, single-gene tests,
medications as Statement, Request and Administration (one product code),
entered-in-error and preliminary results that must be ignored, and an older
ECOG superseded by a newer one. As-of date for all: 2026-06-01.
"""
import json, os, zlib

HERE = os.path.dirname(os.path.abspath(__file__))
AS_OF = "2026-06-01"
LOINC, SCT, ICD = "http://loinc.org", "http://snomed.info/sct", "http://hl7.org/fhir/sid/icd-10-cm"
RX, HGNC = "http://www.nlm.nih.gov/research/umls/rxnorm", "http://www.genenames.org/geneId"
MCODE = "http://hl7.org/fhir/us/mcode/StructureDefinition/"


def cc(system, code, display=None):
    c = {"system": system, "code": code}
    if display:
        c["display"] = display
    return {"coding": [c]}


class Bundle:
    def __init__(self, patient_id, btype="collection", style="uuid"):
        self.entries, self.pid, self.style, self.btype, self.n = [], patient_id, style, btype, 0
        self.patient_ref = self.add("Patient", {"gender": "female", "birthDate": "1961-03-04"},
                                    rid=patient_id, profile="mcode-cancer-patient")

    def add(self, rtype, body, rid=None, profile=None, subject=True, full=None):
        self.n += 1
        res = {"resourceType": rtype}
        if rid:
            res["id"] = rid
        if profile:
            res["meta"] = {"profile": [MCODE + profile]}
        if subject and rtype != "Patient":
            res["subject"] = {"reference": self.patient_ref}
        res.update(body)
        if full is None:
            full = {"uuid": "urn:uuid:%08x-0000-4000-8000-%012x" % (zlib.crc32(self.pid.encode()), self.n),
                    "url": "http://example.org/fhir/%s/%s" % (rtype, rid or "n%d" % self.n),
                    "plain": "urn:uuid:%s-%s-%d" % (self.pid, rtype.lower(), self.n)}[self.style]
        entry = {"fullUrl": full, "resource": res}
        if self.btype == "transaction":
            entry["request"] = {"method": "POST", "url": rtype}
        if self.btype == "searchset":
            entry["search"] = {"mode": "match"}
        self.entries.append(entry)
        # the patient is referred to by Type/id when it has an id, else by fullUrl
        return "%s/%s" % (rtype, rid) if rid and self.style != "uuid" else full

    def doc(self):
        return {"resourceType": "Bundle", "type": self.btype, "entry": self.entries}


def ecog(b, value, date, rid=None, coded=False):
    body = {"status": "final", "code": cc(LOINC, "89247-1"), "effectiveDateTime": date}
    if coded:
        body["valueCodeableConcept"] = cc(LOINC, ["LA9622-7", "LA9623-5", "LA9624-3", "LA9625-0", "LA9626-8"][value])
    else:
        body["valueInteger"] = value
    b.add("Observation", body, rid=rid, profile="mcode-ecog-performance-status")


def index_history(b, rt_sites=("12921003",), ecog_coded=False):
    """What every case shares with the index patient (examples/index_case.json)."""
    ecog(b, 2, "2026-04-01", rid="ecog-old")                    # superseded by the next
    ecog(b, 1, "2026-05-20", rid="ecog-now", coded=ecog_coded)
    prim = b.add("Condition", {
        "clinicalStatus": cc("http://terminology.hl7.org/CodeSystem/condition-clinical", "active"),
        "verificationStatus": cc("http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed"),
        "code": cc(ICD, "C20", "Malignant neoplasm of rectum"), "onsetDateTime": "2024-09-02"},
        rid="primary", profile="mcode-primary-cancer-condition")
    b.add("Procedure", {"status": "completed", "code": cc(SCT, "387713003", "Surgical procedure"),
                        "bodySite": [cc(SCT, "34402009", "Rectum structure")],
                        "performedDateTime": "2024-11-15", "reasonReference": [{"reference": prim}]},
          rid="resection", profile="mcode-cancer-related-surgical-procedure")
    for i, site in enumerate(rt_sites):
        b.add("Procedure", {"status": "completed", "code": cc(SCT, "1217123003", "Radiotherapy course of treatment"),
                            "bodySite": [cc(SCT, site)],
                            "performedPeriod": {"start": "2024-09-20", "end": "2024-10-25"}},
              rid="rt-%d" % i, profile="mcode-radiotherapy-course-summary")
    ext = [{"url": MCODE + "mcode-related-primary-cancer-condition", "valueReference": {"reference": prim}}]
    b.add("Condition", {"extension": ext, "code": cc(SCT, "94222008", "Secondary malignant neoplasm of bone"),
                        "onsetDateTime": "2025-12-01"}, rid="met-bone", profile="mcode-secondary-cancer-condition")
    # C77.4 covers inguinal and lower-limb nodes: the bodySite decides
    b.add("Condition", {"extension": ext, "code": cc(ICD, "C77.4"),
                        "bodySite": [cc(SCT, "8928004", "Inguinal lymph node structure")],
                        "onsetDateTime": "2025-12-01"}, rid="met-groin", profile="mcode-secondary-cancer-condition")
    b.add("Condition", {"extension": ext, "code": cc(SCT, "128462008", "Secondary malignant neoplastic disease"),
                        "bodySite": [cc(SCT, "82849001", "Retroperitoneal structure")],
                        "onsetDateTime": "2025-12-01"}, rid="met-rp", profile="mcode-secondary-cancer-condition")
    # FOLFOX as given: oxaliplatin administered, fluorouracil ordered, leucovorin by product code
    b.add("MedicationAdministration", {"status": "completed", "medicationCodeableConcept": cc(RX, "32592", "oxaliplatin"),
                                       "effectivePeriod": {"start": "2025-01-10", "end": "2025-06-20"}},
          rid="oxali", profile="mcode-cancer-related-medication-administration")
    b.add("MedicationRequest", {"status": "completed", "intent": "order",
                                "medicationCodeableConcept": cc(RX, "4492", "fluorouracil"), "authoredOn": "2025-01-08"},
          rid="fu", profile="mcode-cancer-related-medication-request")
    b.add("MedicationStatement", {"status": "completed", "medicationCodeableConcept": cc(RX, "1803932"),
                                  "effectiveDateTime": "2025-01-10"}, rid="lv")
    # progression on FOLFOX (mCODE CancerDiseaseStatus: worsened)
    b.add("Observation", {"status": "final", "code": cc(LOINC, "97509-4"), "effectiveDateTime": "2025-07-15",
                          "valueCodeableConcept": cc(SCT, "271299001", "Patient's condition worsened")},
          rid="status", profile="mcode-cancer-disease-status")
    # an entered-in-error result must be ignored
    variant(b, "HGNC:6407", "present", "p.G12D", rid="kras-error", status="entered-in-error")


def variant(b, gene, pres, protein=None, rid=None, status="final", date="2026-02-01"):
    comps = [{"code": cc(LOINC, "48018-6"), "valueCodeableConcept": cc(HGNC, gene)}]
    if protein:
        comps.append({"code": cc(LOINC, "48005-3"), "valueCodeableConcept": cc("http://varnomen.hgvs.org", protein)})
    b.add("Observation", {"status": status, "code": cc(LOINC, "69548-6"), "effectiveDateTime": date,
                          "valueCodeableConcept": cc(LOINC, "LA9633-4" if pres == "present" else "LA9634-2"),
                          "component": comps}, rid=rid, profile="mcode-genomic-variant")


def test(b, loinc, value_system, value, rid=None, date="2026-02-01"):
    b.add("Observation", {"status": "final", "code": cc(LOINC, loinc), "effectiveDateTime": date,
                          "valueCodeableConcept": cc(value_system, value)}, rid=rid, profile="mcode-tumor-marker-test")


def msi(b, answer, rid=None):
    test(b, "81695-9", LOINC, answer, rid=rid)


CASES = {}


def case(name, plain):
    def deco(fn):
        CASES[name] = (plain, fn)
        return fn
    return deco


@case("index_case", "index_case.json")
def _(b):
    index_history(b)
    # a preliminary KRAS result: not final, not used
    variant(b, "HGNC:6407", "present", "p.G12V", rid="kras-prelim", status="preliminary")


@case("ras_wild_type", "cases/ras_wild_type.json")
def _(b):
    index_history(b, ecog_coded=True)
    for g in ("HGNC:6407", "HGNC:7989", "HGNC:1097"):
        variant(b, g, "absent", rid="neg-" + g[5:])
    msi(b, "LA14122-8", rid="msi")


@case("kras_mutant", "cases/kras_mutant_proposed_cetuximab.json")
def _(b):
    index_history(b)
    variant(b, "HGNC:6407", "present", "p.Gly12Asp")                   # no id: referred to by fullUrl
    test(b, "85510-6", LOINC, "LA6577-6")                               # NRAS negative
    test(b, "58415-1", LOINC, "LA6577-6")                               # BRAF V600E negative
    test(b, "62862-8", SCT, "260385009")                                # MSI by immunostain: negative


@case("braf_v600e", "cases/braf_v600e.json")
def _(b):
    index_history(b)
    test(b, "81420-2", LOINC, "LA6577-6", rid="ras")                    # KRAS+NRAS negative
    variant(b, "HGNC:1097", "present", "p.V600E", rid="braf")
    msi(b, "LA26202-4", rid="msi")                                      # MSI-low: read as MSS


@case("msi_high", "cases/msi_high.json")
def _(b):
    index_history(b)
    msi(b, "LA26203-2", rid="msi")


@case("prior_groin_rt", "cases/symptomatic_nodes_prior_groin_rt.json")
def _(b):
    index_history(b, rt_sites=("12921003", "26893007"))


@case("surgery_in_30_days", "cases/surgery_in_30_days.json")
def _(b):
    index_history(b)
    sr = b.add("ServiceRequest", {"status": "active", "intent": "order", "code": cc(SCT, "387713003", "Surgical procedure"),
                                  "occurrenceDateTime": "2026-07-01"}, rid="surgery")
    b.add("Appointment", {"status": "booked", "basedOn": [{"reference": sr}], "start": "2026-07-01T08:00:00Z",
                          "participant": [{"actor": {"reference": b.patient_ref}, "status": "accepted"}]},
          rid="appt", subject=False)


STYLE = {"index_case": ("collection", "uuid"), "ras_wild_type": ("transaction", "url"),
         "kras_mutant": ("searchset", "plain"), "braf_v600e": ("collection", "plain"),
         "msi_high": ("transaction", "uuid"), "prior_groin_rt": ("collection", "url"),
         "surgery_in_30_days": ("prefetch", "url")}


def main():
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=HERE, help="where to write the bundles (default: next to this file)")
    out = ap.parse_args().out
    for name, (plain, fn) in CASES.items():
        pid = json.load(open(os.path.join(HERE, "../../../../examples", plain)))["patient_id"]
        btype, style = STYLE[name]
        b = Bundle(pid, "collection" if btype == "prefetch" else btype, style)
        fn(b)
        doc = b.doc()
        if btype == "prefetch":   # a CDS Hooks prefetch object: the patient, and a searchset of the rest
            doc = {"patient": b.entries[0]["resource"],
                   "records": {"resourceType": "Bundle", "type": "searchset", "entry": b.entries[1:]}}
        with open(os.path.join(out, name + ".json"), "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
        print(name, "<-", plain)


if __name__ == "__main__":
    main()
