-- codes.lua: the one code table of the FHIR input adapter (adapter.lua).
--
-- Every code the adapter acts on is here, keyed "system|code"; the adapter
-- matches on system and code only, never on display text (public examples
-- carry wrong displays: mCODE's GenomeX example labels HGNC:6342 "NRAS";
-- 6342 is KIT). Each section names its source. "verify" marks a code taken
-- from memory or a secondary source rather than the code system itself.
--
-- An institution extends this table with its own file returning a table of
-- the same shape (`pathwise facts --from fhir --codes local_codes.lua`):
-- each section of a later table adds to, or replaces entries of, the same
-- section here (use `false` to switch an entry off). See plugins/README.md.

local LOINC = "http://loinc.org|"
local SCT = "http://snomed.info/sct|"
local ICD = "http://hl7.org/fhir/sid/icd-10-cm|"
local RX = "http://www.nlm.nih.gov/research/umls/rxnorm|"

return {
  -- Other spellings of the same code systems, mapped to the canonical URI.
  system_aliases = {
    ["http://www.genenames.org"] = "http://www.genenames.org/geneId",
    ["http://www.genenames.org/"] = "http://www.genenames.org/geneId",
    ["urn:oid:2.16.840.1.113883.6.96"] = "http://snomed.info/sct",
    ["urn:oid:2.16.840.1.113883.6.1"] = "http://loinc.org",
    ["urn:oid:2.16.840.1.113883.6.90"] = "http://hl7.org/fhir/sid/icd-10-cm",
    ["urn:oid:2.16.840.1.113883.6.88"] = "http://www.nlm.nih.gov/research/umls/rxnorm",
  },

  -- ECOG performance status. LOINC 89247-1 (mCODE ECOGPerformanceStatus);
  -- answers LL529-9: LA9622-7 (0), LA9623-5 (1) from the ctm-app bundle;
  -- LA9624-3..LA9627-6 for 2..5 from the LOINC answer list (verify).
  ecog = { [LOINC .. "89247-1"] = true },
  ecog_answers = {
    [LOINC .. "LA9622-7"] = 0, [LOINC .. "LA9623-5"] = 1, [LOINC .. "LA9624-3"] = 2,
    [LOINC .. "LA9625-0"] = 3, [LOINC .. "LA9626-8"] = 4, [LOINC .. "LA9627-6"] = 5,
  },

  -- Genomic variants (mCODE GenomicVariant / genomics-reporting Variant):
  -- code 69548-6, gene in component 48018-6 (HGNC), protein change in
  -- component 48005-3 (HGVS p., one- or three-letter).
  variant = { [LOINC .. "69548-6"] = true },
  gene_component = { [LOINC .. "48018-6"] = true },
  protein_component = { [LOINC .. "48005-3"] = true },
  -- HGNC ids (genenames.org): KRAS 6407, NRAS 7989, BRAF 1097.
  genes = { ["HGNC:6407"] = "kras", ["HGNC:7989"] = "nras", ["HGNC:1097"] = "braf" },

  -- Single-gene tests (mCODE TumorMarkerTest; codes as in the
  -- clinical-trial-matching-app's biomarkers.json): which genes each reports.
  -- "braf_v600e" tests report V600E itself; "braf" tests report any BRAF
  -- mutation (positive does not say V600E).
  gene_tests = {
    [LOINC .. "85509-8"] = { "kras" },          -- KRAS, colorectal specimen
    [LOINC .. "85510-6"] = { "nras" },          -- NRAS, colorectal specimen
    [LOINC .. "81420-2"] = { "kras", "nras" },  -- KRAS + NRAS
    [LOINC .. "85511-4"] = { "braf" },          -- BRAF, colorectal specimen
    [LOINC .. "58415-1"] = { "braf_v600e" },    -- BRAF p.V600E presence
    [LOINC .. "85299-6"] = { "braf_v600e" },    -- BRAF V600E by immunostain
  },

  -- Presence answers: LOINC LA9633-4 Present / LA9634-2 Absent (genomics
  -- reporting), LA6576-8 Positive / LA6577-6 Negative, LA11882-0 Detected /
  -- LA11883-8 Not detected; SNOMED CT 10828004 Positive / 260385009
  -- Negative, 52101004 Present / 2667000 Absent, 260373001 Detected /
  -- 260415000 Not detected (verify the LA66/LA118 and SNOMED present/absent
  -- and detected codes).
  presence = {
    [LOINC .. "LA9633-4"] = "present", [LOINC .. "LA9634-2"] = "absent",
    [LOINC .. "LA6576-8"] = "present", [LOINC .. "LA6577-6"] = "absent",
    [LOINC .. "LA11882-0"] = "present", [LOINC .. "LA11883-8"] = "absent",
    [SCT .. "10828004"] = "present", [SCT .. "260385009"] = "absent",
    [SCT .. "52101004"] = "present", [SCT .. "2667000"] = "absent",
    [SCT .. "260373001"] = "present", [SCT .. "260415000"] = "absent",
  },

  -- Microsatellite instability, LOINC 81695-9 (genomics-reporting MSI),
  -- answers LL3994-2. MSI-low is read as MSS (pMMR): current guidance
  -- (ESMO, NCCN) groups MSI-L with MSS, and only MSI-high/dMMR qualifies
  -- for checkpoint inhibitors; the source carries a note saying so.
  msi = { [LOINC .. "81695-9"] = true },
  msi_answers = {
    [LOINC .. "LA14122-8"] = "mss",         -- stable
    [LOINC .. "LA26202-4"] = "msi_low",     -- MSI-L: read as mss, with a note
    [LOINC .. "LA26203-2"] = "msi_high",    -- MSI-H
    [LOINC .. "LA11884-6"] = "indeterminate",
  },
  -- MSI by immunostain (LOINC 62862-8): present/positive = MSI-high (dMMR),
  -- absent/negative = MSS (pMMR), through the presence answers above.
  msi_ihc = { [LOINC .. "62862-8"] = true },

  -- Primary colorectal cancer (mCODE PrimaryCancerCondition). The value is
  -- primary.site; "colon" means colon, side not recorded. ICD-10-CM C18.x
  -- (sidedness: caecum to transverse colon right, splenic flexure to
  -- sigmoid left), C20 rectum; C19 (rectosigmoid junction) is not mapped:
  -- rectum or left colon is a clinical call. SNOMED CT 363406005 malignant
  -- neoplasm of colon, 93761005 primary malignant neoplasm of colon,
  -- 109838007 overlapping malignant neoplasm of colon, 363351006 malignant
  -- neoplasm of rectum (verify), 93984006 primary malignant neoplasm of
  -- rectum (verify).
  primary = {
    [ICD .. "C18.0"] = "colon_right", [ICD .. "C18.1"] = "colon_right",
    [ICD .. "C18.2"] = "colon_right", [ICD .. "C18.3"] = "colon_right",
    [ICD .. "C18.4"] = "colon_right", [ICD .. "C18.5"] = "colon_left",
    [ICD .. "C18.6"] = "colon_left", [ICD .. "C18.7"] = "colon_left",
    [ICD .. "C18.8"] = "colon", [ICD .. "C18.9"] = "colon", [ICD .. "C18"] = "colon",
    [ICD .. "C20"] = "rectum",
    [SCT .. "363406005"] = "colon", [SCT .. "93761005"] = "colon", [SCT .. "109838007"] = "colon",
    [SCT .. "363351006"] = "rectum", [SCT .. "93984006"] = "rectum",
  },
  -- Colorectal primaries the adapter will not place, with why.
  primary_ambiguous = {
    [ICD .. "C19"] = "rectosigmoid junction: rectum or left colon is a clinical call",
  },
  -- bodySite of a primary (SNOMED CT body structures; DICOM CID 6210):
  -- refines "colon" to a side.
  primary_sites = {
    [SCT .. "32713005"] = "colon_right",  -- caecum
    [SCT .. "9040008"] = "colon_right",   -- ascending colon
    [SCT .. "48338005"] = "colon_right",  -- hepatic flexure
    [SCT .. "485005"] = "colon_right",    -- transverse colon
    [SCT .. "72592005"] = "colon_left",   -- splenic flexure
    [SCT .. "32622004"] = "colon_left",   -- descending colon
    [SCT .. "60184004"] = "colon_left",   -- sigmoid colon
    [SCT .. "34402009"] = "rectum",       -- rectum
    [SCT .. "71854001"] = "colon",        -- colon
  },
  -- Non-colorectal primaries: ICD-10-CM malignant neoplasm ranges outside
  -- C18-C20 (and outside C77-C80, secondary or unspecified), and SNOMED CT
  -- codes seen in oncology data (408643008 infiltrating duct carcinoma of
  -- breast, 254837009 malignant neoplasm of breast, 254637007 non-small
  -- cell lung cancer, 372244006 malignant melanoma (verify the last three)).
  non_colorectal_icd_ranges = { { "C00", "C17" }, { "C21", "C76" }, { "C81", "C96" } },
  non_colorectal = {
    [SCT .. "408643008"] = true, [SCT .. "254837009"] = true,
    [SCT .. "254637007"] = true, [SCT .. "372244006"] = true,
  },

  -- Secondary cancer (mCODE SecondaryCancerCondition): the metastasis site.
  -- A list means the code covers more than one of our sites: the adapter
  -- then needs a bodySite and says so. "body_site" means a generic code:
  -- the site comes from bodySite. SNOMED CT 94222008 bone, 94381002 liver,
  -- 94391008 lung, 94225005 brain, 94181007 axillary lymph nodes (other),
  -- 128462008 secondary malignant neoplastic disease; ICD-10-CM C78.00-02
  -- lung, C78.6 retroperitoneum AND peritoneum, C78.7 liver, C79.31 brain,
  -- C79.51 bone, C77.4 inguinal AND lower-limb nodes.
  secondary = {
    [SCT .. "94222008"] = "bone", [SCT .. "94381002"] = "liver", [SCT .. "94391008"] = "lung",
    [SCT .. "94225005"] = "brain", [SCT .. "94181007"] = "other",
    [SCT .. "128462008"] = "body_site",
    [ICD .. "C78.00"] = "lung", [ICD .. "C78.01"] = "lung", [ICD .. "C78.02"] = "lung",
    [ICD .. "C78.7"] = "liver", [ICD .. "C79.31"] = "brain",
    [ICD .. "C79.51"] = "bone", [ICD .. "C79.52"] = "bone",
    [ICD .. "C78.6"] = { "retroperitoneal", "peritoneum" },
    [ICD .. "C77.4"] = { "inguinal_nodes", "other" },
    [ICD .. "C79.9"] = "body_site", [ICD .. "C80.0"] = "body_site",
  },
  -- bodySite of a metastasis (SNOMED CT body structures; mCODE examples).
  secondary_sites = {
    [SCT .. "272673000"] = "bone", [SCT .. "8928004"] = "inguinal_nodes",
    [SCT .. "82849001"] = "retroperitoneal", [SCT .. "10200004"] = "liver",
    [SCT .. "39607008"] = "lung", [SCT .. "15425007"] = "peritoneum",
    [SCT .. "12738006"] = "brain",
  },

  -- A bone metastasis in the spine (facts: metastases[].spine = true):
  -- bodySite SNOMED CT 421060004 structure of vertebral column (verify).
  -- Other bone sites leave spine unknown: "not the spine" is never
  -- concluded from a missing body site.
  spine_sites = { [SCT .. "421060004"] = true },

  -- Radiotherapy: mCODE STU2+ RadiotherapyCourseSummary 1217123003; STU1
  -- and older records: 108290001 radiation oncology and/or radiotherapy,
  -- 33195004 teleradiotherapy, 152198000 brachytherapy (verify the last two).
  radiotherapy = {
    [SCT .. "1217123003"] = true, [SCT .. "108290001"] = true,
    [SCT .. "33195004"] = true, [SCT .. "152198000"] = true,
  },
  -- Where it was given, as prior_radiation_sites base names (facts-model
  -- vocabulary): SNOMED CT body structures.
  radiation_sites = {
    [SCT .. "12921003"] = "pelvis", [SCT .. "34402009"] = "pelvis",
    [SCT .. "26893007"] = "groin", [SCT .. "8928004"] = "inguinal",
    [SCT .. "421060004"] = "spine", [SCT .. "272673000"] = "bone",
    [SCT .. "10200004"] = "liver", [SCT .. "39607008"] = "lung",
    [SCT .. "12738006"] = "brain", [SCT .. "51185008"] = "chest",
    [SCT .. "113345001"] = "abdomen", [SCT .. "82849001"] = "retroperitoneum",
  },
  -- Laterality qualifiers (SNOMED CT): 7771000 left, 24028007 right,
  -- 51440002 bilateral.
  laterality = {
    [SCT .. "7771000"] = "left", [SCT .. "24028007"] = "right", [SCT .. "51440002"] = "bilateral",
  },

  -- Surgery. Resection of the primary (Procedure, completed): 23968004
  -- colectomy, 26390003 total colectomy, 265414003 anterior resection of
  -- rectum (verify the last two); a generic surgical procedure 387713003
  -- counts when its bodySite is colorectal (primary_sites).
  resection = {
    [SCT .. "23968004"] = true, [SCT .. "26390003"] = true, [SCT .. "265414003"] = true,
  },
  surgery_generic = { [SCT .. "387713003"] = true },

  -- Cancer medications (RxNorm ingredient RxCUIs, NLM RxNorm; verify
  -- against RxNav before production) to the knowledge table's agent ids;
  -- products (clinical drugs, brands) to their ingredient. Product codes:
  -- 575971 Eloxatin and 1803932 leucovorin as ordered by Synthea's
  -- colorectal module.
  agents = {
    [RX .. "32592"] = "oxaliplatin", [RX .. "4492"] = "fluorouracil",
    [RX .. "6313"] = "leucovorin", [RX .. "51499"] = "irinotecan",
    [RX .. "194000"] = "capecitabine", [RX .. "253337"] = "bevacizumab",
    [RX .. "318341"] = "cetuximab", [RX .. "263034"] = "panitumumab",
    [RX .. "2049106"] = "encorafenib", [RX .. "1547545"] = "pembrolizumab",
    [RX .. "1597876"] = "nivolumab",
  },
  products = {
    [RX .. "575971"] = "oxaliplatin", [RX .. "1803932"] = "leucovorin",
  },
  -- Regimens recognised from the agents seen (all listed agents needed).
  regimens = {
    FOLFOX = { "oxaliplatin", "fluorouracil" },
    CAPOX = { "oxaliplatin", "capecitabine" },
    FOLFIRI = { "irinotecan", "fluorouracil" },
  },

  -- Disease status (mCODE CancerDiseaseStatus, LOINC 97509-4): a
  -- "worsened" status (SNOMED CT 271299001) dated on or after the start of
  -- an oxaliplatin regimen that is no longer given records progression on
  -- it (prior_regimens[].outcome "progression"). Other values are listed.
  disease_status = { [LOINC .. "97509-4"] = true },
  disease_worsened = { [SCT .. "271299001"] = true },

  -- Codes known and deliberately not used, with why.
  not_used = {
    [LOINC .. "21908-9"] = "stage group not used: metastatic status comes from secondary cancer conditions",
    [LOINC .. "21902-2"] = "stage group not used: metastatic status comes from secondary cancer conditions",
  },

  -- Resource types that only give context (never a fact, never listed).
  context_types = {
    Patient = true, Practitioner = true, PractitionerRole = true, Organization = true,
    Specimen = true, DiagnosticReport = true, Encounter = true, Location = true,
    Medication = true, Device = true, Provenance = true, OperationOutcome = true,
    RelatedPerson = true, Coverage = true,
  },

  limits = {
    ecog_max_age_days = 90,   -- an older ECOG is stale: reported, not used
  },
}
