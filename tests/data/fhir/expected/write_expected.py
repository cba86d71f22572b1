#!/usr/bin/env python3
"""The expected output of `pathwise facts --from fhir --format json` for the
three real bundles, written by hand from reading each bundle, BEFORE the
adapter existed (this script only serialises it, compactly, as the CLI does).
The adapter's sha256 is written as "*": the test puts the real one in.
Run once; the .json files are what the tests compare byte for byte."""
import json, os

HERE = os.path.dirname(os.path.abspath(__file__))
ADAPTER = {"id": "fhir_mcode", "version": "1.0.0", "sha256": "*"}
NOT_USED = "code not used by the guideline's facts"
LOINC, SCT, RX = "http://loinc.org|", "http://snomed.info/sct|", "http://www.nlm.nih.gov/research/umls/rxnorm|"
NOT_AGENT = "not an agent of the guideline's regimens (knowledge table)"

def src(fact, value, ref, code=None, date=None, note=None):
    s = {"fact": fact, "value": value, "ref": ref, "code": code, "date": date}
    if note:
        s["note"] = note
    return s

def um(ref, code, why):
    return {"ref": ref, "code": code, "why": why}

def gene(h):
    return "gene HGNC:%s is not one the guideline uses (KRAS, NRAS, BRAF)" % h

def write(name, doc):
    with open(os.path.join(HERE, name), "w") as f:
        f.write(json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n")

# --- ctm-app TrialMatching_Patient01 (mCODE STU1, breast, stage IV) as of 2019-06-15
P = "mCODETrialMatching"
pat = "Patient/%sPatientExample01" % P
sec = ["Condition/%sSecondaryCancerCondition%sPatientExample01" % (P, n) for n in ("", "02", "03")]
write("ctm-app__TrialMatching_Patient01.json", {
  "from": "fhir", "as_of": "2019-06-15", "adapter": ADAPTER, "patient": pat,
  "facts": {"patient_id": "%sPatientExample01" % P, "ecog": 1, "metastatic": True,
            "primary": {"site": "non_colorectal"},
            "molecular": {"msi": "msi_high"},
            "metastases": [{"site": "other"}, {"site": "liver"}, {"site": "bone"}]},
  "sources": [
    src("patient_id", "%sPatientExample01" % P, pat),
    src("ecog", "1", "Observation/%sECOGPerformanceStatusPatientExample01" % P, LOINC + "89247-1", "2019-04-01"),
    src("metastatic", "true", sec[0], SCT + "94181007"),
    src("metastatic", "true", sec[1], SCT + "94381002"),
    src("metastatic", "true", sec[2], SCT + "94222008"),
    src("primary.site", "non_colorectal", "Condition/%sPrimaryCancerConditionExample01" % P, SCT + "408643008"),
    src("molecular.msi", "msi_high", "Observation/%sTumorMarker04PatientExample01" % P, LOINC + "62862-8",
        note="immunostain: " + SCT + "10828004"),
    src("metastases[1].site", "other", sec[0], SCT + "94181007"),
    src("metastases[2].site", "liver", sec[1], SCT + "94381002"),
    src("metastases[3].site", "bone", sec[2], SCT + "94222008"),
  ],
  "unmapped": [
    um("Observation/%sTNMClinicalStageGroupExample01" % P, LOINC + "21908-9",
       "stage group not used: metastatic status comes from secondary cancer conditions"),
    um("Observation/%sTumorMarkerPatientExample01" % P, LOINC + "40556-3", NOT_USED),
    um("Observation/%sTumorMarker02PatientExample01" % P, LOINC + "40557-1", NOT_USED),
    um("Observation/%sTumorMarker03PatientExample01" % P, LOINC + "18474-7", NOT_USED),
    um("Observation/%sCancerGeneticVariantPatientExample01" % P, LOINC + "69548-6", gene("3467")),
    um("Observation/%sCancerGeneticVariant02PatientExample01" % P, LOINC + "69548-6", gene("8975")),
    um("MedicationStatement/%sCancerMedicationStatementPatientExample01" % P, RX + "1163443", NOT_AGENT),
    um("MedicationStatement/%sCancerMedicationStatement02PatientExample01" % P, RX + "1156671", NOT_AGENT),
    um("MedicationStatement/%sCancerMedicationStatement03PatientExample01" % P, RX + "1946828", NOT_AGENT),
    um("MedicationStatement/%sCancerMedicationStatement04PatientExample01" % P, RX + "1156671", NOT_AGENT),
    um("MedicationStatement/%sCancerMedicationStatement05PatientExample01" % P, RX + "1873980", NOT_AGENT),
  ]})

# --- genomics-reporting oncology-diagnostic (melanoma, BRAF p.Val600Glu) as of 2020-12-01
pat = "urn:uuid:d0b4affa-91d6-46d1-af01-b30d9f16ef6d"
write("genomics-reporting__Bundle-oncology-diagnostic.json", {
  "from": "fhir", "as_of": "2020-12-01", "adapter": ADAPTER, "patient": pat,
  "facts": {"patient_id": pat, "molecular": {"braf_v600e": "mutant"}},
  "sources": [
    src("patient_id", pat, pat),
    src("molecular.braf_v600e", "mutant", "urn:uuid:16fdd5fc-e665-48af-99e4-48d603f3e12d", LOINC + "69548-6",
        note="gene HGNC:1097, p.Val600Glu"),
  ],
  "unmapped": [
    um("urn:uuid:40e85eda-4d31-4bd2-a5a0-c39d63f9824f", None,
       "no coding (text 'Tumor Mutational Burden'): the adapter matches codes only"),
    um("urn:uuid:1bf9642d-fd1c-4819-8c5d-44fae4bad524",
       "http://hl7.org/fhir/uv/genomics-reporting/CodeSystem/TbdCodes|diagnostic-implication", NOT_USED),
  ]})

# --- genomics-reporting oncology-report-example (somatic panel, NRAS p.G12C) as of 2020-12-01
pat = "urn:uuid:f7a438e6-f484-453d-97e8-aa4d51008648"
obs = ["dac358c3-403a-4dbb-b478-4259aed882ae", "1d773d66-cec7-44a2-b92a-46d00adeae00",
       "842d9ab9-d940-4f0c-adf9-e5c528f5c0e5", "9a9f9a4a-52e3-4738-bd0b-a25374bbf358",
       "58828523-8893-45fc-973b-16290366c5e5", "2c28b23f-3e9f-4c03-8c8f-0e76bc5dc9c2",
       "41bebbe5-e06f-4867-aa22-7c06db69dbd1", "1642f190-e2c6-4999-8040-b9b2a70618bf",
       "c3587931-242f-4129-93f9-be24500c8f29", "41695fc0-1fd5-4cc8-95e6-82b2848a5cb6",
       "58eb14f6-4059-4168-86a9-155ae61d30e2", "1a71e80f-b044-4a91-80e1-eadbe5a53dca"]
genes = ["8975", "7989", "16712", "7133", "8975", "6126", "1787", "9949", "10483", "10519", "11086", "11100"]
write("genomics-reporting__Bundle-oncology-report-example.json", {
  "from": "fhir", "as_of": "2020-12-01", "adapter": ADAPTER, "patient": pat,
  "facts": {"patient_id": pat, "molecular": {"nras": "mutant"}},
  "sources": [
    src("patient_id", pat, pat),
    # the variant carries no date: the DiagnosticReport listing it was issued 2019-09-15
    src("molecular.nras", "mutant", "urn:uuid:" + obs[1], LOINC + "69548-6", "2019-09-15",
        note="gene HGNC:7989, p.G12C"),
  ],
  "unmapped": [um("urn:uuid:" + o, LOINC + "69548-6", gene(g)) for o, g in zip(obs, genes) if g != "7989"]})
