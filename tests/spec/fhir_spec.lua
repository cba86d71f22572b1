-- fhir_spec.lua: the FHIR input adapter (plugins/fhir/adapter.lua and
-- codes.lua) run through the engine's C adapter module (pathwise.fhir),
-- rule by rule, on small bundles built here. The real and colorectal
-- bundles are tested through the CLI in tests/integration/fhir.

local H = package.loaded.pw_helper or dofile("helper.lua")
local pathwise, cjson = H.pathwise, H.cjson

local ADAPTER = H.root .. "/plugins/fhir/adapter.lua"
local CODES = H.root .. "/plugins/fhir/codes.lua"
local AS_OF = "2026-06-01"
local LOINC, SCT, ICD = "http://loinc.org", "http://snomed.info/sct", "http://hl7.org/fhir/sid/icd-10-cm"
local HGNC, RX = "http://www.genenames.org/geneId", "http://www.nlm.nih.gov/research/umls/rxnorm"

local function cc(system, code, display)
  return { coding = { { system = system, code = code, display = display } } }
end

local function bundle(resources, opts)
  opts = opts or {}
  local entries = { { fullUrl = "urn:uuid:pt", resource = { resourceType = "Patient", id = "p1" } } }
  for i, r in ipairs(resources) do
    if r.subject == nil and not opts.no_subject then r.subject = { reference = "Patient/p1" } end
    entries[#entries + 1] = { fullUrl = r.fullUrl_ or ("urn:uuid:r" .. i), resource = r }
    r.fullUrl_ = nil
  end
  return { resourceType = "Bundle", type = "collection", entry = entries }
end

local function obs(code, t)
  local r = { resourceType = "Observation", status = "final", code = code, effectiveDateTime = "2026-05-01" }
  for k, v in pairs(t or {}) do r[k] = v end
  return r
end

local function variant(gene, pres, protein, t)
  local comps = { { code = cc(LOINC, "48018-6"), valueCodeableConcept = cc(HGNC, gene) } }
  if protein then
    comps[2] = { code = cc(LOINC, "48005-3"), valueCodeableConcept = cc("http://varnomen.hgvs.org", protein) }
  end
  local r = obs(cc(LOINC, "69548-6"), t)
  r.valueCodeableConcept = cc(LOINC, pres == "absent" and "LA9634-2" or "LA9633-4")
  r.component = comps
  return r
end

local function run(doc, opts)
  opts = opts or {}
  local json = type(doc) == "string" and doc or cjson.encode(doc)
  return pathwise.fhir(json, {
    adapter = opts.adapter or ADAPTER, codes = opts.codes or { CODES },
    as_of = opts.as_of or AS_OF, max_members = opts.max_members,
  })
end

local function adapt(resources, opts)
  local input, err, facts = run(bundle(resources, opts), opts)
  assert(input, "adapter failed: " .. tostring(err))
  return input, facts
end

local function why(input, pattern)
  for _, u in ipairs(input.unmapped) do
    if u.why:find(pattern, 1, true) then return u end
  end
  return nil
end

local function source(input, fact)
  for _, s in ipairs(input.sources) do
    if s.fact == fact then return s end
  end
  return nil
end

local function write(text)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

describe("FHIR adapter: ECOG", function()
  it("reads valueInteger, an LA answer code or the interpretation, with its source", function()
    local i = adapt({ obs(cc(LOINC, "89247-1"), { valueInteger = 2 }) })
    assert.equal(2, i.facts.ecog)
    local s = source(i, "ecog")
    assert.same({ "Observation", "http://loinc.org|89247-1", "2026-05-01" },
      { s.ref:sub(1, 11) == "urn:uuid:r1" and "Observation" or s.ref, s.code, s.date })
    assert.equal(0, adapt({ obs(cc(LOINC, "89247-1"), { valueCodeableConcept = cc(LOINC, "LA9622-7") }) }).facts.ecog)
    assert.equal(1, adapt({ obs(cc(LOINC, "89247-1"), { interpretation = { cc(LOINC, "LA9623-5") } }) }).facts.ecog)
  end)

  it("refuses ECOG 5 (dead), and leaves a stale or undated ECOG unknown", function()
    local input, err, status = run(bundle({ obs(cc(LOINC, "89247-1"), { valueInteger = 5 }) }))
    assert.is_nil(input)
    assert.equal("input", status)
    assert.truthy(err:find("ECOG 5", 1, true))
    local i = adapt({ obs(cc(LOINC, "89247-1"), { valueInteger = 1, effectiveDateTime = "2026-01-01" }) })
    assert.is_nil(i.facts.ecog)
    assert.truthy(why(i, "stale"))
    i = adapt({ obs(cc(LOINC, "89247-1"), { valueInteger = 1, effectiveDateTime = cjson.null }) })
    assert.is_nil(i.facts.ecog)
    assert.truthy(why(i, "undated ECOG"))
    -- the same ECOG is current with an earlier as-of date
    assert.equal(1, adapt({ obs(cc(LOINC, "89247-1"), { valueInteger = 1, effectiveDateTime = "2026-01-01" }) },
      { as_of = "2026-02-01" }).facts.ecog)
  end)
end)

describe("FHIR adapter: molecular results", function()
  it("reads protein changes in one- and three-letter notation", function()
    assert.equal("mutant", adapt({ variant("HGNC:1097", "present", "p.(Val600Glu)") }).facts.molecular.braf_v600e)
    assert.equal("mutant", adapt({ variant("HGNC:1097", "present", "V600E") }).facts.molecular.braf_v600e)
    local i = adapt({ variant("HGNC:6407", "present", "p.Gly12Cys") })
    assert.equal("mutant", i.facts.molecular.kras)
    assert.equal("gene HGNC:6407, p.Gly12Cys", source(i, "molecular.kras").note)
  end)

  it("calls a gene wild type only when a test reports it absent", function()
    assert.equal("wild_type", adapt({ variant("HGNC:6407", "absent") }).facts.molecular.kras)
    local i = adapt({ variant("HGNC:6407", "absent", "p.G12C") })   -- one variant absent: others not excluded
    assert.is_nil(i.facts.molecular)
    assert.truthy(why(i, "other variants of the gene not excluded"))
    i = adapt({ variant("HGNC:6407", "present", "p.=") })             -- synonymous: not a mutation
    assert.is_nil(i.facts.molecular)
    assert.truthy(why(i, "synonymous"))
  end)

  it("reads single-gene tests, and a positive KRAS+NRAS test names no gene", function()
    local neg = cc(LOINC, "LA6577-6")
    local i = adapt({ obs(cc(LOINC, "81420-2"), { valueCodeableConcept = neg }) })
    assert.same({ kras = "wild_type", nras = "wild_type" }, i.facts.molecular)
    i = adapt({ obs(cc(LOINC, "81420-2"), { valueCodeableConcept = cc(LOINC, "LA6576-8") }) })
    assert.is_nil(i.facts.molecular)
    assert.truthy(why(i, "not saying which"))
    i = adapt({ obs(cc(LOINC, "85511-4"), { valueCodeableConcept = cc(SCT, "10828004") }) })
    assert.is_nil(i.facts.molecular)
    assert.truthy(why(i, "without saying V600E"))
    assert.equal("wild_type", adapt({ obs(cc(LOINC, "85511-4"), { valueCodeableConcept = cc(SCT, "260385009") }) })
      .facts.molecular.braf_v600e)
  end)

  it("maps MSI answers; MSI-low reads as MSS with a note; indeterminate stays unknown", function()
    local function msi(code) return adapt({ obs(cc(LOINC, "81695-9"), { valueCodeableConcept = cc(LOINC, code) }) }) end
    assert.equal("msi_high", msi("LA26203-2").facts.molecular.msi)
    assert.equal("mss", msi("LA14122-8").facts.molecular.msi)
    local low = msi("LA26202-4")
    assert.equal("mss", low.facts.molecular.msi)
    assert.truthy(source(low, "molecular.msi").note:find("MSI-low", 1, true))
    local ind = msi("LA11884-6")
    assert.is_nil(ind.facts.molecular)
    assert.truthy(why(ind, "indeterminate"))
  end)

  it("ignores non-final and entered-in-error results", function()
    local i = adapt({ variant("HGNC:6407", "present", "p.G12D", { status = "preliminary" }),
                      variant("HGNC:7989", "present", "p.Q61K", { status = "entered-in-error" }) })
    assert.is_nil(i.facts.molecular)
    assert.truthy(why(i, "status 'preliminary'"))
    assert.truthy(why(i, "entered in error"))
  end)
end)

describe("FHIR adapter: conditions", function()
  local function cond(code, t)
    local r = { resourceType = "Condition", code = code }
    for k, v in pairs(t or {}) do r[k] = v end
    return r
  end

  it("maps the primary site from ICD-10-CM or from a SNOMED code refined by bodySite", function()
    assert.equal("colon_right", adapt({ cond(cc(ICD, "C18.2")) }).facts.primary.site)
    assert.equal("rectum", adapt({ cond(cc(ICD, "C20")) }).facts.primary.site)
    assert.equal("colon_left", adapt({ cond(cc(SCT, "363406005"), { bodySite = { cc(SCT, "60184004") } }) })
      .facts.primary.site)
  end)

  it("maps colon without side and non-colorectal primaries; says why it will not place rectosigmoid", function()
    assert.equal("colon", adapt({ cond(cc(ICD, "C18.9")) }).facts.primary.site)   -- side not recorded
    assert.truthy(why(adapt({ cond(cc(ICD, "C19")) }), "rectosigmoid"))
    assert.equal("non_colorectal", adapt({ cond(cc(ICD, "C50.911")) }).facts.primary.site)
  end)

  it("takes a metastasis site from the code or from bodySite, and ignores refuted or resolved ones", function()
    local i = adapt({ cond(cc(SCT, "94381002")), cond(cc(ICD, "C79.51")),
                      cond(cc(SCT, "128462008"), { bodySite = { cc(SCT, "39607008") } }) })
    assert.is_true(i.facts.metastatic)
    assert.same({ { site = "liver" }, { site = "bone" }, { site = "lung" } }, i.facts.metastases)
    i = adapt({ cond(cc(ICD, "C79.51"), { bodySite = { cc(SCT, "421060004") } }) })
    assert.same({ { site = "bone", spine = true } }, i.facts.metastases)
    assert.truthy(source(i, "metastases[1].spine"))
    assert.is_nil(adapt({ cond(cc(ICD, "C79.51")) }).facts.metastases[1].spine)   -- not concluded
    local status = "http://terminology.hl7.org/CodeSystem/condition-"
    i = adapt({ cond(cc(SCT, "94381002"), { verificationStatus = cc(status .. "ver-status", "refuted") }),
                cond(cc(SCT, "94222008"), { clinicalStatus = cc(status .. "clinical", "resolved") }),
                cond(cc(SCT, "94225005"), { verificationStatus = cc(status .. "ver-status", "entered-in-error") }) })
    assert.is_nil(i.facts.metastatic)
    assert.truthy(why(i, "refuted"))
    assert.truthy(why(i, "clinical status 'resolved'"))
    assert.truthy(why(i, "entered in error"))
    i = adapt({ cond(cc(SCT, "94381002"), { abatementDateTime = "2026-01-01" }) })
    assert.is_nil(i.facts.metastatic)
    assert.truthy(why(i, "abated on 2026-01-01"))
  end)
end)

describe("FHIR adapter: references, patients, shapes", function()
  it("resolves a Patient without id by fullUrl and medication by medicationReference", function()
    local doc = {
      resourceType = "Bundle", type = "searchset",
      entry = {
        { fullUrl = "http://ehr.example/fhir/Patient/abc", resource = { resourceType = "Patient" } },
        { fullUrl = "urn:uuid:med", resource = { resourceType = "Medication", code = cc(RX, "32592") } },
        { fullUrl = "urn:uuid:ma", resource = { resourceType = "MedicationAdministration", status = "completed",
            subject = { reference = "Patient/abc" }, medicationReference = { reference = "urn:uuid:med" },
            effectiveDateTime = "2025-01-01" } },
        { fullUrl = "urn:uuid:fu", resource = { resourceType = "MedicationAdministration", status = "completed",
            subject = { reference = "http://ehr.example/fhir/Patient/abc" },
            medicationCodeableConcept = cc(RX, "4492"), effectiveDateTime = "2025-01-01" } },
        { resource = { resourceType = "OperationOutcome" }, search = { mode = "outcome" } },
      },
    }
    local i, _, facts = run(doc)
    assert.truthy(i, _)
    assert.equal("http://ehr.example/fhir/Patient/abc", i.patient)   -- no id: named by its fullUrl
    assert.same({ { name = "FOLFOX" } }, i.facts.prior_regimens)
    assert.truthy(facts:find('"prior_regimens":[{"name":"FOLFOX"}]', 1, true))
  end)

  it("resolves a contained Medication ('#id')", function()
    local function req(id, rx)
      return { resourceType = "MedicationRequest", status = "completed", intent = "order", authoredOn = "2025-01-01",
               contained = { { resourceType = "Medication", id = id, code = cc(RX, rx) } },
               medicationReference = { reference = "#" .. id } }
    end
    local i = adapt({ req("m1", "32592"), req("m2", "4492") })
    assert.same({ { name = "FOLFOX" } }, i.facts.prior_regimens)
  end)

  it("reads a whole CDS Hooks request through its prefetch", function()
    local req = {
      hook = "patient-view", hookInstance = "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
      context = { userId = "Practitioner/1", patientId = "p1" },
      prefetch = {
        patient = { resourceType = "Patient", id = "p1" },
        ecog = { resourceType = "Bundle", type = "searchset", entry = {
          { resource = obs(cc(LOINC, "89247-1"), { valueInteger = 0, subject = { reference = "Patient/p1" } }) } } },
      },
    }
    local i = run(req)
    assert.truthy(i)
    assert.equal(0, i.facts.ecog)
    -- the patient again inside a searchset (_include): still one patient, one source
    table.insert(req.prefetch.ecog.entry, { resource = { resourceType = "Patient", id = "p1" }, search = { mode = "include" } })
    i = run(req)
    assert.truthy(i)
    assert.equal(2, #i.sources)
  end)

  it("refuses a document with two patients, and one with none", function()
    local b = bundle({ obs(cc(LOINC, "89247-1"), { valueInteger = 1, subject = { reference = "Patient/q" } }) })
    local i, err, status = run(b)
    assert.is_nil(i)
    assert.equal("input", status)
    assert.truthy(err:find("mixed patients", 1, true))
    local appt = { resourceType = "Appointment", status = "booked", start = "2026-07-01",
                   participant = { { actor = { reference = "Patient/someone-else" } } } }
    i, err = run(bundle({ appt }, { no_subject = true }))
    assert.is_nil(i)
    assert.truthy(err:find("mixed patients", 1, true))
    i, err = run({ resourceType = "Bundle", type = "collection", entry = {} })
    assert.is_nil(i)
    assert.truthy(err:find("no FHIR resources", 1, true))
  end)

  it("derives facts that pass the C validation and evaluate", function()
    local _, facts = adapt({ obs(cc(LOINC, "89247-1"), { valueInteger = 1 }),
                             { resourceType = "Condition", code = cc(ICD, "C20") },
                             { resourceType = "Condition", code = cc(SCT, "94222008") } })
    local r = H.eval(facts)
    assert.equal("p1", r.patient_id)
  end)
end)

describe("FHIR adapter: institution code tables and failures", function()
  it("an extension adds a local code and switches one off", function()
    local ext = write([[return {
      ecog = { ["http://hospital.example/obs|PS"] = true },
      secondary = { ["http://snomed.info/sct|94381002"] = false },
    }]])
    local i = adapt({ obs(cc("http://hospital.example/obs", "PS"), { valueInteger = 2 }),
                      { resourceType = "Condition", code = cc(SCT, "94381002") } },
                    { codes = { CODES, ext } })
    os.remove(ext)
    assert.equal(2, i.facts.ecog)
    assert.is_nil(i.facts.metastases)
  end)

  it("an adapter producing invalid facts or looping fails closed", function()
    local bad = write([[return { id = "bad", version = "1", adapt = function()
      return { patient = "x", facts = { ecog = 9 }, sources = {}, unmapped = {} } end }]])
    local i, err, status = run(bundle({}), { adapter = bad })
    assert.is_nil(i)
    assert.equal("protocol", status)
    assert.truthy(err:find("produced invalid facts", 1, true))
    local loop = write([[return { id = "loop", version = "1", adapt = function() while true do end end }]])
    i, err, status = run(bundle({}), { adapter = loop })
    assert.is_nil(i)
    assert.equal("budget", status)
    local io_try = write([[return { id = "io", version = "1", adapt = function() return io.open("/etc/passwd") end }]])
    i, err = run(bundle({}), { adapter = io_try })
    assert.is_nil(i)
    assert.truthy(err:find("undeclared global 'io'", 1, true))
    os.remove(bad)
    os.remove(loop)
    os.remove(io_try)
  end)

  it("names the limit it refuses by", function()
    local i, err, status = run(bundle({ obs(cc(LOINC, "89247-1"), { valueInteger = 1 }) }), { max_members = 1 })
    assert.is_nil(i)
    assert.equal("input", status)
    assert.truthy(err:find("FHIR input limits", 1, true))
  end)
end)

describe("FHIR adapter: malformed documents", function()
  -- Deterministic mutations of the colorectal bundles: every value in turn
  -- replaced by null, a number, a string, an empty object or a list, or
  -- removed. The adapter must answer (facts or a refusal naming why), never
  -- fail with an error of its own.
  local function paths(t, prefix, out)
    for k, v in pairs(t) do
      local p = { table.unpack(prefix) }
      p[#p + 1] = k
      out[#out + 1] = p
      if type(v) == "table" then paths(v, p, out) end
    end
    return out
  end

  local function set(t, p, v)
    for i = 1, #p - 1 do t = t[p[i]] end
    t[p[#p]] = v
  end

  it("never fails on its own, whatever is replaced", function()
    local replacements = { cjson.null, 7, "x", {}, { 1, 2 }, false }
    local seed, runs, refused = 12345, 0, 0
    for _, name in ipairs({ "index_case", "kras_mutant", "surgery_in_30_days" }) do
      local text = H.read(H.root .. "/tests/data/fhir/colorectal/" .. name .. ".json")
      local all = paths(cjson.decode(text), {}, {})
      table.sort(all, function(a, b) return table.concat(a, "/", 1, #a) < table.concat(b, "/", 1, #b) end)
      for i = 1, #all, 3 do
        seed = (seed * 1103515245 + 12345) % 2147483648
        local doc = cjson.decode(text)
        local r = replacements[seed % (#replacements + 1) + 1]
        set(doc, all[i], r)   -- nil (past the list's end) removes the member
        local input, err, status = run(doc)
        runs = runs + 1
        if not input then
          refused = refused + 1
          assert.equal("input", status, table.concat(all[i], "/") .. ": " .. tostring(err))
        end
      end
    end
    assert.is_true(runs > 300)
    assert.is_true(refused < runs)
  end)

  it("answers documents with values of the wrong type (found by hand)", function()
    local ecog = obs(cc(LOINC, "89247-1"), { interpretation = 5 })
    assert.truthy(run(bundle({ ecog })))
    local i = run({ resourceType = "Bundle", entry = { { resource = { resourceType = "Patient", id = 5 } } } })
    assert.equal("Patient #1", i.facts.patient_id)
  end)
end)
