-- adapter.lua: FHIR R4 / mCODE input adapter. Turns a Bundle (collection,
-- transaction, searchset, ...), a single resource or a CDS Hooks prefetch
-- object into patient facts, with the source of every fact and a list of
-- what could not be mapped and why. Runs in the protocol sandbox; its codes
-- are data in codes.lua (ctx.codes[1]) and an institution's extensions
-- (ctx.codes[2..]). See plugins/README.md, "Input adapters".
--
-- Rules (issue 13):
--  * match on system + code, never display text;
--  * references resolve by fullUrl and by Type/id (resources without id,
--    fullUrls that are not UUIDs, absolute URLs ending in Type/id);
--  * one patient per document: more is an error;
--  * entered-in-error, refuted and non-final records are ignored (listed);
--  * for each fact the latest result by date wins (an undated result is
--    older than any dated one); disagreeing results of the same date leave
--    the fact unknown; superseded results are listed;
--  * results dated after the as-of date are ignored; an ECOG older than
--    limits.ecog_max_age_days before it is stale;
--  * a gene is wild type only when a test reports it absent/negative; a
--    gene a panel does not mention stays unknown;
--  * a medication list is never complete: prior_regimens is set only when
--    an oxaliplatin regimen (FOLFOX, CAPOX) is seen; otherwise unknown;
--  * symptoms stay unknown (not coded here); "no surgery planned" and
--    "not metastatic" are never concluded from absence.

local M = { id = "fhir_mcode", version = "1.0.0" }

-- What the C facts model accepts today (contract items 2): switched on
-- when the facts model has them.
local MODEL = { non_colorectal = true, colon = true }

local NOT_USED = "code not used by the guideline's facts"
local NOT_AGENT = "not an agent of the guideline's regimens (knowledge table)"
local FACT_ORDER = {
  "patient_id", "ecog", "metastatic", "primary.site", "primary.resected",
  "primary.prior_pelvic_radiation", "prior_regimens", "molecular.kras", "molecular.nras",
  "molecular.braf_v600e", "molecular.msi", "metastases", "prior_radiation_sites",
  "planned_surgery_in_days",
}

---------------------------------------------------------------------------
-- small helpers (decoded JSON: null is a light userdata, so test types)
---------------------------------------------------------------------------

local function tbl(x) if type(x) == "table" then return x end end
local function str(x) if type(x) == "string" and x ~= "" then return x end end
local function list(x) if type(x) == "table" then return x end return {} end

-- "…/Type/id" -> "Type", "id" (no patterns: the sandbox bounds them)
local function type_id(s)
  local last, prev = nil, nil
  local i = s:find("/", 1, true)
  while i do prev, last = last, i; i = s:find("/", i + 1, true) end
  if not last or last == #s then return nil end
  local t = s:sub((prev or 0) + 1, last - 1)
  if t == "" or t:find("[^%a]") then return nil end
  return t, s:sub(last + 1)
end

local function merge_codes(tables)
  local codes = {}
  for _, t in ipairs(tables) do
    for section, entries in pairs(t) do
      if type(entries) == "table" then
        local dst = codes[section] or {}
        codes[section] = dst
        for k, v in pairs(entries) do
          if v == false then dst[k] = nil else dst[k] = v end
        end
      end
    end
  end
  return codes
end

-- dates: "YYYY-MM-DD..." -> "YYYY-MM-DD"; "YYYY-MM" and "YYYY" pad with 01
local function norm_date(s)
  s = str(s)
  if not s then return nil end
  local d = s:sub(1, 10)
  if d:match("^%d%d%d%d%-%d%d%-%d%d$") then return d end
  local ym = s:sub(1, 7)
  if ym:match("^%d%d%d%d%-%d%d$") then return ym .. "-01" end
  local y = s:sub(1, 4)
  if y:match("^%d%d%d%d$") then return y .. "-01-01" end
  return nil
end

local function day_number(d)
  local y, m, dd = tonumber(d:sub(1, 4)), tonumber(d:sub(6, 7)), tonumber(d:sub(9, 10))
  if m <= 2 then y = y - 1 end
  local era = y // 400
  local yoe = y - era * 400
  local doy = (153 * ((m + 9) % 12) + 2) // 5 + dd - 1
  return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy
end

local function period_start(p) p = tbl(p) return p and p.start end

local function date_of(r)
  return norm_date(r.effectiveDateTime) or norm_date(period_start(r.effectivePeriod))
    or norm_date(r.effectiveInstant) or norm_date(r.performedDateTime)
    or norm_date(period_start(r.performedPeriod)) or norm_date(r.occurrenceDateTime)
    or norm_date(period_start(r.occurrencePeriod)) or norm_date(r.onsetDateTime)
    or norm_date(period_start(r.onsetPeriod)) or norm_date(r.recordedDate)
    or norm_date(r.dateAsserted) or norm_date(r.authoredOn) or norm_date(r.issued)
end

---------------------------------------------------------------------------
-- the run: one table of state per document
---------------------------------------------------------------------------

local function new_run(doc, ctx)
  local codes = merge_codes(ctx.codes)
  return {
    doc = doc, as_of = ctx.as_of, codes = codes,
    entries = {}, by_full = {}, by_typeid = {},
    cands = {}, unmapped = {}, sources = {},
    mets = {}, rt = {}, rt_seen = {}, meds = {}, surgeries = {}, progression = {},
    report_date = {}, keys = {},
  }
end

local function unmapped(run, ref, code, why)
  run.unmapped[#run.unmapped + 1] = { ref = ref, code = code, why = why }
end

-- "system|code" keys of a CodeableConcept (or a Coding list holder),
-- computed once per concept
local NO_KEYS = {}
local function keys_of(run, cc)
  if type(cc) ~= "table" then return NO_KEYS end
  local cached = run.keys[cc]
  if cached then return cached end
  local out = {}
  run.keys[cc] = out
  for _, c in ipairs(list(tbl(cc) and cc.coding)) do
    local sys, code = str(tbl(c) and c.system), str(tbl(c) and c.code)
    if sys and code then
      sys = run.codes.system_aliases[sys] or sys
      if sys == "http://www.genenames.org/geneId" and not code:find("HGNC:", 1, true) then
        code = "HGNC:" .. code
      end
      out[#out + 1] = sys .. "|" .. code
    end
  end
  return out
end

-- first key of cc found in map: key, value
local function match(run, cc, map)
  for _, k in ipairs(keys_of(run, cc)) do
    if map[k] ~= nil then return k, map[k] end
  end
  return nil
end

local function first_key(run, cc) return keys_of(run, cc)[1] end

---------------------------------------------------------------------------
-- entries and references
---------------------------------------------------------------------------

local function add_resource(run, res, full)
  if not tbl(res) or not str(res.resourceType) then return end
  if res.resourceType == "Bundle" then
    for _, e in ipairs(list(res.entry)) do
      if tbl(e) then add_resource(run, e.resource, str(e.fullUrl)) end
    end
    return
  end
  local typeid = str(res.id) and (res.resourceType .. "/" .. res.id)
  -- the same resource twice (a prefetch's patient and a searchset that
  -- includes it again) is one resource
  if (typeid and run.by_typeid[typeid]) or (full and run.by_full[full]) then return end
  local ent = { res = res, full = full, ref = typeid or full or (res.resourceType .. " #" .. (#run.entries + 1)) }
  run.entries[#run.entries + 1] = ent
  if full then run.by_full[full] = ent end
  if typeid then run.by_typeid[typeid] = ent end
  if full and not typeid then   -- an absolute URL ending in Type/id
    local t, id = type_id(full)
    if t == res.resourceType and id then run.by_typeid[t .. "/" .. id] = run.by_typeid[t .. "/" .. id] or ent end
  end
end

local function collect(run)
  local doc = run.doc
  if str(doc.resourceType) then
    add_resource(run, doc, nil)
    return
  end
  -- a CDS Hooks request ({prefetch = {...}}) or its prefetch object
  local pre = tbl(doc.prefetch) or doc
  local names = {}
  for k, v in pairs(pre) do
    if type(k) == "string" and tbl(v) then names[#names + 1] = k end
  end
  table.sort(names)
  for _, k in ipairs(names) do add_resource(run, pre[k], nil) end
end

local function resolve(run, ref)
  ref = str(ref)
  if not ref then return nil end
  local e = run.by_full[ref] or run.by_typeid[ref]
  if e then return e end
  local t, id = type_id(ref)
  if t then return run.by_typeid[t .. "/" .. id] end
  return nil
end

local function reference(x) x = tbl(x) return x and str(x.reference) end

-- A reference from inside entry e: "#id" names a resource contained in it.
local function resolve_in(run, e, ref)
  ref = str(ref)
  if ref and ref:sub(1, 1) == "#" then
    for _, c in ipairs(list(e.res.contained)) do
      if tbl(c) and str(c.id) == ref:sub(2) then return { res = c, ref = e.ref .. ref } end
    end
    return nil
  end
  return resolve(run, ref)
end

-- References that say whose record a resource is: subject/patient, and an
-- Appointment's participants that are patients.
local function patient_refs(run, r)
  local refs = {}
  local ref = reference(r.subject) or reference(r.patient)
  if ref then refs[1] = ref end
  for _, p in ipairs(list(r.participant)) do
    local a = tbl(p) and reference(p.actor)
    local t = a and resolve(run, a)
    if a and ((t and t.res.resourceType == "Patient") or (not t and a:sub(1, 8) == "Patient/")) then
      refs[#refs + 1] = a
    end
  end
  return refs
end

-- The one patient: returns its key (entry or reference text) or nil, why.
local function find_patient(run)
  local patients = {}
  for _, e in ipairs(run.entries) do
    if e.res.resourceType == "Patient" then patients[#patients + 1] = e end
  end
  if #patients > 1 then
    return nil, "the document holds more than one patient (" .. patients[1].ref .. ", " .. patients[2].ref
      .. "): pathwise evaluates one patient per document"
  end
  local key = patients[1]
  for _, e in ipairs(run.entries) do
    for _, ref in ipairs(patient_refs(run, e.res)) do
      local target = resolve(run, ref)
      local k = target or ref
      if target and target.res.resourceType ~= "Patient" then k = nil end
      if k and key == nil then key = k end
      if k and k ~= key then
        return nil, "mixed patients: " .. e.ref .. " is about " .. ref .. ", not "
          .. (type(key) == "table" and key.ref or tostring(key)) .. "; pathwise evaluates one patient per document"
      end
    end
  end
  if key == nil then return nil, "no patient in the document (no Patient resource, no subject reference)" end
  return key
end

local function about_patient(run, e, key)
  for _, ref in ipairs(patient_refs(run, e.res)) do
    local target = resolve(run, ref) or ref
    if target ~= key then return false end
  end
  return true
end

---------------------------------------------------------------------------
-- candidates: values for a fact, each with its source
---------------------------------------------------------------------------

local function candidate(run, fact, value, e, code, date, note)
  local c = run.cands[fact] or {}
  run.cands[fact] = c
  c[#c + 1] = { value = value, ref = e.ref, code = code, date = date or run.report_date[e], note = note }
end

-- Observation and other "result" status checks; returns true to go on
local FINAL = { final = true, amended = true, corrected = true }
local function usable(run, e, code, statuses, date)
  local status = str(e.res.status)
  if status == "entered-in-error" then
    unmapped(run, e.ref, code, "entered in error: ignored")
    return false
  end
  if statuses and not statuses[status or ""] then
    unmapped(run, e.ref, code, "status '" .. tostring(status) .. "': not used")
    return false
  end
  if date and date > run.as_of then
    unmapped(run, e.ref, code, "dated " .. date .. ", after the as-of date " .. run.as_of)
    return false
  end
  return true
end

---------------------------------------------------------------------------
-- Observations
---------------------------------------------------------------------------

local AA = {
  Ala = "A", Arg = "R", Asn = "N", Asp = "D", Cys = "C", Gln = "Q", Glu = "E", Gly = "G",
  His = "H", Ile = "I", Leu = "L", Lys = "K", Met = "M", Phe = "F", Pro = "P", Ser = "S",
  Thr = "T", Trp = "W", Tyr = "Y", Val = "V", Ter = "*",
}

-- "p.Val600Glu", "p.(V600E)", "V600E" -> "V600E"; nil when not a simple substitution
local function one_letter(p)
  local s = p:gsub("[()]", "")
  if s:sub(1, 2) == "p." then s = s:sub(3) end
  local a, n, b = s:match("^(%u%l%l)(%d+)(%u%l%l)$")
  if a and AA[a] and AA[b] then return AA[a] .. n .. AA[b] end
  return s
end

local function component(run, r, map)
  for _, c in ipairs(list(r.component)) do
    if tbl(c) and match(run, c.code, map) then return c end
  end
end

local function comp_text(run, c)
  if not c then return nil end
  local cc = tbl(c.valueCodeableConcept)
  if cc then
    for _, cd in ipairs(list(cc.coding)) do
      if str(tbl(cd) and cd.code) then return cd.code end
    end
    if str(cc.text) then return cc.text end
  end
  return str(c.valueString)
end

local function gene_of(run, r)
  local c = component(run, r, run.codes.gene_component)
  if not c then return nil end
  local prefix = "http://www.genenames.org/geneId|"
  local first
  for _, k in ipairs(keys_of(run, c.valueCodeableConcept)) do
    if k:sub(1, #prefix) == prefix then
      local id = k:sub(#prefix + 1)
      if run.codes.genes[id] then return run.codes.genes[id], id end
      first = first or id
    end
  end
  return false, first or comp_text(run, c)
end

local function presence(run, r)
  local _, v = match(run, r.valueCodeableConcept, run.codes.presence)
  if v then return v end
  local _, i = match(run, list(r.interpretation)[1], run.codes.presence)
  return i
end

local function variant(run, e, code, date)
  local r = e.res
  local gene, hgnc = gene_of(run, r)
  if gene == nil then return unmapped(run, e.ref, code, "variant without a gene component (48018-6)") end
  if not gene then
    return unmapped(run, e.ref, code, "gene " .. tostring(hgnc) .. " is not one the guideline uses (KRAS, NRAS, BRAF)")
  end
  local pres = presence(run, r)
  if not pres then return unmapped(run, e.ref, code, "variant without a presence value (LA9633-4 / LA9634-2)") end
  local protein = comp_text(run, component(run, r, run.codes.protein_component))
  local note = "gene " .. hgnc .. ", " .. (protein or "protein change not reported")
  local short = protein and one_letter(protein)
  if gene == "braf" then
    if short == "V600E" then
      return candidate(run, "molecular.braf_v600e", pres == "present" and "mutant" or "wild_type", e, code, date, note)
    end
    if pres == "absent" and not protein then
      return candidate(run, "molecular.braf_v600e", "wild_type", e, code, date, note)
    end
    return unmapped(run, e.ref, code, "BRAF " .. (protein or "variant") .. " (" .. pres .. ") is not V600E: V600E status not reported")
  end
  if pres == "absent" then
    if protein then
      return unmapped(run, e.ref, code, hgnc .. " " .. protein .. " absent: other variants of the gene not excluded")
    end
    return candidate(run, "molecular." .. gene, "wild_type", e, code, date, note)
  end
  if short and short:sub(-1) == "=" then
    return unmapped(run, e.ref, code, "synonymous change " .. protein .. ": not counted as a mutation")
  end
  candidate(run, "molecular." .. gene, "mutant", e, code, date, note)
end

local function gene_test(run, e, code, date, genes)
  local pres = presence(run, e.res)
  if not pres then return unmapped(run, e.ref, code, "no positive/negative value that the adapter knows") end
  for _, g in ipairs(genes) do
    if g == "braf" then
      if pres == "absent" then candidate(run, "molecular.braf_v600e", "wild_type", e, code, date)
      else unmapped(run, e.ref, code, "BRAF mutation reported without saying V600E") end
    elseif g == "braf_v600e" then
      candidate(run, "molecular.braf_v600e", pres == "present" and "mutant" or "wild_type", e, code, date)
    elseif #genes > 1 and pres == "present" then
      return unmapped(run, e.ref, code, "a mutation in one of several genes, not saying which")
    else
      candidate(run, "molecular." .. g, pres == "present" and "mutant" or "wild_type", e, code, date)
    end
  end
end

local function ecog(run, e, code, date)
  local r = e.res
  local v = type(r.valueInteger) == "number" and math.tointeger(r.valueInteger) or nil
  if v == nil then
    local _, a = match(run, r.valueCodeableConcept, run.codes.ecog_answers)
    if a == nil then _, a = match(run, list(r.interpretation)[1], run.codes.ecog_answers) end
    v = a
  end
  if v == nil or v < 0 or v > 5 then return unmapped(run, e.ref, code, "ECOG without a value 0-5") end
  if v == 5 then
    run.refuse = "ECOG 5 (dead) recorded in " .. e.ref .. ": no treatment decision applies"
    return
  end
  if not date then return unmapped(run, e.ref, code, "undated ECOG: cannot tell whether it is current") end
  local age = day_number(run.as_of) - day_number(date)
  if age > run.codes.limits.ecog_max_age_days then
    return unmapped(run, e.ref, code, "ECOG from " .. date .. " is more than " .. run.codes.limits.ecog_max_age_days
      .. " days before the as-of date " .. run.as_of .. ": stale")
  end
  candidate(run, "ecog", v, e, code, date)
end

local function msi(run, e, code, date)
  local k, v = match(run, e.res.valueCodeableConcept, run.codes.msi_answers)
  if v == "msi_high" or v == "mss" then return candidate(run, "molecular.msi", v, e, code, date) end
  if v == "msi_low" then
    return candidate(run, "molecular.msi", "mss", e, code, date, "MSI-low (" .. k .. ") read as MSS (pMMR), per current guidance")
  end
  unmapped(run, e.ref, code, v and ("MSI " .. v .. ": no MSI status") or "no MSI answer code that the adapter knows")
end

local function msi_ihc(run, e, code, date)
  local k, p = match(run, e.res.valueCodeableConcept, run.codes.presence)
  if not p then return unmapped(run, e.ref, code, "no positive/negative value that the adapter knows") end
  candidate(run, "molecular.msi", p == "present" and "msi_high" or "mss", e, code, date, "immunostain: " .. k)
end

local function disease_status(run, e, code, date)
  local k = match(run, e.res.valueCodeableConcept, run.codes.disease_worsened)
  if not k then return unmapped(run, e.ref, code, "disease status other than worsened: not used") end
  if not date then return unmapped(run, e.ref, code, "undated disease status: cannot place it after a regimen") end
  run.progression[#run.progression + 1] = { ref = e.ref, code = code, date = date }
end

local function observation(run, e)
  local r, codes = e.res, run.codes
  local code = first_key(run, r.code)
  local date = date_of(r) or run.report_date[e]
  if not code then
    local text = tbl(r.code) and str(r.code.text)
    return unmapped(run, e.ref, nil, text and ("no coding (text '" .. text .. "'): the adapter matches codes only")
      or "no coding: the adapter matches codes only")
  end
  local k, tests = match(run, r.code, codes.gene_tests)
  local handler, hk
  if match(run, r.code, codes.ecog) then handler, hk = ecog, match(run, r.code, codes.ecog)
  elseif match(run, r.code, codes.variant) then handler, hk = variant, match(run, r.code, codes.variant)
  elseif k then hk = k; handler = function(rn, en, c, d) return gene_test(rn, en, c, d, tests) end
  elseif match(run, r.code, codes.msi) then handler, hk = msi, match(run, r.code, codes.msi)
  elseif match(run, r.code, codes.msi_ihc) then handler, hk = msi_ihc, match(run, r.code, codes.msi_ihc)
  elseif match(run, r.code, codes.disease_status) then handler, hk = disease_status, match(run, r.code, codes.disease_status)
  end
  if not handler then
    local nk, why = match(run, r.code, codes.not_used)
    return unmapped(run, e.ref, nk or code, why or NOT_USED)
  end
  if usable(run, e, hk, FINAL, date) then handler(run, e, hk, date) end
end

---------------------------------------------------------------------------
-- Conditions
---------------------------------------------------------------------------

local function status_code(cc)
  for _, c in ipairs(list(tbl(cc) and cc.coding)) do
    if str(tbl(c) and c.code) then return c.code end
  end
end

local function icd_non_colorectal(run, key)
  local prefix = "http://hl7.org/fhir/sid/icd-10-cm|"
  if key:sub(1, #prefix) ~= prefix then return false end
  local code = key:sub(#prefix + 1)
  local cat = code:sub(1, 3)
  for _, rg in ipairs(run.codes.non_colorectal_icd_ranges) do
    if cat >= rg[1] and cat <= rg[2] then return true end
  end
  return false
end

local function body_site(run, r, map)
  for _, b in ipairs(list(r.bodySite)) do
    local k, v = match(run, b, map)
    if k then return v, k end
  end
end

local function secondary(run, e, key, site, date)
  local r = e.res
  if site == "body_site" or type(site) == "table" then
    local s = body_site(run, r, run.codes.secondary_sites)
    if not s then
      if type(site) == "table" then
        return unmapped(run, e.ref, key, "code covers more than one of the guideline's sites ("
          .. table.concat(site, ", ") .. "): give bodySite")
      end
      return unmapped(run, e.ref, key, "secondary cancer without a body site the adapter knows")
    end
    site = s
  end
  local spine = site == "bone" and body_site(run, r, run.codes.spine_sites) and true or nil
  run.mets[#run.mets + 1] = { site = site, ref = e.ref, code = key, date = date, spine = spine }
end

local function primary(run, e, key, site, date)
  local refined = body_site(run, e.res, run.codes.primary_sites)
  if site == "colon" and refined and refined ~= "colon" then site = refined end
  if site == "colon" and not MODEL.colon then
    return unmapped(run, e.ref, key, "colon primary, side not recorded: the facts model cannot say 'colon' yet")
  end
  candidate(run, "primary.site", site, e, key, date)
end

local function condition(run, e)
  local r, codes = e.res, run.codes
  local key = first_key(run, r.code)
  local date = date_of(r)
  if not key then
    return unmapped(run, e.ref, nil, "no coding: the adapter matches codes only")
  end
  local ver, clin = status_code(r.verificationStatus), status_code(r.clinicalStatus)
  if ver == "entered-in-error" then return unmapped(run, e.ref, key, "entered in error: ignored") end
  if ver == "refuted" then return unmapped(run, e.ref, key, "refuted: ignored") end
  if clin and clin ~= "active" and clin ~= "recurrence" and clin ~= "relapse" then
    return unmapped(run, e.ref, key, "clinical status '" .. clin .. "': not active")
  end
  if date and date > run.as_of then
    return unmapped(run, e.ref, key, "dated " .. date .. ", after the as-of date " .. run.as_of)
  end
  local abated = norm_date(r.abatementDateTime) or norm_date(period_start(r.abatementPeriod))
  if r.abatementBoolean == true or (abated and abated <= run.as_of) then
    return unmapped(run, e.ref, key, "abated" .. (abated and (" on " .. abated) or "") .. ": not active")
  end
  local k, v = match(run, r.code, codes.secondary)
  if k then return secondary(run, e, k, v, date) end
  k, v = match(run, r.code, codes.primary)
  if k then return primary(run, e, k, v, date) end
  k, v = match(run, r.code, codes.primary_ambiguous)
  if k then return unmapped(run, e.ref, k, v) end
  k = match(run, r.code, codes.non_colorectal)
  if not k then
    for _, kk in ipairs(keys_of(run, r.code)) do
      if icd_non_colorectal(run, kk) then k = kk break end
    end
  end
  if k then
    if MODEL.non_colorectal then return candidate(run, "primary.site", "non_colorectal", e, k, date) end
    return unmapped(run, e.ref, k, "non-colorectal primary: facts model cannot say so yet (primary.site left unknown)")
  end
  unmapped(run, e.ref, key, NOT_USED)
end

---------------------------------------------------------------------------
-- Procedures: radiotherapy and resection
---------------------------------------------------------------------------

local function laterality(run, b)
  for _, x in ipairs(list(b.extension)) do
    if tbl(x) then
      local _, l = match(run, x.valueCodeableConcept, run.codes.laterality)
      if l then return l end
      for _, y in ipairs(list(x.extension)) do
        if tbl(y) then
          _, l = match(run, y.valueCodeableConcept, run.codes.laterality)
          if l then return l end
        end
      end
    end
  end
end

local DONE = { completed = true, ["in-progress"] = true }

local function radiotherapy(run, e, key, date)
  local sites = 0
  for _, b in ipairs(list(e.res.bodySite)) do
    local _, base = match(run, b, run.codes.radiation_sites)
    if base then
      local lat = laterality(run, b)
      local name = lat and (lat .. " " .. base) or base
      sites = sites + 1
      if not run.rt_seen[name] then
        run.rt_seen[name] = true
        run.rt[#run.rt + 1] = { site = name, ref = e.ref, code = key, date = date, pelvis = base == "pelvis" }
      end
    end
  end
  if sites == 0 then unmapped(run, e.ref, key, "radiotherapy without a body site the adapter knows") end
end

local function procedure(run, e)
  local r, codes = e.res, run.codes
  local key = first_key(run, r.code)
  local date = date_of(r)
  if not key then return unmapped(run, e.ref, nil, "no coding: the adapter matches codes only") end
  local rk = match(run, r.code, codes.radiotherapy)
  local sk = match(run, r.code, codes.resection)
  local gk = match(run, r.code, codes.surgery_generic)
  if gk and not sk and body_site(run, r, codes.primary_sites) then sk = gk end
  if not rk and not sk then return unmapped(run, e.ref, key, NOT_USED) end
  if not usable(run, e, rk or sk, DONE, date) then return end
  if rk then return radiotherapy(run, e, rk, date) end
  candidate(run, "primary.resected", true, e, sk, date)
end

---------------------------------------------------------------------------
-- Medications
---------------------------------------------------------------------------

local MED_OK = {
  MedicationStatement = { active = true, completed = true, stopped = true },
  MedicationRequest = { active = true, completed = true, stopped = true },
  MedicationAdministration = { completed = true, ["in-progress"] = true, stopped = true },
}
local MED_ONGOING = { active = true, ["in-progress"] = true }

local function med_agents(run, cc)
  local k, a = match(run, cc, run.codes.agents)
  if not k then k, a = match(run, cc, run.codes.products) end
  return a, k
end

local function medication(run, e)
  local r = e.res
  local cc = tbl(r.medicationCodeableConcept)
  if not cc then
    local m = resolve_in(run, e, reference(r.medicationReference))
    if m then
      cc = tbl(m.res.code)
      if not med_agents(run, cc) then   -- a compounded Medication: its first known ingredient
        for _, ing in ipairs(list(m.res.ingredient)) do
          if tbl(ing) and med_agents(run, ing.itemCodeableConcept) then cc = ing.itemCodeableConcept break end
        end
      end
    end
  end
  local key = first_key(run, cc)
  if not key then return unmapped(run, e.ref, nil, "no medication coding: the adapter matches codes only") end
  local agent, ak = med_agents(run, cc)
  if not agent then return unmapped(run, e.ref, key, NOT_AGENT) end
  local date = date_of(r)
  if not usable(run, e, ak, MED_OK[r.resourceType], date) then return end
  run.meds[#run.meds + 1] = { agent = agent, ref = e.ref, code = ak, date = date, ongoing = MED_ONGOING[r.status] }
end

---------------------------------------------------------------------------
-- Planned surgery: ServiceRequest or Appointment
---------------------------------------------------------------------------

local function is_surgery(run, cc)
  return match(run, cc, run.codes.resection) or match(run, cc, run.codes.surgery_generic)
end

local function planned(run, e, key, date)
  if not date then return unmapped(run, e.ref, key, "planned surgery without a date") end
  if date < run.as_of then
    return unmapped(run, e.ref, key, "surgery planned for " .. date .. ", before the as-of date " .. run.as_of)
  end
  run.surgeries[#run.surgeries + 1] = { days = day_number(date) - day_number(run.as_of), ref = e.ref, code = key, date = date }
end

local function service_request(run, e)
  local r = e.res
  local key = is_surgery(run, r.code)
  if not key then return unmapped(run, e.ref, first_key(run, r.code), NOT_USED) end
  if usable(run, e, key, { active = true, ["on-hold"] = true }) then planned(run, e, key, date_of(r)) end
end

local function appointment(run, e)
  local r = e.res
  local key
  for _, f in ipairs({ "serviceType", "reasonCode", "serviceCategory" }) do
    for _, cc in ipairs(list(r[f])) do key = key or is_surgery(run, cc) end
  end
  for _, b in ipairs(list(r.basedOn)) do
    local sr = resolve_in(run, e, reference(b))
    if sr then key = key or is_surgery(run, sr.res.code) end
  end
  if not key then return unmapped(run, e.ref, nil, "appointment not for a surgical procedure the adapter knows") end
  if usable(run, e, key, { booked = true, pending = true, proposed = true, arrived = true }) then
    planned(run, e, key, norm_date(r.start))
  end
end

---------------------------------------------------------------------------
-- deciding: the latest result per fact, then the facts table
---------------------------------------------------------------------------

local function choose(run, fact)
  local c = run.cands[fact]
  if not c then return nil end
  local best = ""
  for _, x in ipairs(c) do if (x.date or "") > best then best = x.date or "" end end
  local latest, value, conflict = {}, nil, false
  for _, x in ipairs(c) do
    if (x.date or "") == best then
      latest[#latest + 1] = x
      if value == nil then value = x.value elseif value ~= x.value then conflict = true end
    end
  end
  if conflict then
    for _, x in ipairs(latest) do
      unmapped(run, x.ref, x.code, fact .. ": results of the same date disagree (" .. tostring(x.value) .. "): left unknown")
    end
    return nil
  end
  for _, x in ipairs(c) do
    if (x.date or "") ~= best then
      unmapped(run, x.ref, x.code, fact .. " " .. tostring(x.value) .. " superseded by " .. latest[1].ref
        .. " (" .. (best ~= "" and best or "undated") .. ")")
    end
  end
  return value, latest
end

local function source(run, fact, value, x, note)
  run.sources[#run.sources + 1] = {
    fact = fact, value = tostring(value), ref = x.ref, code = x.code, date = x.date, note = note or x.note,
  }
end

local function set_path(facts, fact, value)
  local dot = fact:find(".", 1, true)
  local a, b = dot and fact:sub(1, dot - 1), dot and fact:sub(dot + 1)
  if a then
    facts[a] = facts[a] or {}
    facts[a][b] = value
  else
    facts[fact] = value
  end
end

local function regimens(run, facts)
  if #run.meds == 0 then return end
  local seen, names = {}, {}
  for _, m in ipairs(run.meds) do seen[m.agent] = seen[m.agent] or {} table.insert(seen[m.agent], m) end
  local rnames = {}
  for name in pairs(run.codes.regimens) do rnames[#rnames + 1] = name end
  table.sort(rnames)
  local used, out, has_ox = {}, {}, false
  for _, name in ipairs(rnames) do
    local agents, all = run.codes.regimens[name], true
    for _, a in ipairs(agents) do if not seen[a] then all = false end end
    if all then
      local reg = { name = name, meds = {} }
      for _, a in ipairs(agents) do
        used[a] = true
        if a == "oxaliplatin" then has_ox = true end
        for _, m in ipairs(seen[a]) do reg.meds[#reg.meds + 1] = m end
      end
      if seen.leucovorin and seen.fluorouracil and used.fluorouracil then   -- given with 5-FU
        for _, m in ipairs(seen.leucovorin) do reg.meds[#reg.meds + 1] = m end
      end
      out[#out + 1] = reg
    end
  end
  local agents = {}
  for a in pairs(seen) do agents[#agents + 1] = a end
  table.sort(agents)
  for _, a in ipairs(agents) do
    if not used[a] and a ~= "leucovorin" then
      if a == "oxaliplatin" then has_ox = true end
      out[#out + 1] = { name = a, meds = seen[a] }
    end
    names[#names + 1] = a
  end
  if not has_ox then
    return unmapped(run, nil, nil, "prior_regimens left unknown: no oxaliplatin regimen seen (agents seen: "
      .. table.concat(names, ", ") .. ") and a medication list is never taken as complete")
  end
  facts.prior_regimens = {}
  for i, reg in ipairs(out) do
    local ongoing, start = false, nil
    for _, m in ipairs(reg.meds) do
      ongoing = ongoing or m.ongoing
      if m.date and (not start or m.date < start) then start = m.date end
    end
    local outcome, worse = ongoing and "ongoing" or nil, nil
    if not ongoing and start then
      for _, p in ipairs(run.progression) do
        if p.date >= start and (not worse or p.date > worse.date) then worse = p end
      end
      if worse then outcome = "progression" end
    end
    facts.prior_regimens[i] = { name = reg.name, outcome = outcome }
    for _, m in ipairs(reg.meds) do
      source(run, "prior_regimens[" .. i .. "].name", reg.name, m, "agent " .. m.agent)
    end
    if worse then
      source(run, "prior_regimens[" .. i .. "].outcome", outcome, worse,
        "disease worsened on " .. worse.date .. ", after the regimen began " .. start)
    end
  end
end

local function decide(run, key)
  local facts = {}
  local pe = type(key) == "table" and key or nil
  local pid = pe and (str(pe.res.id) or pe.full or pe.ref) or key
  facts.patient_id = pid
  source(run, "patient_id", pid, { ref = pe and pe.ref or key })
  for _, fact in ipairs(FACT_ORDER) do
    if fact == "metastatic" then
      if #run.mets > 0 then
        facts.metastatic = true
        for _, m in ipairs(run.mets) do source(run, "metastatic", true, m) end
      end
    elseif fact == "primary.prior_pelvic_radiation" then
      for _, r in ipairs(run.rt) do
        if r.pelvis then
          set_path(facts, fact, true)
          source(run, fact, true, r)
        end
      end
    elseif fact == "prior_regimens" then
      regimens(run, facts)
    elseif fact == "metastases" then
      local index = {}
      for _, m in ipairs(run.mets) do
        if not index[m.site] then
          facts.metastases = facts.metastases or {}
          facts.metastases[#facts.metastases + 1] = { site = m.site }
          index[m.site] = #facts.metastases
        end
        source(run, "metastases[" .. index[m.site] .. "].site", m.site, m)
        if m.spine then
          facts.metastases[index[m.site]].spine = true
          source(run, "metastases[" .. index[m.site] .. "].spine", true, m)
        end
      end
    elseif fact == "prior_radiation_sites" then
      for _, r in ipairs(run.rt) do
        facts.prior_radiation_sites = facts.prior_radiation_sites or {}
        table.insert(facts.prior_radiation_sites, r.site)
        source(run, fact, r.site, r)
      end
    elseif fact == "planned_surgery_in_days" then
      local best
      for _, s in ipairs(run.surgeries) do if not best or s.days < best.days then best = s end end
      if best then
        facts.planned_surgery_in_days = best.days
        source(run, fact, best.days, best, "planned for " .. best.date .. ", as of " .. run.as_of)
      end
    elseif fact ~= "patient_id" then
      local v, latest = choose(run, fact)
      if v ~= nil then
        set_path(facts, fact, v)
        for _, x in ipairs(latest) do source(run, fact, v, x) end
      end
    end
  end
  return facts
end

---------------------------------------------------------------------------

local HANDLERS = {
  Observation = observation, Condition = condition, Procedure = procedure,
  MedicationStatement = medication, MedicationRequest = medication,
  MedicationAdministration = medication, ServiceRequest = service_request,
  Appointment = appointment,
}

local function report_dates(run)
  for _, e in ipairs(run.entries) do
    if e.res.resourceType == "DiagnosticReport" and str(e.res.status) ~= "entered-in-error" then
      local d = date_of(e.res)
      for _, ref in ipairs(list(e.res.result)) do
        local o = resolve(run, reference(ref))
        if o and d and not run.report_date[o] then run.report_date[o] = d end
      end
    end
  end
end

function M.adapt(doc, ctx)
  if type(doc) ~= "table" then return nil, "not a FHIR document: expected a JSON object" end
  local run = new_run(doc, ctx)
  collect(run)
  if #run.entries == 0 then return nil, "no FHIR resources in the document" end
  local key, why = find_patient(run)
  if not key then return nil, why end
  if type(key) == "table" then
    local p = key.res
    if p.deceasedBoolean == true or (norm_date(p.deceasedDateTime) or "9999") <= run.as_of then
      return nil, key.ref .. " is recorded as deceased: no treatment decision applies"
    end
  end
  report_dates(run)
  for _, e in ipairs(run.entries) do
    local t = e.res.resourceType
    local h = HANDLERS[t]
    if h then
      if about_patient(run, e, key) then h(run, e) end
    elseif not run.codes.context_types[t] then
      unmapped(run, e.ref, nil, "resource type " .. t .. " is not used")
    end
  end
  if run.refuse then return nil, run.refuse end
  local facts = decide(run, key)
  return {
    patient = type(key) == "table" and key.ref or key,
    facts = facts, sources = run.sources, unmapped = run.unmapped,
  }
end

return M
