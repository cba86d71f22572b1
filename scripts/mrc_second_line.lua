-- mrc_second_line.lua: the default pathwise protocol.
--
-- Second-line management of metastatic rectal cancer after prior surgery,
-- first-line FOLFOX and radiation, as written in
-- ../shared/spec/guideline.txt. Every item cites the numbers of the
-- guideline sentence it implements and carries that sentence as
-- `evidence`. This script only proposes: the C safety kernel vets every
-- item (see `pathwise rules`).
--
-- Decisions where the guideline is ambiguous (also in clinical.md):
--  * Scope. "after exhausting first-line FOLFOX": a first-line (line 1,
--    or line unrecorded) oxaliplatin regimen whose outcome is "progression"
--    or "intolerance": FOLFOX by any spelling (mFOLFOX6, FOLFOX4), with or
--    without a biologic ("FOLFOX+bevacizumab"), and CAPOX/XELOX, read as
--    FOLFOX's equivalent (oxaliplatin with a fluoropyrimidine; the
--    applicability says so). Intolerance exhausts it as surely as
--    progression. "ongoing" means first line is not exhausted: not
--    applicable. An unrecorded outcome, a first-line name pathwise cannot
--    read, or a line 2 without a line 1: cannot tell, with a missing fact
--    (never a confident "no first-line FOLFOX"). First-line FOLFOXIRI, an
--    exhausted irinotecan regimen anywhere, or an exhausted line 2+: not
--    applicable (beyond the second-line FOLFIRI this guideline covers).
--    metastatic false with metastases listed: cannot tell.
--  * Population: the guideline's patient had a resected, irradiated rectal
--    primary. A colon or unresected primary is still in scope for the
--    systemic therapy; every sentence about the primary is built from the
--    facts (no "resected and irradiated" unless recorded), and primary.site,
--    primary.resected and primary.prior_pelvic_radiation are reported
--    missing when absent.
--  * History: a regimen already progressed on or not tolerated (its
--    chemotherapy backbone, or all its drugs without chemotherapy) is never
--    proposed again; an ongoing regimen is "continue", not "started now".
--  * Symptoms: any recorded symptom is "pain or functional impairment"
--    (L2, L33). A symptomatic site without an RT sentence (brain, liver,
--    lung, peritoneum, other) is sent to the multidisciplinary team.
--  * Warnings: the "what not to do" list is a standing reminder, unless it
--    bites for this patient (then level "patient", shown first).
--  * Molecular results unknown: FOLFIRI plus bevacizumab starts now (the
--    guideline says "immediate initiation" and bevacizumab "regardless of
--    RAS status"); RAS, BRAF and MSI tests are ordered the same day.
--    Anti-EGFR, encorafenib and checkpoint inhibitors wait for results.
--  * RAS wild type: bevacizumab stays the preferred partner and
--    cetuximab / panitumumab are offered as alternatives in the same group
--    ("consider ... instead of"); they are never combined.
--  * BRAF V600E: encorafenib plus cetuximab is offered only when KRAS and
--    NRAS are both known wild type (it contains cetuximab).
--  * MSI-high at ECOG 3-4: the guideline says best supportive care only;
--    that wins, no checkpoint inhibitor.
--  * MSI-high at ECOG 0-2: pathway immunotherapy; pembrolizumab and
--    nivolumab are equal alternatives (neither marked preferred) and no
--    chemotherapy is proposed ("preferred over chemotherapy").
--  * ECOG unknown: no systemic therapy yet; supportive items (palliative
--    RT, bone agents, local therapy of a symptomatic primary) and the
--    molecular tests go ahead, since the guideline asks for both steps
--    together ("Confirm ... and obtain molecular testing results").
--  * Best supportive care: no molecular tests (they would change nothing).
--  * Surgery planned in 42 days or fewer: FOLFIRI without bevacizumab is
--    the preferred regimen; bevacizumab is not proposed (the kernel would
--    refuse it anyway). Surgery date unknown: bevacizumab stays, with a
--    warning to confirm no surgery within 42 days.
--  * Inguinal RT after prior groin radiation (or radiation history
--    unknown): the 50 Gy course is not proposed; a warning asks for a
--    radiation-oncology review (re-irradiation).
--  * Primary obstruction: local therapy is "considered"; stenting, laser or
--    palliative resection only if absolutely necessary (a warning). The
--    standing "no further surgery on the primary" warning still shows.

-- The guideline's sentences: citations and text (verbatim).
local S = {
  overview = { { 1, 2, 3 }, "This patient with widely metastatic rectal cancer (skeletal, inguinal, and retroperitoneal sites) after exhausting first-line FOLFOX should receive second-line systemic chemotherapy with irinotecan-based regimens (FOLFIRI) plus targeted biologics, with palliative radiotherapy reserved strictly for symptomatic skeletal or nodal sites causing pain or functional impairment." },
  cornerstone = { { 1, 3 }, "The cornerstone of management is immediate initiation of second-line combination chemotherapy, as this patient has progressed through first-line FOLFOX and now presents with extensive non-oligometastatic disease." },
  folfiri = { { 1, 3 }, "FOLFIRI (5-FU/leucovorin/irinotecan) is the appropriate second-line regimen after FOLFOX failure, provided the patient maintains good performance status." },
  bev = { { 2, 4 }, "Add bevacizumab (anti-VEGF monoclonal antibody) regardless of RAS mutation status, as it improves overall survival in metastatic colorectal cancer and can be used across all molecular subtypes." },
  egfr = { { 2, 4 }, "If RAS wild-type (KRAS and NRAS), consider cetuximab or panitumumab (EGFR inhibitors) instead of bevacizumab, but these are contraindicated in RAS-mutant tumors." },
  ras_pitfall = { { 2, 4 }, "Critical pitfall: KRAS/RAS mutation testing must be performed before selecting EGFR inhibitors, as they are completely ineffective in mutant tumors and expose patients to unnecessary toxicity." },
  rt_selective = { { 1, 3 }, "Radiotherapy should be used selectively and only for symptomatic control, not as routine treatment of asymptomatic metastases." },
  rt_bone = { { 1, 3 }, "Painful skeletal metastases causing significant pain or risk of pathological fracture warrant palliative radiotherapy (typically 20-30 Gy in 5-10 fractions)." },
  rt_inguinal = { { 3 }, "Symptomatic inguinal lymphadenopathy causing pain, skin breakdown, or lymphedema can be treated with palliative radiotherapy (e.g., 50 Gy in 25 fractions if no prior groin radiation)." },
  rt_retro = { { 1 }, "Retroperitoneal masses causing obstruction, pain, or neurological symptoms may benefit from palliative radiation." },
  bone_agent = { { 3 }, "Add bisphosphonates (zoledronic acid) or denosumab for skeletal metastases to prevent skeletal-related events including pathological fractures, spinal cord compression, and hypercalcemia." },
  primary_not = { { 1, 3 }, "Locoregional treatment of the rectal primary is NOT indicated in this setting, as the patient has already undergone surgery and adjuvant radiation, and the metastatic burden is the life-limiting factor." },
  primary_sympt = { { 1, 3 }, "Only consider additional local therapy (stoma formation, laser ablation, or repeat radiotherapy) if the primary site becomes symptomatic with bleeding, obstruction, or intractable pain." },
  obstruction = { { 1, 5 }, "Endorectal stenting, laser ablation, or palliative resection are options for malignant obstruction, but should be avoided unless absolutely necessary given prior surgery and radiation." },
  ps_good = { { 1, 3 }, "Second-line chemotherapy should only be offered if the patient maintains good performance status (ECOG 0-2)." },
  ps_poor = { { 1, 3 }, "Patients with poor performance status (ECOG 3-4) should receive best supportive care only, as aggressive chemotherapy provides no survival benefit and worsens quality of life." },
  ras_test = { { 2, 4 }, "RAS mutation status (KRAS exons 2,3,4 and NRAS exons 2,3,4) must be known before selecting targeted agents." },
  braf = { { 4 }, "BRAF V600E mutation testing should be performed, as BRAF-mutant tumors have worse prognosis and may benefit from specific targeted combinations (encorafenib plus cetuximab)." },
  msi = { { 3 }, "Microsatellite instability (MSI) testing is essential, as MSI-high tumors may respond dramatically to immune checkpoint inhibitors (pembrolizumab, nivolumab), which would be preferred over chemotherapy." },
  seq_confirm = { { 2, 3 }, "Confirm adequate performance status (ECOG 0-2) and obtain molecular testing results." },
  seq_initiate = { { 1, 2, 3 }, "Initiate FOLFIRI plus bevacizumab (or anti-EGFR if RAS wild-type) as second-line therapy." },
  seq_rt = { { 1, 3 }, "Add palliative radiotherapy only to symptomatic skeletal or nodal sites causing pain or functional impairment." },
  seq_bone = { { 3 }, "Start bisphosphonates or denosumab for skeletal metastases." },
  seq_primary = { { 1, 3 }, "Reserve local treatment of rectal primary strictly for symptomatic complications (bleeding, obstruction)." },
  seq_ct = { { 3 }, "Re-evaluate response after 2-3 cycles (6-9 weeks) with CT imaging and adjust therapy based on response and tolerance." },
  not_surgery = { { 1, 3 }, "Do not perform additional surgery on the rectal primary, as the patient has already had resection and radiation, and metastatic disease is the dominant problem." },
  not_crt = { { 2 }, "Do not use long-course chemoradiotherapy (50 Gy with concurrent 5-FU) in the metastatic setting, as this delays systemic therapy without survival benefit." },
  not_egfr = { { 2, 4 }, "Do not use EGFR inhibitors without confirming RAS wild-type status, as they are harmful in RAS-mutant disease." },
  not_oxali = { { 1 }, "Do not continue oxaliplatin if the patient has developed grade 2 or higher persistent neuropathy from prior FOLFOX." },
  not_bev = { { 2, 4 }, "Do not administer bevacizumab within 6 weeks of any planned surgery due to wound healing complications." },
  pfs = { { 1, 3 }, "Median progression-free survival with second-line FOLFIRI plus biologics is approximately 5-8 months." },
  rt_relief = { { 3 }, "Palliative radiotherapy provides pain relief in 70-80% of patients with symptomatic bone metastases." },
  goal = { { 1, 3 }, "The goal is quality of life and symptom control, not cure, given the extensive metastatic burden after first-line therapy failure." },
}

------------------------------------------------------------------------
-- Local choices: what an institution changes (scripts/README.md). A
-- protocol that `extends` this one names only the entries it changes.
------------------------------------------------------------------------

local policy = {
  -- Days before planned surgery within which bevacizumab is withheld.
  bev_window_days = 42, -- "within 6 weeks"
  -- Anti-EGFR agents offered with FOLFIRI for RAS wild type, in order;
  -- their label, an added rationale sentence and the sentences cited.
  anti_egfr = { "cetuximab", "panitumumab" },
  anti_egfr_label = "EGFR inhibitor",
  anti_egfr_rationale = "",
  anti_egfr_sentences = { "egfr" },
  -- Bone-modifying agents offered for skeletal metastases, in order.
  bone_agents = { "zoledronic_acid", "denosumab" },
  -- Formulary exclusions: item ids never proposed (reported as a note).
  excluded = {},
}

-- One named decision: the dose of palliative radiotherapy for a
-- symptomatic site, and the sentences it cites and quotes.
function policy.rt_dose(site, met, spec) -- luacheck: ignore site met
  return spec.dose, { spec.sentence }, spec.evidence
end

------------------------------------------------------------------------
-- Citations and evidence. Authors write cites("a", "b") and
-- evidence("a", "b") with the names of S's sentences; the rest of this
-- section only makes them cheap (see "Writing for speed" in
-- scripts/README.md) and can be skipped.
------------------------------------------------------------------------

-- The library functions this file uses, as locals: a global read goes
-- through the sandbox's environment on every call.
local ipairs, pairs, type, tostring, error, select, next = ipairs, pairs, type, tostring, error, select, next
local concat, unpack, insert = table.concat, table.unpack, table.insert

-- A sentence's citation numbers as a bit set (bit n-1 for reference n),
-- and the ascending list of the numbers of every set of references 1-8,
-- made once and shared by every item that cites them.
local function numbers(set) -- the reference numbers in a bit set, ascending
  local list = {}
  for n = 1, 32 do
    if set & (1 << (n - 1)) ~= 0 then list[#list + 1] = n end
  end
  return list
end
local LIST = {}
for set = 1, 255 do LIST[set] = numbers(set) end

-- BITS[name]: the sentence's bit set and Q2/Q3: the joined texts of the
-- combinations of sentences items quote, filled by `prepare` (end of the
-- file) once an extension has merged its sentences and policy in. A name
-- they lack is computed afresh on each call (never stored during an
-- evaluation, so `check --coverage` counts the same on every engine).
local BITS, Q2, Q3 = {}, {}, {}

local function sentence(key)
  local s = S[key]
  if s == nil then error("no sentence named '" .. tostring(key) .. "'", 3) end
  return s
end
local function sentence_bits(key)
  local b = 0
  for _, n in ipairs(sentence(key)[1]) do b = b | (1 << (n - 1)) end
  return b
end
local function bits(key)
  return BITS[key] or sentence_bits(key)
end
local function set_list(set)
  return LIST[set] or numbers(set)
end

-- Fixed arity: no varargs on the paths every evaluation takes.
local function cites1(a)
  return set_list(bits(a))
end
local function cites2(a, b)
  return set_list(bits(a) | bits(b))
end
local function cites3(a, b, c)
  return set_list(bits(a) | bits(b) | bits(c))
end
local function cites(...) -- any number of names
  local set = 0
  for i = 1, select("#", ...) do set = set | bits(select(i, ...)) end
  return set_list(set)
end
local function cites_of(names) -- a list of names (policy.anti_egfr_sentences)
  local set = 0
  for i = 1, #names do set = set | bits(names[i]) end
  return set_list(set)
end

-- The named sentences' text, joined by a space.
local function evidence1(a)
  return sentence(a)[2]
end
local function evidence2(a, b)
  local q = Q2[a]
  return q and q[b] or sentence(a)[2] .. " " .. sentence(b)[2]
end
local function evidence3(a, b, c)
  local q = Q3[a]
  q = q and q[b]
  return q and q[c] or sentence(a)[2] .. " " .. sentence(b)[2] .. " " .. sentence(c)[2]
end
local function evidence(...) -- any number of names
  local texts = { ... }
  for i = 1, #texts do texts[i] = sentence(texts[i])[2] end
  return concat(texts, " ")
end
local function evidence_of(names) -- a list of names
  local n = #names
  if n == 1 then return evidence1(names[1]) end
  if n == 2 then return evidence2(names[1], names[2]) end
  return evidence(unpack(names))
end

-- constant(item, cited, quoted): an item that never changes, made once at
-- load instead of on every evaluation. `cited` and `quoted` name the
-- sentences of its citations and evidence; `prepare` fills those in once an
-- extension has merged in. Items given to `out` may be such shared
-- tables: never change one (copy it first).
local CONSTANT = {}
local function constant(item, cited, quoted)
  CONSTANT[#CONSTANT + 1] = { item, cited, quoted }
  return item
end

-- "unknown" and absent mean the same.
local function known(v)
  if v == nil or v == "unknown" then return nil end
  return v
end

local function has(list, value)
  if list == nil then return false end
  for _, v in ipairs(list) do
    if v == value then
      return true
    end
  end
  return false
end

-- The members of `values` present in `list`, in the order of `values`.
local function present(list, values)
  local found = {}
  if list == nil then
    return found
  end
  for _, v in ipairs(values) do
    if has(list, v) then
      found[#found + 1] = v
    end
  end
  return found
end

local function lower_has(list, value)
  if list == nil then return false end
  for _, v in ipairs(list) do
    if type(v) == "string" and v:lower() == value then
      return true
    end
  end
  return false
end

local function exhausted(outcome)
  return outcome == "progression" or outcome == "intolerance"
end

local function join(list)
  return concat(list, ", ")
end

-- "fracture_risk" -> "fracture risk", "neurologic" -> "neurological symptoms"
local WORD = {
  neurologic = "neurological symptoms", fracture_risk = "fracture risk", skin_breakdown = "skin breakdown",
  intractable_pain = "intractable pain", pain = "pain", lymphedema = "lymphedema", obstruction = "obstruction",
  bleeding = "bleeding",
}
local function words(list)
  local w = {}
  for i, v in ipairs(list) do
    w[i] = WORD[v] or (v:gsub("_", " "))
  end
  return join(w)
end

------------------------------------------------------------------------
-- The treatment history, read by what each regimen contained
------------------------------------------------------------------------

-- The drugs that decide whether a regimen is "the same" one again, as in
-- the C kernel (rule no_repeat_failed_regimen): 5-FU and capecitabine are
-- one fluoropyrimidine ("fp"), leucovorin is left out.
local PART = {
  FOLFOX = { fp = true, oxaliplatin = true },
  CAPOX = { fp = true, oxaliplatin = true },
  XELOX = { fp = true, oxaliplatin = true },
  CAPEOX = { fp = true, oxaliplatin = true },
  FOLFIRI = { fp = true, irinotecan = true },
  FOLFOXIRI = { fp = true, oxaliplatin = true, irinotecan = true },
  FLUOROURACIL = { fp = true },
  ["5-FU"] = { fp = true },
  CAPECITABINE = { fp = true },
  LEUCOVORIN = {},
  OXALIPLATIN = { oxaliplatin = true },
  IRINOTECAN = { irinotecan = true },
  BEVACIZUMAB = { bevacizumab = true },
  CETUXIMAB = { cetuximab = true },
  PANITUMUMAB = { panitumumab = true },
  ENCORAFENIB = { encorafenib = true },
  PEMBROLIZUMAB = { pembrolizumab = true },
  NIVOLUMAB = { nivolumab = true },
}

-- The set of drugs of a regimen or item id ("FOLFOX+bevacizumab",
-- "mFOLFOX6", "CAPOX"), or nil when a part of the name is not known. The
-- set also lists its drugs (set[1], set[2], ...) so that it can be walked
-- without pairs. Sets are shared: never change one.
local PART_LIST = {} -- PART's sets as lists, made once
for p, d in pairs(PART) do
  local list = {}
  for k in pairs(d) do list[#list + 1] = k end
  PART_LIST[p] = list
end
local function read_drugs(name)
  local set = {}
  for part in (name .. "+"):gmatch("([^+]*)%+") do
    local p = part:upper()
    if p:match("^M?FOLFOX%d*$") then
      p = "FOLFOX"
    end
    local d = PART_LIST[p]
    if d == nil then
      return nil
    end
    for _, k in ipairs(d) do
      if not set[k] then
        set[k] = true
        set[#set + 1] = k
      end
    end
  end
  return set
end
-- DRUGS[name]: the sets of the names seen most, made by `prepare`.
local DRUGS = {}
local function drugs(name)
  if type(name) ~= "string" then
    return nil
  end
  return DRUGS[name] or read_drugs(name)
end

local function subset(a, b) -- every drug of a is in b
  for i = 1, #a do
    if not b[a[i]] then
      return false
    end
  end
  return true
end

local function exhausted(outcome)
  return outcome == "progression" or outcome == "intolerance"
end

-- What the history says, for scope and for what may be started:
--  first: the first-line oxaliplatin-based regimen (FOLFOX, or CAPOX/XELOX
--    read as FOLFOX's equivalent): { name, state = "exhausted" | "ongoing"
--    | "undecided", outcome }
--  unrecognised: names at line 1 (or no line) pathwise cannot read
--  triplet: a first-line FOLFOXIRI (irinotecan already given)
--  irinotecan: a regimen with irinotecan already exhausted
--  later: a line-2+ regimen already exhausted
--  gap: the highest line when line 1 is missing
--  ongoing: regimens ongoing beyond first line { i, name, set, line }
--  failed: the drug sets of regimens exhausted anywhere
local RANK = { exhausted = 3, ongoing = 2, undecided = 1 }
local function history(facts)
  local h = { unrecognised = {}, ongoing = {}, failed = {} }
  local regimens = facts.prior_regimens
  if regimens == nil then
    return h
  end
  local has_first, top = false, 0
  for i, r in ipairs(regimens) do
    local set, line = drugs(r.name), r.line
    if line == 1 then
      has_first = true
    end
    if line ~= nil and line > top then
      top = line
    end
    if set ~= nil and exhausted(r.outcome) then
      h.failed[#h.failed + 1] = set
    end
    local first = line == nil or line == 1
    if set == nil then
      if first then
        h.unrecognised[#h.unrecognised + 1] = r.name and ("'" .. r.name .. "'") or "(name not recorded)"
      end
    elseif set.irinotecan and exhausted(r.outcome) then
      h.irinotecan = h.irinotecan or r.name
    end
    if set ~= nil and first and set.oxaliplatin and set.irinotecan then
      h.triplet = h.triplet or r.name
    elseif set ~= nil and first and set.oxaliplatin and set.fp then
      local state = exhausted(r.outcome) and "exhausted" or (r.outcome == "ongoing" and "ongoing" or "undecided")
      if h.first == nil or RANK[state] > RANK[h.first.state] then
        h.first = { name = r.name, state = state, outcome = r.outcome }
      end
    elseif line ~= nil and line >= 2 and exhausted(r.outcome) then
      h.later = h.later or (r.name or ("line " .. tostring(line)))
    elseif set ~= nil and r.outcome == "ongoing" and not (first and set.oxaliplatin) then
      h.ongoing[#h.ongoing + 1] = { i = i, name = r.name, set = set, line = line }
    end
  end
  if top >= 2 and not has_first then
    h.gap = top
  end
  h.top = top
  return h
end

-- Was an item's regimen already progressed on or not tolerated? As in the
-- kernel: an item containing a failed regimen's chemotherapy backbone (or
-- all of its drugs when it had no chemotherapy).
local CHEMO = { fp = true, oxaliplatin = true, irinotecan = true }
local function already_failed(h, id)
  local set = drugs(id) or {} -- an unknown id: nothing of it failed
  for _, f in ipairs(h.failed) do
    local chemo, within = false, true -- the backbone: f's chemotherapy
    for i = 1, #f do
      if CHEMO[f[i]] then
        chemo = true
        within = within and set[f[i]] == true
      end
    end
    if chemo and within or not chemo and #f > 0 and subset(f, set) then
      return true
    end
  end
  return false
end

-- How an item relates to what is already ongoing: "continue" (the same
-- drugs), "add" (an ongoing regimen is part of it) or nil (a new start).
local function ongoing_relation(h, id)
  local set = drugs(id)
  for _, g in ipairs(h.ongoing) do
    if set ~= nil and subset(g.set, set) then
      return subset(set, g.set) and "continue" or "add", g
    end
  end
  return nil
end

------------------------------------------------------------------------
-- Applicability
------------------------------------------------------------------------

-- The guideline's population: a resected, irradiated rectal primary. These
-- facts decide its wording about the primary, not whether the systemic
-- therapy applies; when absent they are reported missing.
local POPULATION = {
  site = "the site of the primary tumour (rectum, left or right colon)",
  resected = "whether the primary was resected",
  prior_pelvic_radiation = "whether the pelvis was irradiated",
}
local POPULATION_MISSING = {} -- made once: field -> the missing item
for _, field in ipairs({ "site", "resected", "prior_pelvic_radiation" }) do
  POPULATION_MISSING[#POPULATION_MISSING + 1] = { field, constant({
    fact = "primary." .. field,
    why = "The guideline was written for a resected and irradiated rectal primary; what it says about the primary depends on " ..
      POPULATION[field] .. ".",
    test = "primary tumour history review",
  }, { "overview", "primary_not" }) }
end

local function population(facts, out)
  local p = facts.primary
  for _, a in ipairs(POPULATION_MISSING) do
    if p[a[1]] == nil then
      out.missing(a[2])
    end
  end
  local notes = {}
  if p.site == "colon_left" or p.site == "colon_right" or p.site == "colon" then
    notes[#notes + 1] = "Colon primary: the guideline was written for rectal cancer; its systemic therapy applies to metastatic colorectal cancer, its advice on the rectal tumour itself does not."
  end
  if p.resected == false then
    notes[#notes + 1] = "The primary has not been resected: the guideline's advice about the primary assumes prior surgery."
  end
  return notes
end

local function history_missing(out, why)
  out.missing{
    fact = "prior_regimens",
    why = why,
    test = "treatment history review",
    citations = cites2("overview", "cornerstone"),
  }
end

-- What the treatment history alone decides: false or nil with a reason,
-- or nothing when the history allows the guideline (or is unknown).
local function scope_by_history(h, out)
  if h.gap ~= nil then
    history_missing(out, "The treatment history lists line " .. h.gap .. " but no line 1: which regimen was first line is not clear.")
    return nil, "Cannot tell whether the guideline applies: line " .. h.gap .. " is recorded without a line 1."
  end
  if h.first ~= nil and h.first.state == "ongoing" and h.top >= 2 then
    history_missing(out, "First-line " .. h.first.name .. " is recorded as ongoing, but line " .. h.top .. " is also listed.")
    return nil, "Cannot tell whether the guideline applies: first line is ongoing yet a later line is listed."
  end
  if h.later ~= nil then
    return false, "A later line (" .. tostring(h.later) ..
      ") has already been exhausted: beyond the second-line setting this guideline covers."
  end
  if h.irinotecan ~= nil then
    return false, "Irinotecan-based treatment (" .. tostring(h.irinotecan) ..
      ") already progressed or was not tolerated: the guideline's second-line FOLFIRI is used up."
  end
  if h.triplet ~= nil then
    return false, "First-line " .. tostring(h.triplet) ..
      " already contained irinotecan: the guideline covers second-line FOLFIRI after first-line FOLFOX."
  end
  if h.first == nil and #h.unrecognised > 0 then
    history_missing(out, "First-line regimen " .. join(h.unrecognised) ..
      " is not one pathwise recognises: whether it was oxaliplatin-based (FOLFOX, CAPOX) decides the guideline's scope.")
    return nil, "Cannot tell whether the guideline applies: the first-line regimen (" .. join(h.unrecognised) .. ") is not recognised."
  end
  if h.first == nil then
    return false, "No first-line FOLFOX (or other oxaliplatin-based regimen such as CAPOX) in the treatment history: the guideline covers second line after first-line FOLFOX."
  end
  if h.first.state == "ongoing" then
    return false, "First-line " .. h.first.name .. " is ongoing, not exhausted: second-line treatment is not yet indicated."
  end
  return "go"
end

local function applies(facts, out)
  local metastatic = facts.metastatic
  local mets = facts.metastases
  local regimens = facts.prior_regimens

  if facts.primary.site == "non_colorectal" then
    return false, "The primary is not colorectal: this guideline for metastatic rectal cancer does not apply."
  end
  if metastatic == false then
    if mets ~= nil and #mets > 0 then
      out.missing{
        fact = "metastatic",
        why = "The facts contradict each other: metastatic is false but " .. #mets .. " metastatic site(s) are listed.",
        test = "staging CT chest/abdomen/pelvis",
        citations = cites1("overview"),
      }
      return nil, "Cannot tell whether the guideline applies: metastatic is false but metastases are listed."
    end
    return false, "Not metastatic: the guideline covers metastatic disease after first-line FOLFOX."
  end

  local h = history(facts)
  if regimens ~= nil then
    local verdict, why = scope_by_history(h, out)
    if verdict ~= "go" then
      return verdict, why
    end
  end

  local unknown = {}
  if metastatic == nil then
    out.missing{
      fact = "metastatic",
      why = "The guideline applies to metastatic disease; metastatic status is not recorded.",
      test = "staging CT chest/abdomen/pelvis",
      citations = cites1("overview"),
    }
    unknown[#unknown + 1] = "metastatic"
  end
  if regimens == nil then
    out.missing{
      fact = "prior_regimens",
      why = "The guideline applies after exhausting first-line FOLFOX; the treatment history is not recorded.",
      test = "treatment history review",
      citations = cites2("overview", "cornerstone"),
    }
    unknown[#unknown + 1] = "prior_regimens"
  elseif h.first.state == "undecided" then
    history_missing(out, "The outcome of first-line " .. h.first.name .. " (progression, intolerance or ongoing) is not recorded.")
    unknown[#unknown + 1] = "prior_regimens (" .. h.first.name .. " outcome)"
  end
  local notes = population(facts, out)
  if #unknown > 0 then
    return nil, "Cannot tell whether the guideline applies: " .. join(unknown) .. " unknown."
  end
  if h.first ~= nil and h.first.name ~= "FOLFOX" and not h.first.name:upper():match("FOLFOX") then
    insert(notes, 1, "First-line " .. h.first.name ..
      " is read as the guideline's first-line FOLFOX: both are oxaliplatin with a fluoropyrimidine.")
  end
  if #notes > 0 then
    return true, concat(notes, " ")
  end
  return true
end

------------------------------------------------------------------------
-- Molecular testing (missing facts and the test orders)
------------------------------------------------------------------------

-- The items of this section that never change, made once (see
-- `constant`: their citations and evidence are filled in at load).
local function ras_missing(gene)
  return constant({
    fact = "molecular." .. gene,
    why = gene:upper() .. " status must be known before selecting EGFR inhibitors.",
    order = "ras_testing",
    test = "KRAS and NRAS exons 2, 3, 4",
  }, { "ras_test" })
end
local RAS_GENES = { "kras", "nras" }
local RAS_MISSING = { kras = ras_missing("kras"), nras = ras_missing("nras") }
local RAS_FACTS = { "molecular.kras", "molecular.nras" }
local BRAF_MISSING = constant({
  fact = "molecular.braf_v600e",
  why = "BRAF V600E status is prognostic and selects encorafenib plus cetuximab.",
  order = "braf_testing",
  test = "BRAF V600E mutation testing",
}, { "braf" })
local BRAF_TESTING = constant({
  id = "braf_testing",
  text = "BRAF V600E mutation testing.",
  rationale = "BRAF-mutant tumours have a worse prognosis and may benefit from encorafenib plus cetuximab.",
  facts = { "molecular.braf_v600e" },
}, { "braf" }, { "braf" })
local MSI_MISSING = constant({
  fact = "molecular.msi",
  why = "MSI-high tumours are treated with a checkpoint inhibitor in preference to chemotherapy.",
  order = "msi_testing",
  test = "microsatellite instability (MSI) / mismatch-repair testing",
}, { "msi" })
local MSI_TESTING = constant({
  id = "msi_testing",
  text = "Microsatellite instability (MSI) testing.",
  rationale = "MSI-high tumours may respond dramatically to pembrolizumab or nivolumab, preferred over chemotherapy.",
  facts = { "molecular.msi" },
}, { "msi" }, { "msi" })

-- folfiri_now: FOLFIRI plus bevacizumab is being recommended now, so the
-- RAS result need not hold it up (said only then).
local function order_tests(facts, out, folfiri_now)
  local m = facts.molecular
  -- One mutant gene settles RAS status (mutant): the other result would
  -- change nothing, so no RAS test is ordered then.
  local kras, nras = known(m.kras), known(m.nras)
  if kras ~= "mutant" and nras ~= "mutant" and (kras == nil or nras == nil) then
    for _, gene in ipairs(RAS_GENES) do
      if known(m[gene]) == nil then
        out.missing(RAS_MISSING[gene])
      end
    end
    out.recommend{
      id = "ras_testing",
      text = "Extended RAS testing: KRAS and NRAS exons 2, 3, 4.",
      rationale = folfiri_now and "RAS status must be known before an EGFR inhibitor can be chosen; FOLFIRI plus bevacizumab need not wait for it."
        or "RAS status must be known before an EGFR inhibitor can be chosen.",
      citations = cites2("ras_test", "ras_pitfall"),
      evidence = evidence2("ras_test", "ras_pitfall"),
      facts = kras == nil and nras == nil and RAS_FACTS or { kras == nil and "molecular.kras" or "molecular.nras" },
    }
  end
  if known(m.braf_v600e) == nil then
    out.missing(BRAF_MISSING)
    out.recommend(BRAF_TESTING)
  end
  if known(m.msi) == nil then
    out.missing(MSI_MISSING)
    out.recommend(MSI_TESTING)
  end
end

------------------------------------------------------------------------
-- Systemic therapy
------------------------------------------------------------------------

-- Integer days to planned surgery, or nil (none planned or unknown).
local function surgery_days(facts)
  local d = facts.planned_surgery_in_days
  if type(d) == "number" then
    return d
  end
  return nil
end

-- The words for starting an item, given what is already ongoing.
local function start_text(h, id, what, reason, fresh)
  local rel, g = ongoing_relation(h, id)
  local where = g and ("prior_regimens[" .. (g.i - 1) .. "]" .. (g.line and (", line " .. g.line) or "")) or ""
  if rel == "continue" then
    return what .. " is already ongoing (" .. where .. "): continue it" .. reason .. "; nothing new to start."
  elseif rel == "add" then
    return what .. reason .. ": " .. g.name .. " is already ongoing (" .. where .. "); add the rest to it."
  end
  return what .. reason .. (fresh or ".")
end

local REGIMEN_FACTS = { "ecog", "prior_regimens", "planned_surgery_in_days" }
local BRAF_RAS_FACTS = { "molecular.braf_v600e", "molecular.kras", "molecular.nras" }

-- A regimen already progressed on or not tolerated is not proposed again.
local function skip_failed(out, h, id)
  if already_failed(h, id) then
    out.warn{
      id = "regimen_already_failed",
      text = id .. " is not proposed: the treatment history shows it (or all of its drugs) already progressed or was not tolerated.",
      citations = cites1("folfiri"),
    }
    return true
  end
  return false
end

-- Returns whether a regimen with a biologic was recommended.
local function second_line_regimens(facts, out, h)
  local m = facts.molecular
  local kras, nras, braf = known(m.kras), known(m.nras), known(m.braf_v600e)
  local ras_wt = kras == "wild_type" and nras == "wild_type"
  local days = surgery_days(facts)
  local bev_ok = days == nil or days > policy.bev_window_days
  local biologic = false

  -- A local rule (plugin) that blocked FOLFIRI+bevacizumab: it is still
  -- proposed (and reported withheld by local policy) and FOLFIRI without
  -- bevacizumab follows, as when the guideline's own window applies.
  local withheld = bev_ok and out.withheld("FOLFIRI+bevacizumab")
  if bev_ok and not skip_failed(out, h, "FOLFIRI+bevacizumab") then
    biologic = not withheld
    out.recommend{
      id = "FOLFIRI+bevacizumab",
      text = start_text(h, "FOLFIRI+bevacizumab", "FOLFIRI (5-FU/leucovorin/irinotecan) plus bevacizumab", "",
        ", started now as second-line therapy."),
      rationale = "FOLFIRI is the second-line regimen after FOLFOX failure at ECOG 0-2; bevacizumab is added regardless of RAS status, so unknown molecular results do not delay it.",
      citations = cites2("folfiri", "bev"),
      group = "second_line_regimen",
      preferred = not withheld,
      evidence = evidence3("folfiri", "bev", "seq_initiate"),
      facts = REGIMEN_FACTS,
    }
  end
  if (not bev_ok or withheld) and not skip_failed(out, h, "FOLFIRI") then
    out.recommend{
      id = "FOLFIRI",
      text = start_text(h, "FOLFIRI", "FOLFIRI (5-FU/leucovorin/irinotecan) without bevacizumab",
        withheld and " (bevacizumab is withheld by local policy " .. withheld .. ")"
          or " (surgery is planned in " .. tostring(days) .. " days)", ", started now as second-line therapy."),
      rationale = withheld and "FOLFIRI is the second-line regimen after FOLFOX failure; bevacizumab is withheld by local policy (" .. withheld .. ")."
        or "FOLFIRI is the second-line regimen after FOLFOX failure; bevacizumab is withheld because surgery is planned within 6 weeks.",
      citations = withheld and cites1("folfiri") or cites2("folfiri", "not_bev"),
      group = "second_line_regimen",
      preferred = true,
      evidence = withheld and evidence1("folfiri") or evidence2("folfiri", "not_bev"),
      facts = REGIMEN_FACTS,
    }
  end

  if ras_wt then
    for _, agent in ipairs(policy.anti_egfr) do
      local id = "FOLFIRI+" .. agent
      if not skip_failed(out, h, id) then
        biologic = true
        out.consider{
          id = id,
          text = start_text(h, id, "FOLFIRI plus " .. agent .. " (" .. policy.anti_egfr_label .. ") instead of bevacizumab",
            " (KRAS and NRAS are wild type)"),
          rationale = "RAS wild-type (KRAS and NRAS): an EGFR inhibitor may replace bevacizumab; never combined with it." ..
            policy.anti_egfr_rationale,
          citations = cites_of(policy.anti_egfr_sentences),
          group = "second_line_regimen",
          evidence = evidence_of(policy.anti_egfr_sentences),
          facts = RAS_FACTS,
        }
      end
    end
  else
    out.note("anti-EGFR not proposed: KRAS " .. tostring(kras or "unknown") ..
      ", NRAS " .. tostring(nras or "unknown"))
  end

  if braf == "mutant" then
    if ras_wt and not skip_failed(out, h, "encorafenib+cetuximab") then
      out.consider{
        id = "encorafenib+cetuximab",
        text = start_text(h, "encorafenib+cetuximab", "Encorafenib plus cetuximab for the BRAF V600E-mutant tumour", ""),
        rationale = "BRAF V600E-mutant tumours have a worse prognosis and may benefit from encorafenib plus cetuximab.",
        citations = cites1("braf"),
        group = "second_line_regimen",
        evidence = evidence1("braf"),
        facts = BRAF_RAS_FACTS,
      }
    elseif not ras_wt then
      out.warn{
        id = "braf_combination_needs_ras_wt",
        text = "BRAF V600E mutant, but encorafenib plus cetuximab contains an EGFR inhibitor: it waits for KRAS and NRAS to be confirmed wild type.",
        citations = cites2("braf", "not_egfr"),
      }
    end
  end
  return biologic, bev_ok and not withheld and not already_failed(h, "FOLFIRI+bevacizumab")
end

local MSI_ECOG_FACTS = { "molecular.msi", "ecog" }
local function checkpoint_inhibitors(out, h)
  for _, agent in ipairs({ "pembrolizumab", "nivolumab" }) do
    if already_failed(h, agent) then
      out.warn{
        id = "regimen_already_failed",
        text = agent .. " is not proposed: the treatment history shows it already progressed or was not tolerated.",
        citations = cites1("msi"),
      }
    else
    out.recommend{
      id = agent,
      text = agent:sub(1, 1):upper() .. agent:sub(2) ..
        " (immune checkpoint inhibitor) for the MSI-high tumour, preferred over chemotherapy.",
      rationale = "MSI-high tumours may respond dramatically to immune checkpoint inhibitors, which are preferred over chemotherapy.",
      citations = cites1("msi"),
      group = "checkpoint_inhibitor",
      evidence = evidence1("msi"),
      facts = MSI_ECOG_FACTS,
    }
    end
  end
end

------------------------------------------------------------------------
-- Palliative radiotherapy and bone agents
------------------------------------------------------------------------

-- Any recorded symptom at a site is "pain or functional impairment" (L2,
-- L33): the symptoms each sentence names are examples, not a closed list.
local RT = {
  bone = {
    action = "palliative_rt_bone",
    sentence = "rt_bone",
    evidence = { "rt_bone", "seq_rt" },
    strength = "recommended",
    dose = "typically 20-30 Gy in 5-10 fractions",
  },
  inguinal_nodes = {
    action = "palliative_rt_inguinal",
    sentence = "rt_inguinal",
    evidence = { "rt_inguinal" },
    strength = "consider",
    dose = "e.g. 50 Gy in 25 fractions if no prior groin radiation",
  },
  retroperitoneal = {
    action = "palliative_rt_retroperitoneal",
    sentence = "rt_retro",
    evidence = { "rt_retro" },
    strength = "consider",
    dose = "dose and fractionation per radiation oncology",
  },
}

local SITE_NAME = {
  bone = "bone metastasis",
  inguinal_nodes = "inguinal nodal metastasis",
  retroperitoneal = "retroperitoneal mass",
  liver = "liver metastasis",
  lung = "lung metastasis",
  peritoneum = "peritoneal metastasis",
  brain = "brain metastasis",
  other = "metastasis",
}

-- prior_radiation_sites is a controlled vocabulary: a base site, with
-- "left ", "right " or "bilateral " in front if wanted. An entry outside it
-- may include the groin.
local RT_BASE = {
  pelvis = true, groin = true, inguinal = true, spine = true, retroperitoneum = true, bone = true,
  brain = true, liver = true, lung = true, chest = true, abdomen = true, other = true,
}

-- true (the groin was irradiated), false (it was not), "possibly" (an
-- entry pathwise cannot read), nil (the history is not recorded).
local function groin_irradiated(facts)
  local sites = facts.prior_radiation_sites
  if sites == nil then
    return nil
  end
  local result = false
  for _, v in ipairs(sites) do
    local base = v:lower()
    for _, side in ipairs({ "left ", "right ", "bilateral " }) do
      if base:sub(1, #side) == side then
        base = base:sub(#side + 1)
      end
    end
    if base == "groin" or base == "inguinal" then
      return true
    elseif not RT_BASE[base] then
      result = "possibly"
    end
  end
  return result
end

local function groin_review(facts, out, label, why)
  local irradiated = groin_irradiated(facts)
  local lead = irradiated == true and "Prior groin radiation"
    or irradiated == "possibly" and "A prior radiotherapy site is not one pathwise recognises and may include the groin"
    or "Radiation history not recorded"
  out.warn{
    id = "groin_reirradiation_review",
    text = lead .. ": symptomatic inguinal metastasis " .. label .. " (" .. words(why) ..
      "); the 50 Gy in 25 fractions course is for groin not previously irradiated, so radiotherapy here needs radiation-oncology review of the prior fields.",
    citations = cites1("rt_inguinal"),
  }
  if irradiated == nil then
    out.missing{
      fact = "prior_radiation_sites",
      why = "The 50 Gy inguinal course requires no prior groin radiation.",
      test = "radiation treatment history review",
      citations = cites1("rt_inguinal"),
    }
  elseif irradiated == "possibly" then
    out.missing{
      fact = "prior_radiation_sites",
      why = "A prior radiotherapy site is not in the vocabulary (pelvis, groin, inguinal, spine, ...; with left/right/bilateral): it may include the groin.",
      test = "radiation treatment history review",
      citations = cites1("rt_inguinal"),
    }
  end
end

-- Returns true when palliative bone RT was proposed.
local function palliative_rt(facts, out)
  local mets = facts.metastases
  local bone_rt = false
  if mets == nil then
    out.missing{
      fact = "metastases",
      why = "The metastatic sites and their symptoms are not recorded: palliative radiotherapy and bone agents depend on them.",
      test = "imaging and clinical assessment of each metastatic site and its symptoms",
      citations = cites2("rt_selective", "seq_bone"),
    }
    return false
  end
  local asymptomatic = {}
  for i, met in ipairs(mets) do
    local site = met.site
    local spec = RT[site]
    local label = "#" .. i .. " (" .. tostring(site) .. ")"
    local path = "metastases[" .. (i - 1) .. "]" -- fact paths count from 0, as in the engine's messages
    local why = {}
    for _, v in ipairs(met.symptoms or {}) do
      why[#why + 1] = v
    end
    if met.symptoms == nil then
      out.missing{
        fact = path .. ".symptoms",
        why = "Symptoms of metastasis " .. label .. " are not recorded: palliative radiotherapy is only for symptomatic sites.",
        test = "clinical assessment of the site: pain or functional impairment",
        citations = cites1("rt_selective"),
      }
    elseif #why == 0 then
      asymptomatic[#asymptomatic + 1] = label
      out.note("metastasis " .. label .. " is asymptomatic: no palliative radiotherapy")
    elseif spec == nil then
      out.warn{
        id = "symptomatic_site_specialist_review",
        text = "Symptomatic " .. (SITE_NAME[site] or "metastasis") .. " #" .. i .. " (" .. words(why) ..
          "): the guideline reserves radiotherapy for skeletal and nodal sites and gives no treatment for this one; refer for specialist review (multidisciplinary team) to control the symptoms.",
        citations = cites1("seq_rt"),
      }
    elseif site == "inguinal_nodes" and groin_irradiated(facts) ~= false then
      groin_review(facts, out, label, why)
    else
      local dose, cited, quoted = policy.rt_dose(site, met, spec)
      local item = {
        id = spec.action,
        text = "Palliative radiotherapy to " .. SITE_NAME[site] .. " " .. label .. " for " ..
          words(why) .. " (" .. dose .. ").",
        rationale = "Radiotherapy only for symptomatic sites: this site has " .. words(why) .. ".",
        citations = cites_of(cited),
        target = i,
        evidence = evidence_of(quoted),
        facts = { path .. ".site", path .. ".symptoms",
          site == "inguinal_nodes" and "prior_radiation_sites" or nil },
      }
      if spec.strength == "recommended" then
        out.recommend(item)
      else
        item.strength = spec.strength
        out.consider(item)
      end
      if site == "bone" then
        bone_rt = true
      end
    end
  end
  if #asymptomatic > 0 then
    out.warn{
      id = "no_rt_asymptomatic_sites",
      text = "No radiotherapy to asymptomatic metastases: " .. join(asymptomatic) .. ".",
      citations = cites1("rt_selective"),
    }
  end
  return bone_rt
end

local function bone_agents(facts, out)
  local mets = facts.metastases
  if mets == nil then
    return
  end
  local bone = {}
  for i, met in ipairs(mets) do
    if met.site == "bone" then
      bone[#bone + 1] = "metastases[" .. (i - 1) .. "].site"
    end
  end
  if #bone == 0 then
    return
  end
  local names = { zoledronic_acid = "Zoledronic acid (bisphosphonate)", denosumab = "Denosumab" }
  for _, agent in ipairs(policy.bone_agents) do
    out.recommend{
      id = agent,
      text = names[agent] .. " for skeletal metastases, to prevent skeletal-related events.",
      rationale = "Skeletal metastases: prevents pathological fractures, spinal cord compression and hypercalcaemia.",
      citations = cites1("bone_agent"),
      group = "bone_agent",
      evidence = evidence2("bone_agent", "seq_bone"),
      facts = bone,
    }
  end
end

------------------------------------------------------------------------
-- The rectal primary
------------------------------------------------------------------------

-- Words about the primary that the facts support: its site, and "prior
-- surgery and radiation" only as far as they are recorded.
local function primary_words(facts)
  local p = facts.primary
  local noun = p.site == "rectum" and "rectal primary"
    or (p.site == "colon_left" or p.site == "colon_right" or p.site == "colon") and "colon primary"
    or "primary"
  local done = {}
  if p.resected == true then
    done[#done + 1] = "surgery"
  end
  if p.prior_pelvic_radiation == true then
    done[#done + 1] = "pelvic radiation"
  end
  local prior = #done > 0 and ("prior " .. concat(done, " and ")) or nil
  return noun, prior
end

local PRIMARY_FACTS = { "primary.symptoms", "primary.site", "primary.prior_pelvic_radiation" }
local PRIMARY_SYMPTOMS = { "bleeding", "obstruction", "intractable_pain" }
local function primary_site(facts, out)
  local noun, prior = primary_words(facts)
  local symptoms = facts.primary.symptoms
  if symptoms == nil then
    out.warn{
      id = "primary_symptoms_unknown",
      text = "Symptoms of the " .. noun .. " are not recorded: local therapy of the primary is reserved for bleeding, obstruction or intractable pain.",
      citations = cites1("primary_sympt"),
    }
    return
  end
  local why = present(symptoms, PRIMARY_SYMPTOMS)
  if #why == 0 then
    out.warn{
      id = "no_locoregional_primary",
      text = "Locoregional treatment of the " .. noun .. " is not indicated: it is asymptomatic.",
      citations = cites1("primary_not"),
    }
    return
  end
  local rt = facts.primary.prior_pelvic_radiation == true and "repeat radiotherapy" or "radiotherapy"
  out.consider{
    id = "primary_local_therapy",
    text = "Consider local therapy of the symptomatic " .. noun .. " (stoma formation, laser ablation or " .. rt .. ") for " ..
      words(why) .. ".",
    rationale = "Local treatment of the primary is reserved for symptomatic complications.",
    citations = cites1("primary_sympt"),
    evidence = evidence2("primary_sympt", "seq_primary"),
    facts = PRIMARY_FACTS,
  }
  if has(symptoms, "obstruction") then
    local stent = facts.primary.site == "rectum" and "endorectal stenting" or "stenting"
    out.warn{
      id = "obstruction_last_resort",
      text = "Malignant obstruction: " .. stent .. ", laser ablation or palliative resection only if absolutely necessary" ..
        (prior and (", given " .. prior) or "") .. ".",
      citations = cites1("obstruction"),
    }
  end
end

------------------------------------------------------------------------
-- What not to do
------------------------------------------------------------------------

local NO_LONG_COURSE_CRT = constant({
  id = "no_long_course_crt",
  text = "Do not use long-course chemoradiotherapy (50 Gy with concurrent 5-FU) in the metastatic setting: it delays systemic therapy without survival benefit.",
  level = "standing",
}, { "not_crt" })

-- Each "do not" is a standing reminder, unless it bites for this patient:
-- then it is a patient warning, shown before the reminders.
local function what_not_to_do(facts, out)
  local m = facts.molecular
  local kras, nras = known(m.kras), known(m.nras)
  local noun, prior = primary_words(facts)

  local p = facts.primary
  local surgery
  if p.resected == false then
    surgery = "Surgery on the " .. noun .. " in place is not part of this plan: metastatic disease is the dominant problem, and the primary is treated only for bleeding, obstruction or intractable pain."
  else
    surgery = "Do not perform additional surgery on the " .. noun .. ": metastatic disease is the dominant problem" ..
      (prior and (" and " .. prior .. " have already been given") or "") .. "."
  end
  out.warn{ id = "no_primary_surgery", text = surgery, citations = cites1("not_surgery"), level = "standing" }
  out.warn(NO_LONG_COURSE_CRT)

  local ras, level = nil, "standing"
  if kras == "mutant" or nras == "mutant" then
    ras, level = "RAS-mutant tumour: EGFR inhibitors (cetuximab, panitumumab) are contraindicated.", "patient"
  elseif kras == "wild_type" and nras == "wild_type" then
    ras = "KRAS and NRAS confirmed wild type: EGFR inhibitors are an option."
  else
    ras = "RAS status not confirmed: no EGFR inhibitor (cetuximab, panitumumab) until KRAS and NRAS are known wild type."
  end
  out.warn{
    id = "no_egfr_without_ras_wt",
    text = "Do not use EGFR inhibitors without confirming RAS wild-type status. " .. ras,
    citations = cites1("not_egfr"),
    level = level,
  }

  local n = facts.neuropathy
  local neuro
  level = "standing"
  if n.grade ~= nil and n.grade >= 2 and n.persistent == true then
    neuro, level = "This patient has persistent grade " .. n.grade .. " neuropathy: no oxaliplatin (FOLFOX).", "patient"
  elseif n.grade == nil then
    neuro = "Neuropathy grade not recorded."
  else
    neuro = "Current neuropathy grade " .. n.grade ..
      (n.persistent == true and ", persistent." or (n.persistent == false and ", not persistent." or "."))
  end
  out.warn{
    id = "no_oxaliplatin_neuropathy",
    text = "Do not continue oxaliplatin after grade 2 or higher persistent neuropathy from prior FOLFOX. " .. neuro,
    citations = cites1("not_oxali"),
    level = level,
  }

  local d = facts.planned_surgery_in_days
  local surg
  level = "standing"
  if d == nil then
    surg = "Planned surgery not recorded."
  elseif d == false then
    surg = "No surgery planned."
  elseif d <= policy.bev_window_days then
    surg, level = "Surgery is planned in " .. d .. " days: bevacizumab is withheld.", "patient"
  elseif out.withheld("FOLFIRI+bevacizumab") then
    surg, level = "Surgery is planned in " .. d .. " days: bevacizumab is withheld by local policy (" ..
      out.withheld("FOLFIRI+bevacizumab") .. ").", "patient"
  else
    surg, level = "Surgery is planned in " .. d ..
      " days: no bevacizumab dose may fall within 6 weeks (42 days) of the operation.", "patient"
  end
  out.warn{
    id = "no_bev_near_surgery",
    text = "Do not administer bevacizumab within 6 weeks of any planned surgery (wound healing). " .. surg,
    citations = cites1("not_bev"),
    level = level,
  }
end

------------------------------------------------------------------------
-- Evaluation
------------------------------------------------------------------------

-- `out` without the formulary's exclusions (policy.excluded).
local function formulary(out)
  if #policy.excluded == 0 then return out end
  local excluded, o = {}, {}
  for _, id in ipairs(policy.excluded) do excluded[id] = true end
  for _, k in ipairs({ "missing", "warn", "followup", "outcome", "note", "pathway", "withheld" }) do o[k] = out[k] end
  for _, kind in ipairs({ "recommend", "consider" }) do
    o[kind] = function(item)
      if excluded[item.id] then
        out.note(item.id .. " not proposed: excluded from the local formulary")
      else
        out[kind](item)
      end
    end
  end
  return o
end

-- The plan's decisions as named rules, run in `rule_order`; each writes
-- its items, with their guideline citations, through `out` and may leave
-- what later rules need in `plan`. An extension replaces one by name
-- (`rules = { bone_agents = function(facts, out, plan) ... end }`).
local rules = {}

-- Performance status and molecular results choose the pathway and the
-- systemic therapy.
function rules.pathway(facts, out, plan)
  local ecog = facts.ecog
  local msi = known(facts.molecular.msi)
  local h = history(facts)
  if ecog == nil then
    out.pathway("needs_assessment", {
      rationale = "ECOG performance status is unknown: second-line chemotherapy is only offered at ECOG 0-2, so it waits for the assessment; molecular tests go ahead.",
      citations = cites2("ps_good", "seq_confirm"),
    })
    out.missing{
      fact = "ecog",
      why = "Second-line chemotherapy is only offered at ECOG 0-2; ECOG 3-4 means best supportive care only.",
      test = "ECOG performance status assessment",
      citations = cites2("ps_good", "seq_confirm"),
    }
    order_tests(facts, out, false)
  elseif ecog >= 3 then
    out.pathway("best_supportive_care", {
      rationale = "ECOG " .. ecog .. ": best supportive care only; aggressive chemotherapy gives no survival benefit and worsens quality of life.",
      citations = cites1("ps_poor"),
    })
    out.recommend{
      id = "best_supportive_care",
      text = "Best supportive care only; no chemotherapy or biologic therapy.",
      rationale = "ECOG " .. ecog .. " (poor performance status).",
      citations = cites1("ps_poor"),
      evidence = evidence1("ps_poor"),
      facts = { "ecog" },
    }
    if msi == "msi_high" then
      out.note("MSI-high at ECOG " .. ecog .. ": the guideline says best supportive care only; no checkpoint inhibitor")
    end
  elseif msi == "msi_high" then
    out.pathway("immunotherapy", {
      rationale = "MSI-high tumour at ECOG " .. ecog .. ": an immune checkpoint inhibitor is preferred over chemotherapy.",
      citations = cites1("msi"),
    })
    checkpoint_inhibitors(out, h)
    order_tests(facts, out, false)
    plan.systemic = "ici"
  else
    local first = h.first or { name = "FOLFOX", outcome = "progression" }
    local ongoing = false
    for _, g in ipairs(h.ongoing) do
      ongoing = ongoing or g.set.irinotecan == true
    end
    out.pathway("second_line_systemic", {
      rationale = "First-line " .. first.name .. (first.outcome == "intolerance" and " was not tolerated" or " progressed") ..
        "; ECOG " .. ecog .. ": " .. (ongoing and "second-line FOLFIRI-based chemotherapy is ongoing; continue it."
          or "start second-line FOLFIRI-based chemotherapy now."),
      citations = cites3("overview", "cornerstone", "ps_good"),
    })
    local folfiri_now
    plan.biologic, folfiri_now = second_line_regimens(facts, out, h)
    order_tests(facts, out, folfiri_now)
    plan.systemic = "chemo"
  end
end

function rules.palliative_radiotherapy(facts, out, plan)
  plan.bone_rt = palliative_rt(facts, out)
end

function rules.bone_agents(facts, out)
  bone_agents(facts, out)
end

function rules.primary_site(facts, out)
  primary_site(facts, out)
end

function rules.what_not_to_do(facts, out)
  what_not_to_do(facts, out)
end

-- Follow-up and the expected outcomes of what was proposed.
local CT_REASSESSMENT = constant({
  id = "ct_reassessment",
  text = "Re-evaluate response with CT after 2-3 cycles (6-9 weeks); adjust therapy to response and tolerance.",
}, { "seq_ct" })
local PFS = constant({
  text = "Median progression-free survival with second-line FOLFIRI plus biologics is approximately 5-8 months.",
}, { "pfs" })
local RT_RELIEF = constant({
  text = "Palliative radiotherapy relieves pain in 70-80% of patients with symptomatic bone metastases.",
}, { "rt_relief" })
local GOAL = constant({ text = "The goal is quality of life and symptom control, not cure." }, { "goal" })

function rules.followup_and_outcomes(_, out, plan)
  if plan.systemic ~= nil then
    out.followup(CT_REASSESSMENT)
    -- Planned surgery unknown: the C kernel itself warns to confirm none is
    -- planned within 42 days (rule bev_surgery_window), for every protocol.
  end
  if plan.systemic == "chemo" and plan.biologic then
    out.outcome(PFS)
  end
  if plan.bone_rt then
    out.outcome(RT_RELIEF)
  end
  out.outcome(GOAL)
end

local rule_order = { "pathway", "palliative_radiotherapy", "bone_agents", "primary_site", "what_not_to_do",
  "followup_and_outcomes" }

local function evaluate(facts, out)
  out = formulary(out)
  local plan = { systemic = nil, biologic = false, bone_rt = false } -- systemic: "chemo" | "ici" | nil
  for _, name in ipairs(rule_order) do
    rules[name](facts, out, plan)
  end
end

------------------------------------------------------------------------
-- Example cases (`pathwise check`)
------------------------------------------------------------------------

-- Marks a field to drop from the index case (unknown).
local UNKNOWN = {}

-- The guideline's patient; each example changes a copy of it. A list
-- replaces the field; a record merges into it.
local function index_case(changes)
  local f = {
    patient_id = "index-001",
    ecog = 1,
    metastatic = true,
    primary = { site = "rectum", resected = true, prior_pelvic_radiation = true, symptoms = {} },
    prior_regimens = { { name = "FOLFOX", line = 1, outcome = "progression" } },
    neuropathy = { grade = 1, persistent = false },
    molecular = { kras = "unknown", nras = "unknown", braf_v600e = "unknown", msi = "unknown" },
    metastases = {
      { site = "bone", symptoms = { "pain" } },
      { site = "inguinal_nodes", symptoms = {} },
      { site = "retroperitoneal", symptoms = {} },
    },
    prior_radiation_sites = { "pelvis" },
  }
  for k, v in pairs(changes or {}) do
    if v == UNKNOWN then
      f[k] = nil
    elseif type(v) == "table" and type(f[k]) == "table" and v[1] == nil and next(v) ~= nil then
      for k2, v2 in pairs(v) do
        f[k][k2] = v2
      end
    else
      f[k] = v
    end
  end
  return f
end

local examples = {
  {
    name = "index case: FOLFIRI+bevacizumab now, tests ordered, RT to the painful bone only",
    facts = index_case(),
    expect = {
      applicable = true,
      pathway = "second_line_systemic",
      recommend = { "FOLFIRI+bevacizumab", "ras_testing", "braf_testing", "msi_testing",
        "palliative_rt_bone", "zoledronic_acid", "denosumab" },
      not_recommend = { "palliative_rt_inguinal", "palliative_rt_retroperitoneal",
        "FOLFIRI+cetuximab", "FOLFIRI+panitumumab", "primary_local_therapy" },
      missing = { "molecular.kras", "molecular.nras", "molecular.braf_v600e", "molecular.msi" },
    },
  },
  {
    name = "RAS wild type: anti-EGFR alternatives beside bevacizumab",
    facts = index_case{ molecular = { kras = "wild_type", nras = "wild_type", braf_v600e = "wild_type", msi = "mss" } },
    expect = {
      pathway = "second_line_systemic",
      recommend = { "FOLFIRI+bevacizumab", "FOLFIRI+cetuximab", "FOLFIRI+panitumumab" },
      not_recommend = { "ras_testing", "encorafenib+cetuximab" },
    },
  },
  {
    name = "KRAS mutant: no anti-EGFR",
    facts = index_case{ molecular = { kras = "mutant", nras = "wild_type", braf_v600e = "wild_type", msi = "mss" } },
    expect = {
      pathway = "second_line_systemic",
      recommend = { "FOLFIRI+bevacizumab" },
      not_recommend = { "FOLFIRI+cetuximab", "FOLFIRI+panitumumab", "ras_testing" },
    },
  },
  {
    name = "BRAF V600E with RAS wild type: encorafenib plus cetuximab",
    facts = index_case{ molecular = { kras = "wild_type", nras = "wild_type", braf_v600e = "mutant", msi = "mss" } },
    expect = {
      pathway = "second_line_systemic",
      recommend = { "FOLFIRI+bevacizumab", "encorafenib+cetuximab" },
    },
  },
  {
    name = "MSI-high at ECOG 1: checkpoint inhibitor, no chemotherapy",
    facts = index_case{ molecular = { msi = "msi_high" } },
    expect = {
      pathway = "immunotherapy",
      recommend = { "pembrolizumab", "nivolumab", "ras_testing" },
      not_recommend = { "FOLFIRI+bevacizumab" },
    },
  },
  {
    name = "ECOG 3: best supportive care only, RT and bone agent stay",
    facts = index_case{ ecog = 3 },
    expect = {
      pathway = "best_supportive_care",
      recommend = { "best_supportive_care", "palliative_rt_bone", "zoledronic_acid", "denosumab" },
      not_recommend = { "FOLFIRI+bevacizumab", "FOLFIRI", "ras_testing" },
    },
  },
  {
    name = "ECOG 2: still second line",
    facts = index_case{ ecog = 2 },
    expect = { pathway = "second_line_systemic", recommend = { "FOLFIRI+bevacizumab" } },
  },
  {
    name = "ECOG unknown: needs assessment, no chemotherapy",
    facts = index_case{ ecog = UNKNOWN },
    expect = {
      pathway = "needs_assessment",
      missing = { "ecog" },
      recommend = { "palliative_rt_bone", "ras_testing" },
      not_recommend = { "FOLFIRI+bevacizumab" },
    },
  },
  {
    name = "surgery in 30 days: FOLFIRI without bevacizumab; proposed bevacizumab blocked",
    facts = index_case{ planned_surgery_in_days = 30, proposed_orders = { "bevacizumab" } },
    expect = {
      pathway = "second_line_systemic",
      recommend = { "FOLFIRI" },
      not_recommend = { "FOLFIRI+bevacizumab" },
      blocked = { "bevacizumab" },
    },
  },
  {
    name = "persistent grade 2 neuropathy: proposed FOLFOX blocked",
    facts = index_case{ neuropathy = { grade = 2, persistent = true }, proposed_orders = { "FOLFOX" } },
    expect = { pathway = "second_line_systemic", blocked = { "FOLFOX" } },
  },
  {
    name = "bleeding primary: consider local therapy",
    facts = index_case{ primary = { symptoms = { "bleeding" } } },
    expect = { recommend = { "primary_local_therapy" } },
  },
  {
    name = "symptomatic inguinal and retroperitoneal sites get RT",
    facts = index_case{ metastases = {
      { site = "inguinal_nodes", symptoms = { "lymphedema" } },
      { site = "retroperitoneal", symptoms = { "neurologic" } },
    } },
    expect = {
      recommend = { "palliative_rt_inguinal", "palliative_rt_retroperitoneal" },
      not_recommend = { "palliative_rt_bone", "zoledronic_acid" },
    },
  },
  {
    name = "KRAS mutant with proposed cetuximab: blocked",
    facts = index_case{ molecular = { kras = "mutant" }, proposed_orders = { "cetuximab" } },
    expect = { blocked = { "cetuximab" } },
  },
  {
    name = "not metastatic: not applicable",
    facts = index_case{ metastatic = false },
    expect = { applicable = false, not_recommend = { "FOLFIRI+bevacizumab" } },
  },
  {
    name = "bone metastasis with neurological symptoms: RT recommended, not blocked (any symptom counts)",
    facts = index_case{ metastases = { { site = "bone", symptoms = { "neurologic" } } } },
    expect = { recommend = { "palliative_rt_bone", "zoledronic_acid" }, not_recommend = { "palliative_rt_inguinal" } },
  },
  {
    name = "first-line CAPOX+bevacizumab: read as first-line oxaliplatin, second line applies",
    facts = index_case{ prior_regimens = { { name = "CAPOX+bevacizumab", line = 1, outcome = "progression" } } },
    expect = { applicable = true, pathway = "second_line_systemic", recommend = { "FOLFIRI+bevacizumab" } },
  },
  {
    name = "an unrecognised first-line regimen: cannot tell, reported missing",
    facts = index_case{ prior_regimens = { { name = "Lonsurf", line = 1, outcome = "progression" } } },
    expect = { missing = { "prior_regimens" }, not_recommend = { "FOLFIRI+bevacizumab" } },
  },
  {
    name = "FOLFIRI already progressed: not applicable, FOLFIRI not recommended again",
    facts = index_case{ prior_regimens = { { name = "FOLFOX", line = 1, outcome = "progression" },
      { name = "FOLFIRI", outcome = "progression" } } },
    expect = { applicable = false, not_recommend = { "FOLFIRI+bevacizumab", "FOLFIRI" } },
  },
  {
    name = "surgery in 30 days with RAS unknown: no biologic, so no 'plus biologics' outcome",
    facts = index_case{ planned_surgery_in_days = 30 },
    expect = { recommend = { "FOLFIRI" }, not_recommend = { "FOLFIRI+bevacizumab" } },
  },
  {
    name = "prior radiation to 'left groin': no 50 Gy inguinal course",
    facts = index_case{ metastases = { { site = "inguinal_nodes", symptoms = { "pain" } } }, prior_radiation_sites = { "left groin" } },
    expect = { not_recommend = { "palliative_rt_inguinal" } },
  },
  {
    name = "metastatic status unknown: missing",
    facts = index_case{ metastatic = UNKNOWN },
    expect = { missing = { "metastatic" }, not_recommend = { "FOLFIRI+bevacizumab" } },
  },
}

------------------------------------------------------------------------
-- Built once per load (a speed detail; authors can skip it)
------------------------------------------------------------------------

-- The sentences quoted together (evidence2, evidence3); a combination not
-- listed here is joined on each call instead.
local QUOTED = {
  { "ras_test", "ras_pitfall" }, { "folfiri", "bev", "seq_initiate" }, { "folfiri", "not_bev" },
  { "bone_agent", "seq_bone" }, { "primary_sympt", "seq_primary" },
}

local DRUG_NAMES = { "FOLFIRI+bevacizumab", "FOLFIRI+cetuximab", "FOLFIRI+panitumumab", "encorafenib+cetuximab",
  "FOLFOX+bevacizumab", "FOLFOX+cetuximab", "FOLFOX+panitumumab", "CAPOX+bevacizumab", "mFOLFOX6", "FOLFOX4" }

-- Run by the host once the protocol is loaded, after an extension has
-- merged its sentences and policy in (scripts/README.md): fills the
-- caches above in place.
local function prepare()
  for key in pairs(S) do BITS[key] = sentence_bits(key) end
  for _, name in ipairs(DRUG_NAMES) do DRUGS[name] = read_drugs(name) end
  for name in pairs(PART) do DRUGS[name] = read_drugs(name) end
  for _, agent in ipairs(policy.anti_egfr) do DRUGS["FOLFIRI+" .. agent] = read_drugs("FOLFIRI+" .. agent) end
  local quoted = { policy.anti_egfr_sentences }
  for _, names in ipairs(QUOTED) do quoted[#quoted + 1] = names end
  for _, spec in pairs(RT) do quoted[#quoted + 1] = spec.evidence end
  for _, c in ipairs(CONSTANT) do
    c[1].citations = cites_of(c[2])
    c[1].evidence = c[3] and evidence_of(c[3]) or nil
  end
  for _, names in ipairs(quoted) do
    local a, b, c = names[1], names[2], names[3]
    if not (S[a] and S[b] and (c == nil or S[c])) then -- a misspelt name: the item that quotes it says so
    elseif #names == 2 then
      Q2[a] = Q2[a] or {}
      Q2[a][b] = sentence(a)[2] .. " " .. sentence(b)[2]
    elseif #names == 3 then
      Q3[a] = Q3[a] or {}
      Q3[a][b] = Q3[a][b] or {}
      Q3[a][b][c] = sentence(a)[2] .. " " .. sentence(b)[2] .. " " .. sentence(c)[2]
    end
  end
end

return {
  id = "mrc_second_line",
  version = "1.0.0",
  title = "Metastatic rectal cancer, second line after surgery, FOLFOX and radiation",
  references = {
    [1] = "Guideline reference 1 (as cited in guideline.txt; the guideline does not name its sources)",
    [2] = "Guideline reference 2 (as cited in guideline.txt; the guideline does not name its sources)",
    [3] = "Guideline reference 3 (as cited in guideline.txt; the guideline does not name its sources)",
    [4] = "Guideline reference 4 (as cited in guideline.txt; the guideline does not name its sources)",
    [5] = "Guideline reference 5 (as cited in guideline.txt; the guideline does not name its sources)",
  },
  applies = applies,
  evaluate = evaluate,
  examples = examples,
  policy = policy,
  sentences = S,
  rules = rules,
  rule_order = rule_order,
  prepare = prepare,
}
