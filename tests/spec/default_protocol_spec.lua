-- default_protocol_spec.lua: the default protocol (scripts/mrc_second_line.lua)
-- driven through the real engine (its C facts model and safety kernel).
--
-- Every guideline sentence (docs/guideline.txt, cited here by
-- its line number Lnn) has at least one scenario that fails if its branch
-- breaks; boundaries are tested on both sides.

local H = package.loaded.pw_helper
  or dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "helper.lua")

local pathwise = H.pathwise
local case, eval, rec = H.case, H.eval, H.rec
local UNKNOWN = H.UNKNOWN

local function null(v)
  return v == nil or v == pathwise.null or v == H.cjson.null
end

local function sorted(list)
  local t = {}
  for i, v in ipairs(list) do
    t[i] = v
  end
  table.sort(t)
  return t
end

local function contains(list, value)
  for _, v in ipairs(list or {}) do
    if v == value then
      return true
    end
  end
  return false
end

local ANTICANCER = { "fluorouracil", "leucovorin", "irinotecan", "oxaliplatin", "bevacizumab",
  "cetuximab", "panitumumab", "encorafenib", "pembrolizumab", "nivolumab" }

local function no_anticancer_agent(r)
  for _, a in ipairs(ANTICANCER) do
    assert.is_nil(H.has_agent(r, a), "unexpected " .. a .. " in recommendations")
  end
end

local function molecular(kras, nras, braf, msi)
  return { molecular = { kras = kras, nras = nras, braf_v600e = braf or "wild_type", msi = msi or "mss" } }
end

-- Every blocked item stays out of the recommendations.
local function assert_disjoint(r)
  for _, b in ipairs(r.blocked) do
    if b.source == "protocol" then
      for _, item in ipairs(r.recommendations) do
        assert.is_false(item.id == b.id and (item.target or 0) == (b.target or 0),
          "blocked item " .. b.id .. " also recommended")
      end
    end
  end
end

------------------------------------------------------------------------

describe("engine and protocol identity", function()
  it("loads the default protocol and names it", function()
    local info = H.engine():info()
    assert.equal("mrc_second_line", info.id)
    assert.is_string(info.version)
    assert.is_string(info.title)
    assert.matches("^%x+$", info.sha256)
    assert.equal(64, #info.sha256)
  end)

  it("every result carries engine and protocol identity", function()
    local r = eval(case())
    assert.equal("mrc_second_line", r.protocol.id)
    assert.equal(H.engine():info().sha256, r.protocol.sha256)
    assert.equal("index-001", r.patient_id)
    assert.is_string(r.engine.version)
  end)

  it("the protocol's own example cases pass (pathwise check)", function()
    local ok, report = H.engine():check()
    assert.is_true(ok, report)
  end)

  it("lists the safety kernel's rules", function()
    local ids = {}
    for _, rule in ipairs(pathwise.rules()) do
      ids[rule.id] = true
      assert.is_string(rule.statement)
      -- a guideline rule cites it and quotes it; a rule beyond it names its source instead
      if type(rule.beyond_guideline) == "string" then
        assert.equal(0, #rule.citations, rule.id)
        assert.is_true(rule.guideline == nil or rule.guideline == pathwise.null or rule.guideline == H.cjson.null, rule.id)
      else
        assert.is_true(#rule.citations > 0, rule.id)
        assert.is_string(rule.guideline, rule.id)
      end
    end
    for _, id in ipairs({ "ecog_gate", "egfr_requires_ras_wt", "single_biologic", "oxaliplatin_neuropathy",
      "bev_surgery_window", "no_long_course_crt_metastatic", "primary_resection_needs_symptoms",
      "primary_local_therapy_needs_symptoms", "rt_symptomatic_sites_only", "groin_rt_prior_radiation",
      "checkpoint_requires_msi_high", "encorafenib_requires_braf_v600e" }) do
      assert.is_true(ids[id], "rule " .. id)
    end
  end)

  it("renders a readable text report of the index case", function()
    local _, e = eval(case())
    local text = e:text()
    assert.is_string(text)
    assert.truthy(text:find("FOLFIRI", 1, true))
    assert.truthy(text:find("bevacizumab", 1, true))
    assert.truthy(text:find("palliative_rt_bone", 1, true) or text:find("adiotherapy", 1, true))
  end)

  it("adds a trace only when asked", function()
    local r = eval(case())
    assert.is_true(r.trace == nil or #r.trace == 0)
    local t = eval(case(), { trace = true })
    assert.is_table(t.trace)
    assert.is_true(#t.trace > 0)
  end)
end)

------------------------------------------------------------------------

describe("the index case (L2, L4: the guideline's patient)", function()
  local r
  setup(function()
    r = eval(H.read(H.examples .. "/index_case.json"))
  end)

  it("applies and takes the second-line systemic pathway", function()
    assert.is_true(r.applicable)
    assert.equal("second_line_systemic", r.pathway)
    local c = H.cites(r.pathway_detail)
    for _, n in ipairs({ 1, 2, 3 }) do
      assert.is_true(contains(c, n), "pathway cites " .. n)
    end
  end)

  it("starts FOLFIRI plus bevacizumab, preferred, with unknown molecular results", function()
    local item = rec(r, "FOLFIRI+bevacizumab")
    assert.is_table(item)
    assert.equal("recommended", item.strength)
    assert.is_true(item.preferred)
    assert.equal("second_line_regimen", item.group)
    assert.equal("protocol", item.source)
  end)

  it("offers radiotherapy to the painful bone site only", function()
    local bone = rec(r, "palliative_rt_bone")
    assert.is_table(bone)
    assert.equal(1, bone.target)
    assert.is_nil(rec(r, "palliative_rt_inguinal"))
    assert.is_nil(rec(r, "palliative_rt_retroperitoneal"))
  end)

  it("orders RAS, BRAF and MSI testing and reports them missing", function()
    for _, id in ipairs({ "ras_testing", "braf_testing", "msi_testing" }) do
      assert.is_table(rec(r, id), id)
    end
    for _, f in ipairs({ "molecular.kras", "molecular.nras", "molecular.braf_v600e", "molecular.msi" }) do
      assert.is_table(H.missing(r, f), f)
    end
  end)

  it("recommends no local therapy of the asymptomatic primary", function()
    assert.is_nil(rec(r, "primary_local_therapy"))
    assert.is_table(H.warning(r, "no_locoregional_primary"))
  end)

  it("blocks nothing and recommends nothing blocked", function()
    assert.equal(0, #r.blocked)
    assert_disjoint(r)
  end)

  it("every list is present", function()
    for _, k in ipairs({ "recommendations", "blocked", "missing", "warnings", "followup", "outcomes",
      "alternatives", "orders" }) do
      assert.is_table(r[k], k)
    end
  end)
end)

------------------------------------------------------------------------

describe("applicability (L2 [1,2,3], L4 [1,3])", function()
  it("applies after progression on first-line FOLFOX", function()
    local r = eval(case())
    assert.is_true(r.applicable)
  end)

  it("applies after intolerance of first-line FOLFOX", function()
    local r = eval(case{ prior_regimens = { { name = "FOLFOX", line = 1, outcome = "intolerance" } } })
    assert.is_true(r.applicable)
    assert.equal("second_line_systemic", r.pathway)
  end)

  it("matches the regimen name in any case (folfox, mFOLFOX6)", function()
    for _, name in ipairs({ "folfox", "Folfox", "mFOLFOX6" }) do
      local r = eval(case{ prior_regimens = { { name = name, line = 1, outcome = "progression" } } })
      assert.is_true(r.applicable, name)
    end
  end)

  it("does not apply while first-line FOLFOX is ongoing; recommends nothing", function()
    local r = eval(case{ prior_regimens = { { name = "FOLFOX", line = 1, outcome = "ongoing" } } })
    assert.is_false(r.applicable)
    assert.is_string(r.applicability)
    assert.equal(0, #r.recommendations)
    assert.is_true(null(r.pathway))
  end)

  it("does not apply without first-line FOLFOX", function()
    local r = eval(case{ prior_regimens = { { name = "FOLFIRI", line = 1, outcome = "progression" } } })
    assert.is_false(r.applicable)
    assert.equal(0, #r.recommendations)
  end)

  it("does not apply when a later line has already been exhausted", function()
    local r = eval(case{ prior_regimens = {
      { name = "FOLFOX", line = 1, outcome = "progression" },
      { name = "FOLFIRI", line = 2, outcome = "progression" },
    } })
    assert.is_false(r.applicable)
  end)

  it("does not apply to non-metastatic disease; recommends nothing", function()
    local r = eval(case{ metastatic = false, metastases = {} })
    assert.is_false(r.applicable)
    assert.truthy(r.applicability:lower():find("metastatic", 1, true))
    assert.equal(0, #r.recommendations)
  end)

  it("cannot tell when metastatic is unknown: reports it with the staging test", function()
    local r = eval(case{ metastatic = UNKNOWN })
    assert.is_true(null(r.applicable))
    assert.equal(0, #r.recommendations)
    local m = H.missing(r, "metastatic")
    assert.is_table(m)
    assert.truthy(m.test:find("CT", 1, true))
  end)

  it("cannot tell when prior_regimens is unknown: reports it", function()
    local r = eval(case{ prior_regimens = UNKNOWN })
    assert.is_true(null(r.applicable))
    assert.equal(0, #r.recommendations)
    assert.is_table(H.missing(r, "prior_regimens"))
  end)

  it("cannot tell when the FOLFOX outcome is not recorded", function()
    local r = eval(case{ prior_regimens = { { name = "FOLFOX", line = 1 } } })
    assert.is_true(null(r.applicable))
    assert.is_table(H.missing(r, "prior_regimens"))
  end)

  it("reports both unknowns together", function()
    local r = eval(case{ metastatic = UNKNOWN, prior_regimens = UNKNOWN })
    assert.is_table(H.missing(r, "metastatic"))
    assert.is_table(H.missing(r, "prior_regimens"))
  end)
end)

------------------------------------------------------------------------

describe("performance status (L24, L25, L31)", function()
  for _, ecog in ipairs({ 0, 1, 2 }) do
    it("ECOG " .. ecog .. " gets second-line chemotherapy", function()
      local r = eval(case{ ecog = ecog })
      assert.equal("second_line_systemic", r.pathway)
      assert.is_table(rec(r, "FOLFIRI+bevacizumab"))
    end)
  end

  for _, ecog in ipairs({ 3, 4 }) do
    it("ECOG " .. ecog .. " gets best supportive care only; RT and bone agents stay", function()
      local r = eval(case{ ecog = ecog })
      assert.equal("best_supportive_care", r.pathway)
      local bsc = rec(r, "best_supportive_care")
      assert.is_table(bsc)
      assert.same({ 1, 3 }, H.cites(bsc))
      no_anticancer_agent(r)
      assert.is_table(rec(r, "palliative_rt_bone"))
      assert.is_table(rec(r, "zoledronic_acid"))
      assert.is_table(rec(r, "denosumab"))
      assert.is_nil(H.followup(r, "ct_reassessment"))
      assert.is_nil(H.outcome(r, "progression-free"))
      assert.equal(0, #r.blocked)
    end)
  end

  it("ECOG 3 with an MSI-high tumour still gets best supportive care only", function()
    local r = eval(case{ ecog = 3, molecular = { msi = "msi_high" } })
    assert.equal("best_supportive_care", r.pathway)
    assert.is_nil(rec(r, "pembrolizumab"))
    assert.is_nil(rec(r, "nivolumab"))
  end)

  it("ECOG 3: proposed FOLFIRI is blocked by the kernel", function()
    local r = eval(case{ ecog = 3, proposed_orders = { "FOLFIRI" } })
    local b = H.blocked(r, "FOLFIRI")
    assert.is_table(b)
    assert.equal("ecog_gate", b.rule)
    assert.equal("proposed_order", b.source)
  end)

  it("ECOG 2: proposed FOLFIRI is allowed", function()
    local r = eval(case{ ecog = 2, proposed_orders = { "FOLFIRI" } })
    assert.is_nil(H.blocked(r, "FOLFIRI"))
  end)

  it("ECOG unknown: needs assessment, no systemic therapy, tests and supportive care go ahead", function()
    local r = eval(case{ ecog = UNKNOWN })
    assert.equal("needs_assessment", r.pathway)
    local m = H.missing(r, "ecog")
    assert.is_table(m)
    assert.equal("ECOG performance status assessment", m.test)
    no_anticancer_agent(r)
    assert.is_table(rec(r, "ras_testing"))
    assert.is_table(rec(r, "msi_testing"))
    assert.is_table(rec(r, "palliative_rt_bone"))
    assert.is_nil(H.followup(r, "ct_reassessment"))
    local c = H.cites(r.pathway_detail)
    assert.is_true(contains(c, 2) and contains(c, 3))
  end)
end)

------------------------------------------------------------------------

describe("second-line regimen (L6 [1,3], L7 [2,4], L32 [1,2,3])", function()
  it("FOLFIRI plus bevacizumab carries its agents and cites FOLFIRI and bevacizumab sentences", function()
    -- evidence and facts are shown with the trace
    local item = rec(eval(case(), { trace = true }), "FOLFIRI+bevacizumab")
    assert.same({ "bevacizumab", "fluorouracil", "irinotecan", "leucovorin" }, sorted(item.agents))
    assert.same({ 1, 2, 3, 4 }, H.cites(item))
    assert.truthy(item.evidence:find("FOLFIRI (5-FU/leucovorin/irinotecan) is the appropriate", 1, true))
    assert.truthy(item.evidence:find("Add bevacizumab", 1, true))
  end)

  it("never proposes oxaliplatin in second line", function()
    assert.is_nil(H.has_agent(eval(case()), "oxaliplatin"))
  end)

  -- Every KRAS/NRAS combination: bevacizumab regardless (L7); anti-EGFR
  -- only for both wild type (L8, L40); RAS testing for what is unknown (L9, L27).
  local combos = {
    { "wild_type", "wild_type", egfr = true, missing = {} },
    { "mutant", "wild_type", egfr = false, missing = {} },
    { "wild_type", "mutant", egfr = false, missing = {} },
    { "mutant", "mutant", egfr = false, missing = {} },
    { "unknown", "unknown", egfr = false, missing = { "molecular.kras", "molecular.nras" } },
    { "wild_type", "unknown", egfr = false, missing = { "molecular.nras" } },
    { "unknown", "wild_type", egfr = false, missing = { "molecular.kras" } },
    { "mutant", "unknown", egfr = false, missing = {} },
    { "unknown", "mutant", egfr = false, missing = {} },
  }
  for _, c in ipairs(combos) do
    local name = "KRAS " .. c[1] .. ", NRAS " .. c[2]
    it(name .. ": bevacizumab " .. (c.egfr and "with anti-EGFR alternatives" or "without anti-EGFR"), function()
      local r = eval(case(molecular(c[1], c[2])))
      local bev = rec(r, "FOLFIRI+bevacizumab")
      assert.is_table(bev)
      assert.is_true(bev.preferred)
      for _, id in ipairs({ "FOLFIRI+cetuximab", "FOLFIRI+panitumumab" }) do
        local item = rec(r, id)
        if c.egfr then
          assert.is_table(item, id)
          assert.equal("consider", item.strength)
          assert.equal("second_line_regimen", item.group)
          assert.same({ 2, 4 }, H.cites(item))
        else
          assert.is_nil(item, id)
        end
      end
      if not c.egfr then
        assert.is_nil(H.has_agent(r, "cetuximab"))
        assert.is_nil(H.has_agent(r, "panitumumab"))
      end
      for _, f in ipairs({ "molecular.kras", "molecular.nras" }) do
        local m = H.missing(r, f)
        if contains(c.missing, f) then
          assert.is_table(m, f)
          assert.equal("ras_testing", m.order)
          assert.equal("KRAS and NRAS exons 2, 3, 4", m.test)
          assert.same({ 2, 4 }, H.cites(m))
        else
          assert.is_nil(m, f)
        end
      end
      if #c.missing > 0 then
        assert.is_table(rec(r, "ras_testing"))
      else
        assert.is_nil(rec(r, "ras_testing"))
      end
      assert.equal(0, #r.blocked)
    end)

    it(name .. ": a proposed cetuximab is " .. (c.egfr and "allowed" or "blocked"), function()
      local f = case(molecular(c[1], c[2]))
      f.proposed_orders = { "cetuximab" }
      local r = eval(f)
      local b = H.blocked(r, "cetuximab")
      if c.egfr then
        assert.is_nil(b)
      else
        assert.is_table(b)
        assert.equal("egfr_requires_ras_wt", b.rule)
      end
    end)
  end

  it("lists bevacizumab and anti-EGFR regimens as alternatives of one group, never combined", function()
    local r = eval(case(molecular("wild_type", "wild_type")))
    local group
    for _, g in ipairs(r.alternatives) do
      if g.group == "second_line_regimen" then
        group = g
      end
    end
    assert.is_table(group)
    for _, id in ipairs({ "FOLFIRI+bevacizumab", "FOLFIRI+cetuximab", "FOLFIRI+panitumumab" }) do
      assert.is_true(contains(group.items, id), id)
    end
    assert.is_nil(H.blocked_by(r, "single_biologic"))
  end)

  it("proposed bevacizumab plus cetuximab together are blocked (single biologic)", function()
    local f = case(molecular("wild_type", "wild_type"))
    f.proposed_orders = { "bevacizumab", "cetuximab" }
    local r = eval(f)
    assert.is_table(H.blocked_by(r, "single_biologic"))
  end)
end)

------------------------------------------------------------------------

describe("BRAF V600E (L28 [4])", function()
  it("mutant with RAS wild type: consider encorafenib plus cetuximab", function()
    local r = eval(case(molecular("wild_type", "wild_type", "mutant")))
    local item = rec(r, "encorafenib+cetuximab")
    assert.is_table(item)
    assert.equal("consider", item.strength)
    assert.same({ 4 }, H.cites(item))
    assert.is_table(rec(r, "FOLFIRI+bevacizumab"))
    assert.equal(0, #r.blocked)
  end)

  it("mutant with RAS unknown: encorafenib plus cetuximab waits for RAS", function()
    local r = eval(case{ molecular = { kras = "unknown", nras = "unknown", braf_v600e = "mutant", msi = "mss" } })
    assert.is_nil(rec(r, "encorafenib+cetuximab"))
    assert.is_table(H.warning(r, "braf_combination_needs_ras_wt"))
    assert.equal(0, #r.blocked)
  end)

  it("mutant with RAS mutant: no encorafenib plus cetuximab", function()
    local r = eval(case(molecular("mutant", "wild_type", "mutant")))
    assert.is_nil(rec(r, "encorafenib+cetuximab"))
  end)

  it("wild type: no encorafenib; a proposed encorafenib is blocked", function()
    local f = case(molecular("wild_type", "wild_type", "wild_type"))
    f.proposed_orders = { "encorafenib" }
    local r = eval(f)
    assert.is_nil(rec(r, "encorafenib+cetuximab"))
    assert.equal("encorafenib_requires_braf_v600e", H.blocked(r, "encorafenib").rule)
  end)

  it("unknown: BRAF V600E testing ordered and reported missing", function()
    local r = eval(case())
    local m = H.missing(r, "molecular.braf_v600e")
    assert.equal("braf_testing", m.order)
    assert.same({ 4 }, H.cites(m))
    assert.same({ 4 }, H.cites(rec(r, "braf_testing")))
  end)
end)

------------------------------------------------------------------------

describe("MSI (L29 [3])", function()
  for _, ecog in ipairs({ 0, 2 }) do
    it("MSI-high at ECOG " .. ecog .. ": pembrolizumab or nivolumab, preferred over chemotherapy", function()
      local r = eval(case{ ecog = ecog, molecular = { msi = "msi_high" } })
      assert.equal("immunotherapy", r.pathway)
      local p, n = rec(r, "pembrolizumab"), rec(r, "nivolumab")
      assert.is_table(p)
      assert.is_table(n)
      assert.equal(p.group, n.group)
      assert.is_string(p.group)
      assert.same({ 3 }, H.cites(p))
      assert.is_nil(rec(r, "FOLFIRI+bevacizumab"))
      assert.is_nil(H.has_agent(r, "irinotecan"))
      assert.is_table(H.followup(r, "ct_reassessment"))
      assert.equal(0, #r.blocked)
    end)
  end

  it("MSS: second-line chemotherapy, no checkpoint inhibitor; a proposed one is blocked", function()
    local f = case{ molecular = { msi = "mss" }, proposed_orders = { "pembrolizumab" } }
    local r = eval(f)
    assert.equal("second_line_systemic", r.pathway)
    assert.is_nil(rec(r, "pembrolizumab"))
    assert.equal("checkpoint_requires_msi_high", H.blocked(r, "pembrolizumab").rule)
  end)

  it("unknown: MSI testing ordered, FOLFIRI plus bevacizumab not delayed", function()
    local r = eval(case())
    local m = H.missing(r, "molecular.msi")
    assert.equal("msi_testing", m.order)
    assert.same({ 3 }, H.cites(m))
    assert.is_table(rec(r, "msi_testing"))
    assert.is_table(rec(r, "FOLFIRI+bevacizumab"))
  end)
end)

------------------------------------------------------------------------

describe("palliative radiotherapy (L11 [1,3], L13 [1,3], L14 [3], L15 [1], L33)", function()
  local function with_mets(mets, extra)
    local f = case{ metastases = mets }
    for k, v in pairs(extra or {}) do
      f[k] = v
    end
    return eval(f)
  end

  it("L11: no radiotherapy for asymptomatic sites, said in a warning", function()
    local r = with_mets{ { site = "bone", symptoms = {} }, { site = "inguinal_nodes", symptoms = {} },
      { site = "retroperitoneal", symptoms = {} } }
    for _, id in ipairs({ "palliative_rt_bone", "palliative_rt_inguinal", "palliative_rt_retroperitoneal" }) do
      assert.is_nil(rec(r, id), id)
    end
    local w = H.warning(r, "no_rt_asymptomatic_sites")
    assert.same({ 1, 3 }, H.cites(w))
  end)

  for _, sym in ipairs({ "pain", "fracture_risk" }) do
    it("L13: bone metastasis with " .. sym .. " gets 20-30 Gy in 5-10 fractions", function()
      local r = with_mets{ { site = "liver", symptoms = {} }, { site = "bone", symptoms = { sym } } }
      local item = rec(r, "palliative_rt_bone")
      assert.is_table(item)
      assert.equal(2, item.target)
      assert.equal("recommended", item.strength)
      assert.truthy(item.text:find("20-30 Gy in 5-10 fractions", 1, true))
      assert.same({ 1, 3 }, H.cites(item))
      assert.is_table(H.outcome(r, "70-80%"))
    end)
  end

  it("L13: one item per symptomatic bone site, each with its target", function()
    local r = with_mets{ { site = "bone", symptoms = { "pain" } }, { site = "bone", symptoms = {} },
      { site = "bone", symptoms = { "fracture_risk" } } }
    assert.is_table(rec(r, "palliative_rt_bone", 1))
    assert.is_nil(rec(r, "palliative_rt_bone", 2))
    assert.is_table(rec(r, "palliative_rt_bone", 3))
    assert.equal(0, #r.blocked)
  end)

  for _, sym in ipairs({ "pain", "skin_breakdown", "lymphedema" }) do
    it("L14: inguinal nodes with " .. sym .. " and no prior groin RT: 50 Gy in 25 fractions", function()
      local r = with_mets{ { site = "inguinal_nodes", symptoms = { sym } } }
      local item = rec(r, "palliative_rt_inguinal")
      assert.is_table(item)
      assert.equal(1, item.target)
      assert.truthy(item.text:find("50 Gy in 25 fractions", 1, true))
      assert.same({ 3 }, H.cites(item))
      assert.equal(0, #r.blocked)
    end)
  end

  it("L14: prior groin radiation: no 50 Gy course, a re-irradiation review warning", function()
    local r = with_mets({ { site = "inguinal_nodes", symptoms = { "pain" } } },
      { prior_radiation_sites = { "pelvis", "groin" } })
    assert.is_nil(rec(r, "palliative_rt_inguinal"))
    local w = H.warning(r, "groin_reirradiation_review")
    assert.is_table(w)
    assert.same({ 3 }, H.cites(w))
    assert.equal(0, #r.blocked)
  end)

  it("L14: radiation history unknown: no 50 Gy course, history reported missing", function()
    local f = case{ metastases = { { site = "inguinal_nodes", symptoms = { "pain" } } } }
    f.prior_radiation_sites = nil
    local r = eval(f)
    assert.is_nil(rec(r, "palliative_rt_inguinal"))
    assert.is_table(H.missing(r, "prior_radiation_sites"))
  end)

  it("L14: a proposed inguinal RT after groin radiation is blocked by the kernel", function()
    local r = with_mets({ { site = "inguinal_nodes", symptoms = { "pain" } } },
      { prior_radiation_sites = { "groin" }, proposed_orders = { "palliative_rt_inguinal" } })
    assert.equal("groin_rt_prior_radiation", H.blocked(r, "palliative_rt_inguinal").rule)
  end)

  for _, sym in ipairs({ "obstruction", "pain", "neurologic" }) do
    it("L15: retroperitoneal mass with " .. sym .. ": consider palliative radiation", function()
      local r = with_mets{ { site = "retroperitoneal", symptoms = { sym } } }
      local item = rec(r, "palliative_rt_retroperitoneal")
      assert.is_table(item)
      assert.equal(1, item.target)
      assert.equal("consider", item.strength)
      assert.same({ 1 }, H.cites(item))
    end)
  end

  -- Issue 10: any recorded symptom is "pain or functional impairment" (L2, L33);
  -- the symptoms each sentence names are examples, not a closed list.
  it("any recorded symptom makes a site symptomatic: radiotherapy is offered, never blocked", function()
    local r = with_mets{ { site = "bone", symptoms = { "lymphedema" } },
      { site = "inguinal_nodes", symptoms = { "neurologic" } }, { site = "retroperitoneal", symptoms = { "fracture_risk" } } }
    for i, id in ipairs({ "palliative_rt_bone", "palliative_rt_inguinal", "palliative_rt_retroperitoneal" }) do
      assert.is_table(rec(r, id, i), id)
    end
    assert.equal(0, #r.blocked)
    assert.is_nil(H.warning(r, "no_rt_asymptomatic_sites"))
  end)

  it("a proposed RT to an asymptomatic site is blocked by the kernel", function()
    local r = with_mets({ { site = "retroperitoneal", symptoms = {} } },
      { proposed_orders = { "palliative_rt_retroperitoneal" } })
    assert.equal("rt_symptomatic_sites_only", H.blocked(r, "palliative_rt_retroperitoneal").rule)
  end)

  it("unknown site symptoms: no radiotherapy, the symptoms reported missing with the assessment", function()
    local r = with_mets{ { site = "bone" } }
    assert.is_nil(rec(r, "palliative_rt_bone"))
    local m = H.missing(r, "metastases[0].symptoms")
    assert.is_table(m)
    assert.truthy(m.test:find("pain or functional impairment", 1, true))
  end)
end)

------------------------------------------------------------------------

describe("bone agents (L17 [3], L34 [3])", function()
  it("bone metastasis: zoledronic acid or denosumab, alternatives of one group", function()
    local r = eval(case{ metastases = { { site = "bone", symptoms = {} } } })
    local z, d = rec(r, "zoledronic_acid"), rec(r, "denosumab")
    assert.is_table(z)
    assert.is_table(d)
    assert.equal("bone_agent", z.group)
    assert.equal("bone_agent", d.group)
    assert.same({ 3 }, H.cites(z))
    assert.same({ 3 }, H.cites(d))
  end)

  it("no bone metastasis: no bone agent", function()
    local r = eval(case{ metastases = { { site = "liver", symptoms = {} } } })
    assert.is_nil(rec(r, "zoledronic_acid"))
    assert.is_nil(rec(r, "denosumab"))
  end)
end)

------------------------------------------------------------------------

describe("the rectal primary (L19, L20, L21, L35, L38)", function()
  it("L19: asymptomatic primary: locoregional treatment not indicated", function()
    local r = eval(case())
    assert.is_nil(rec(r, "primary_local_therapy"))
    assert.same({ 1, 3 }, H.cites(H.warning(r, "no_locoregional_primary")))
  end)

  for _, sym in ipairs({ "bleeding", "obstruction", "intractable_pain" }) do
    it("L20: " .. sym .. ": consider stoma, laser ablation or repeat radiotherapy", function()
      local r = eval(case{ primary = { symptoms = { sym } } })
      local item = rec(r, "primary_local_therapy")
      assert.is_table(item)
      assert.equal("consider", item.strength)
      assert.same({ 1, 3 }, H.cites(item))
      assert.truthy(item.text:find("stoma", 1, true))
      assert.is_nil(H.warning(r, "no_locoregional_primary"))
      assert.equal(0, #r.blocked)
    end)
  end

  it("L21: obstruction: stenting, laser or palliative resection only if absolutely necessary", function()
    local r = eval(case{ primary = { symptoms = { "obstruction" } } })
    assert.same({ 1, 5 }, H.cites(H.warning(r, "obstruction_last_resort")))
  end)

  it("L21: bleeding alone gives no obstruction warning", function()
    local r = eval(case{ primary = { symptoms = { "bleeding" } } })
    assert.is_nil(H.warning(r, "obstruction_last_resort"))
  end)

  it("symptoms of the primary unknown: no local therapy, a warning", function()
    local r = eval(case{ primary = { symptoms = UNKNOWN } })
    assert.is_nil(rec(r, "primary_local_therapy"))
    assert.is_table(H.warning(r, "primary_symptoms_unknown"))
  end)

  it("L38: no further surgery: warned, and a proposed resection is blocked", function()
    local r = eval(case{ proposed_orders = { "primary_resection" } })
    assert.same({ 1, 3 }, H.cites(H.warning(r, "no_primary_surgery")))
    assert.equal("primary_resection_needs_symptoms", H.blocked(r, "primary_resection").rule)
  end)

  it("a proposed local therapy of an asymptomatic primary is blocked", function()
    local r = eval(case{ proposed_orders = { "primary_local_therapy" } })
    assert.equal("primary_local_therapy_needs_symptoms", H.blocked(r, "primary_local_therapy").rule)
  end)
end)

------------------------------------------------------------------------

describe("what not to do (L38-L42)", function()
  it("every item of the list is a warning with its citations", function()
    local r = eval(case())
    local want = {
      no_primary_surgery = { 1, 3 },
      no_long_course_crt = { 2 },
      no_egfr_without_ras_wt = { 2, 4 },
      no_oxaliplatin_neuropathy = { 1 },
      no_bev_near_surgery = { 2, 4 },
    }
    for id, c in pairs(want) do
      local w = H.warning(r, id)
      assert.is_table(w, id)
      assert.same(c, H.cites(w), id)
    end
  end)

  it("L39: a proposed long-course chemoradiotherapy is blocked", function()
    local r = eval(case{ proposed_orders = { "long_course_chemoradiation" } })
    assert.equal("no_long_course_crt_metastatic", H.blocked(r, "long_course_chemoradiation").rule)
  end)

  -- L41 neuropathy boundary: grade 1; grade 2 persistent; grade 2 resolved; grade 3 persistent.
  local neuro = {
    { grade = 1, persistent = false, blocked = false },
    { grade = 1, persistent = true, blocked = false },
    { grade = 2, persistent = true, blocked = true },
    { grade = 2, persistent = false, blocked = false },
    { grade = 3, persistent = true, blocked = true },
  }
  for _, n in ipairs(neuro) do
    local name = ("L41: neuropathy grade %d %s: proposed oxaliplatin %s"):format(n.grade,
      n.persistent and "persistent" or "not persistent", n.blocked and "blocked" or "allowed")
    it(name, function()
      -- oxaliplatin alone: FOLFOX itself already progressed in the index case
      local r = eval(case{ neuropathy = { grade = n.grade, persistent = n.persistent }, proposed_orders = { "oxaliplatin" } })
      local b = H.blocked(r, "oxaliplatin")
      if n.blocked then
        assert.is_table(b)
        assert.equal("oxaliplatin_neuropathy", b.rule)
        assert.equal("proposed_order", b.source)
      else
        assert.is_nil(b)
      end
    end)
  end

  it("L41: neuropathy unknown: proposed oxaliplatin fails safe and the grade is reported missing", function()
    local r = eval(case{ neuropathy = { grade = UNKNOWN, persistent = UNKNOWN }, proposed_orders = { "oxaliplatin" } })
    assert.equal("oxaliplatin_neuropathy", H.blocked(r, "oxaliplatin").rule)
    assert.is_table(H.missing(r, "neuropathy.grade"))
  end)

  -- L42 surgery window boundary.
  it("L42: surgery in 42 days: FOLFIRI without bevacizumab", function()
    local r = eval(case{ planned_surgery_in_days = 42 })
    local item = rec(r, "FOLFIRI")
    assert.is_table(item)
    assert.is_true(item.preferred)
    assert.is_nil(H.has_agent(r, "bevacizumab"))
    assert.equal(0, #r.blocked)
    assert.truthy(H.warning(r, "no_bev_near_surgery").text:find("42 days", 1, true))
  end)

  it("L42: surgery in 43 days: FOLFIRI plus bevacizumab", function()
    local r = eval(case{ planned_surgery_in_days = 43 })
    assert.is_table(rec(r, "FOLFIRI+bevacizumab"))
    assert.is_nil(rec(r, "FOLFIRI"))
  end)

  it("L42: surgery in 0 days: no bevacizumab", function()
    local r = eval(case{ planned_surgery_in_days = 0 })
    assert.is_nil(H.has_agent(r, "bevacizumab"))
  end)

  it("L42: a proposed bevacizumab at 42 days is blocked, at 43 allowed", function()
    local r42 = eval(case{ planned_surgery_in_days = 42, proposed_orders = { "bevacizumab" } })
    assert.equal("bev_surgery_window", H.blocked(r42, "bevacizumab").rule)
    local r43 = eval(case{ planned_surgery_in_days = 43, proposed_orders = { "bevacizumab" } })
    assert.is_nil(H.blocked(r43, "bevacizumab"))
  end)

  it("L42: no surgery planned (null): bevacizumab, no confirmation warning", function()
    local r = eval(case{ planned_surgery_in_days = pathwise.null })
    assert.is_table(rec(r, "FOLFIRI+bevacizumab"))
    assert.is_nil(H.warning(r, "bev_surgery_window"))
  end)

  it("L42: planned surgery unknown: bevacizumab stays, with a warning to confirm", function()
    local r = eval(case{ planned_surgery_in_days = UNKNOWN })
    assert.is_table(rec(r, "FOLFIRI+bevacizumab"))
    local w = H.warning(r, "bev_surgery_window")
    assert.is_table(w)
    assert.truthy(w.text:find("42 days", 1, true))
    assert.same({ 2, 4 }, H.cites(w))
  end)
end)

------------------------------------------------------------------------

describe("follow-up and expected outcomes (L36, L44, L45, L46)", function()
  it("L36: CT reassessment after 2-3 cycles (6-9 weeks) on systemic therapy", function()
    local f = H.followup(eval(case()), "ct_reassessment")
    assert.is_table(f)
    assert.truthy(f.text:find("6-9 weeks", 1, true))
    assert.same({ 3 }, H.cites(f))
  end)

  it("L44: median PFS 5-8 months on second-line chemotherapy", function()
    local o = H.outcome(eval(case()), "5-8 months")
    assert.same({ 1, 3 }, H.cites(o))
  end)

  it("L45: pain relief 70-80% when bone RT is given, not otherwise", function()
    assert.same({ 3 }, H.cites(H.outcome(eval(case()), "70-80%")))
    assert.is_nil(H.outcome(eval(case{ metastases = { { site = "bone", symptoms = {} } } }), "70-80%"))
  end)

  it("L46: the goal is quality of life, not cure, on every pathway", function()
    for _, ecog in ipairs({ 1, 4 }) do
      local o = H.outcome(eval(case{ ecog = ecog }), "not cure")
      assert.same({ 1, 3 }, H.cites(o))
    end
  end)
end)

------------------------------------------------------------------------
-- Evidence and citations: each item cites exactly the numbers of the
-- guideline sentences it quotes.
------------------------------------------------------------------------

local function guideline_sentences()
  -- the guideline, verbatim, kept in the repository (docs/README.md); a
  -- missing copy fails the test: it never goes pending
  local path = os.getenv("PW_GUIDELINE") or H.guideline
  local f = assert(io.open(path, "r"), "the guideline text is missing: " .. path)
  local list = {}
  for line in f:lines() do
    local text, nums = line:match("^(.-%.)%s+(%d[%d, ]*)$")
    if text then
      text = text:gsub("^%- ", "")
      local c = {}
      for n in nums:gmatch("%d+") do
        c[#c + 1] = tonumber(n)
      end
      list[#list + 1] = { text = text, cites = c }
    end
  end
  f:close()
  return list
end

describe("evidence and citations", function()
  local scenarios = {
    case(),
    case(molecular("wild_type", "wild_type", "mutant")),
    case{ molecular = { msi = "msi_high" } },
    case{ ecog = 3 },
    case{ ecog = UNKNOWN },
    case{ planned_surgery_in_days = 30 },
    case{ primary = { symptoms = { "bleeding", "obstruction" } } },
    case{ metastases = { { site = "bone", symptoms = { "fracture_risk" } },
      { site = "inguinal_nodes", symptoms = { "skin_breakdown" } },
      { site = "retroperitoneal", symptoms = { "obstruction" } } } },
  }

  it("every item's evidence is guideline sentences and its citations are exactly theirs", function()
    local sentences = guideline_sentences()
    assert.is_true(#sentences > 20, "too few cited sentences read from the guideline")
    for _, facts in ipairs(scenarios) do
      local r = eval(facts, { trace = true })
      for _, item in ipairs(r.recommendations) do
        assert.is_string(item.evidence, item.id)
        local union, seen, covered, k = {}, {}, 0, 0
        for _, s in ipairs(sentences) do
          if item.evidence:find(s.text, 1, true) then
            covered = covered + #s.text
            k = k + 1
            for _, n in ipairs(s.cites) do
              if not seen[n] then
                seen[n] = true
                union[#union + 1] = n
              end
            end
          end
        end
        assert.is_true(k > 0, item.id .. ": evidence quotes no guideline sentence")
        assert.equal(#item.evidence, covered + (k - 1), item.id .. ": evidence is not only guideline sentences")
        table.sort(union)
        assert.same(union, H.cites(item), item.id .. " citations")
      end
    end
  end)

  it("items carry the fact paths they rest on (shown with the trace)", function()
    local r = eval(case(), { trace = true })
    assert.is_true(contains(rec(r, "palliative_rt_bone").facts, "metastases[0].symptoms"))
    assert.is_true(contains(rec(r, "ras_testing").facts, "molecular.kras"))
    assert.is_true(contains(rec(r, "FOLFIRI+bevacizumab").facts, "ecog"))
  end)

  it("every citation anywhere is one of the guideline's references 1-5", function()
    for _, facts in ipairs(scenarios) do
      local r = eval(facts)
      for _, key in ipairs({ "recommendations", "missing", "warnings", "followup", "outcomes" }) do
        for _, item in ipairs(r[key]) do
          -- beyond-guideline warnings name their source instead of a citation
          assert.is_true(#item.citations > 0 or type(item.beyond_guideline) == "string", key)
          for _, n in ipairs(item.citations) do
            assert.is_true(n >= 1 and n <= 5, key .. " cites " .. tostring(n))
          end
        end
      end
      assert_disjoint(r)
    end
  end)
end)

------------------------------------------------------------------------

local all_text   -- defined with the issue 10 tests below

describe("example case files", function()
  local expect = {
    ras_wild_type = function(r)
      assert.is_table(rec(r, "FOLFIRI+cetuximab"))
      assert.is_table(rec(r, "FOLFIRI+panitumumab"))
    end,
    ras_mutant = function(r)
      assert.is_nil(H.has_agent(r, "cetuximab"))
      assert.is_nil(H.has_agent(r, "panitumumab"))
    end,
    braf_v600e = function(r)
      assert.is_table(rec(r, "encorafenib+cetuximab"))
    end,
    msi_high = function(r)
      assert.equal("immunotherapy", r.pathway)
    end,
    ecog_3 = function(r)
      assert.equal("best_supportive_care", r.pathway)
      no_anticancer_agent(r)
    end,
    ecog_unknown = function(r)
      assert.equal("needs_assessment", r.pathway)
    end,
    neuropathy_grade2_persistent = function(r)
      assert.equal("oxaliplatin_neuropathy", H.blocked(r, "FOLFOX").rule)
    end,
    surgery_in_30_days = function(r)
      assert.is_table(rec(r, "FOLFIRI"))
      assert.equal("bev_surgery_window", H.blocked(r, "bevacizumab").rule)
    end,
    symptomatic_primary = function(r)
      assert.is_table(rec(r, "primary_local_therapy"))
    end,
    kras_mutant_proposed_cetuximab = function(r)
      assert.equal("egfr_requires_ras_wt", H.blocked(r, "cetuximab").rule)
    end,
    bone_neurologic_cord_compression = function(r)
      assert.equal("spinal_cord_compression", r.warnings[1].id)
      assert.is_table(rec(r, "palliative_rt_bone", 1))
    end,
    colon_right_unresected_bleeding = function(r)
      assert.is_table(H.warning(r, "anti_egfr_right_sided"))
      assert.is_table(H.warning(r, "anti_vegf_perforation_bleeding"))
      assert.is_table(H.warning(r, "symptomatic_site_specialist_review"))
      assert.is_nil(all_text(r):find("rectal primary", 1, true))
    end,
    capox_first_line = function(r)
      assert.equal("second_line_systemic", r.pathway)
      assert.truthy(r.applicability:find("CAPOX", 1, true))
    end,
    second_line_ongoing = function(r)
      assert.truthy(rec(r, "FOLFIRI+bevacizumab").text:find("already ongoing", 1, true))
    end,
    symptomatic_brain_and_peritoneum = function(r)
      assert.is_table(H.warning(r, "symptomatic_site_specialist_review"))
      assert.is_nil(rec(r, "palliative_rt_bone"))
    end,
    beyond_guideline_orders = function(r)
      assert.equal("encorafenib_needs_anti_egfr", H.blocked(r, "encorafenib").rule)
      assert.equal("oxaliplatin_neuropathy_grade_3_4", H.blocked(r, "oxaliplatin").rule)
      assert.equal("single_bone_agent", H.blocked(r, "denosumab").rule)
      assert.is_nil(H.blocked(r, "FOLFIRI"))
    end,
    prior_rt_unrecognised_site = function(r)
      assert.is_nil(rec(r, "palliative_rt_inguinal"))
      assert.is_table(H.missing(r, "prior_radiation_sites"))
    end,
    symptomatic_nodes_prior_groin_rt = function(r)
      assert.is_table(rec(r, "palliative_rt_bone"))
      assert.is_table(rec(r, "palliative_rt_retroperitoneal"))
      assert.is_nil(rec(r, "palliative_rt_inguinal"))
      assert.is_table(H.warning(r, "groin_reirradiation_review"))
    end,
  }
  for name, check in pairs(expect) do
    it(name .. ".json", function()
      local r = eval(H.case_file(name))
      assert.is_true(r.applicable)
      check(r)
      assert_disjoint(r)
    end)
  end
end)

------------------------------------------------------------------------

describe("a rogue protocol is still bound by the safety kernel", function()
  local rogue = [[
local function cite() return { 1 } end
return {
  id = "rogue", version = "0.0.1", title = "rogue test protocol",
  references = { [1] = "none" },
  applies = function(facts, out) return true end,
  evaluate = function(facts, out)
    out.pathway("second_line_systemic", { rationale = "rogue", citations = cite() })
    out.recommend{ id = "cetuximab", text = "cetuximab for everyone", citations = cite() }
    out.recommend{ id = "FOLFIRI+panitumumab", text = "anti-EGFR regimen", citations = cite() }
    out.recommend{ id = "bevacizumab+cetuximab", text = "both biologics", citations = cite() }
    out.recommend{ id = "palliative_rt_retroperitoneal", target = 3, text = "RT to a silent site", citations = cite() }
    out.recommend{ id = "long_course_chemoradiation", text = "long course", citations = cite() }
  end,
}
]]

  local e
  setup(function()
    e = pathwise.new{ source = rogue, name = "rogue.lua" }
  end)

  it("a protocol that recommends cetuximab for a KRAS-mutant patient sees it blocked", function()
    local r, err = e:eval(H.json(case(molecular("mutant", "wild_type"))))
    assert.is_table(r, err)
    local b = H.blocked(r, "cetuximab")
    assert.is_table(b)
    assert.equal("egfr_requires_ras_wt", b.rule)
    assert.equal("protocol", b.source)
    assert.is_string(b.reason)
    assert.is_nil(rec(r, "cetuximab"))
    assert.equal("egfr_requires_ras_wt", H.blocked(r, "FOLFIRI+panitumumab").rule)
    assert.is_nil(H.has_agent(r, "cetuximab"))
    assert.is_nil(H.has_agent(r, "panitumumab"))
  end)

  it("blocks its other violations too", function()
    local r = e:eval(H.json(case(molecular("wild_type", "wild_type"))))
    assert.equal("single_biologic", H.blocked(r, "bevacizumab+cetuximab").rule)
    assert.equal("rt_symptomatic_sites_only", H.blocked(r, "palliative_rt_retroperitoneal").rule)
    assert.equal("no_long_course_crt_metastatic", H.blocked(r, "long_course_chemoradiation").rule)
    assert_disjoint(r)
  end)

  it("at ECOG 3 every anticancer item is blocked", function()
    local r = e:eval(H.json(case{ ecog = 3, molecular = { kras = "wild_type", nras = "wild_type" } }))
    no_anticancer_agent(r)
    assert.equal("ecog_gate", H.blocked(r, "cetuximab").rule)
  end)
end)

------------------------------------------------------------------------

describe("the institution variant (examples/local-protocol)", function()
  local function leval(facts)
    return eval(facts, nil, H.local_protocol)
  end

  it("loads with its own id and passes its examples", function()
    local e = H.engine(H.local_protocol)
    local info = e:info()
    assert.equal("mrc_second_line_local", info.id)
    assert.are_not.equal(H.engine():info().sha256, info.sha256)
    local ok, report = e:check()
    assert.is_true(ok, report)
  end)

  it("gives a single 8 Gy fraction for uncomplicated bone pain", function()
    local item = rec(leval(case()), "palliative_rt_bone")
    assert.truthy(item.text:find("8 Gy", 1, true))
    assert.is_nil(item.text:find("20-30 Gy", 1, true))
  end)

  it("keeps 20-30 Gy for a bone site at risk of fracture", function()
    local r = leval(case{ metastases = { { site = "bone", symptoms = { "pain", "fracture_risk" } } } })
    assert.truthy(rec(r, "palliative_rt_bone").text:find("20-30 Gy", 1, true))
  end)

  it("prefers panitumumab as the anti-EGFR partner for RAS wild type", function()
    local r = leval(case(molecular("wild_type", "wild_type")))
    assert.is_table(rec(r, "FOLFIRI+panitumumab"))
    assert.is_nil(rec(r, "FOLFIRI+cetuximab"))
    assert.is_table(rec(r, "FOLFIRI+bevacizumab"))
  end)

  it("is still bound by the kernel: KRAS-mutant proposed cetuximab is blocked", function()
    local r = leval(case{ molecular = { kras = "mutant" }, proposed_orders = { "cetuximab", "panitumumab" } })
    assert.equal("egfr_requires_ras_wt", H.blocked(r, "cetuximab").rule)
    assert.equal("egfr_requires_ras_wt", H.blocked(r, "panitumumab").rule)
  end)

  it("is still bound by the kernel: ECOG 3 gets no anticancer therapy", function()
    local r = leval(case{ ecog = 3, proposed_orders = { "FOLFIRI" } })
    assert.equal("best_supportive_care", r.pathway)
    no_anticancer_agent(r)
    assert.equal("ecog_gate", H.blocked(r, "FOLFIRI").rule)
  end)
end)

------------------------------------------------------------------------
-- Issue 10: clinical safety round 2. Each class on both sides of its
-- boundary, through the real engine (protocol and kernel together).
------------------------------------------------------------------------

all_text = function(r)
  local function str(v)
    return type(v) == "string" and v or ""
  end
  local parts = { str(r.applicability), str(r.pathway_detail.rationale) }
  for _, key in ipairs({ "recommendations", "blocked", "warnings", "followup", "outcomes" }) do
    for _, item in ipairs(r[key]) do
      parts[#parts + 1] = str(item.text) .. " " .. str(item.rationale) .. " " .. str(item.reason)
    end
  end
  return table.concat(parts, "\n")
end

local function text_report(facts)
  local _, e = eval(facts)
  return e:text()
end

describe("issue 10: symptoms mean pain or functional impairment (L2, L33)", function()
  for _, site in ipairs({ "bone", "inguinal_nodes", "retroperitoneal" }) do
    for _, sym in ipairs({ "pain", "fracture_risk", "skin_breakdown", "lymphedema", "obstruction", "neurologic" }) do
      it(site .. " with " .. sym .. " is symptomatic: RT offered, a proposed RT not blocked", function()
        local f = case{ metastases = { { site = site, symptoms = { sym } } } }
        local action = ({ bone = "palliative_rt_bone", inguinal_nodes = "palliative_rt_inguinal",
          retroperitoneal = "palliative_rt_retroperitoneal" })[site]
        f.proposed_orders = { action }
        local r = eval(f)
        assert.is_table(rec(r, action, 1), action)
        assert.is_nil(H.blocked(r, action))
        assert.is_nil(H.warning(r, "no_rt_asymptomatic_sites"))
      end)
    end
    it(site .. " with no symptom is asymptomatic: no RT, a proposed RT blocked", function()
      local action = ({ bone = "palliative_rt_bone", inguinal_nodes = "palliative_rt_inguinal",
        retroperitoneal = "palliative_rt_retroperitoneal" })[site]
      local r = eval(case{ metastases = { { site = site, symptoms = {} } }, proposed_orders = { action } })
      assert.is_nil(rec(r, action))
      assert.equal("rt_symptomatic_sites_only", H.blocked(r, action).rule)
      assert.is_table(H.warning(r, "no_rt_asymptomatic_sites"))
    end)
  end

  it("bone with neurological symptoms: an urgent cord-compression warning, first in JSON and in the text", function()
    local f = case{ metastases = { { site = "liver", symptoms = {} }, { site = "bone", symptoms = { "neurologic" } } } }
    local r = eval(f)
    local w = r.warnings[1]
    assert.equal("spinal_cord_compression", w.id)
    assert.equal("urgent", w.level)
    assert.truthy(w.text:find("#2", 1, true))
    assert.truthy(w.text:find("MRI", 1, true))
    assert.is_string(w.beyond_guideline)
    assert.is_table(rec(r, "palliative_rt_bone", 2))
    local text = text_report(f)
    local urgent, applies = text:find("URGENT", 1, true), text:find("Protocol applies", 1, true)
    assert.is_true(urgent ~= nil and urgent < applies)
  end)

  it("bone pain without neurological symptoms: no cord-compression warning, no URGENT section", function()
    local f = case{ metastases = { { site = "bone", symptoms = { "pain", "fracture_risk" } } } }
    assert.is_nil(H.warning(eval(f), "spinal_cord_compression"))
    assert.is_nil(text_report(f):find("URGENT", 1, true))
  end)

  for _, site in ipairs({ "brain", "liver", "lung", "peritoneum", "other" }) do
    it("symptomatic " .. site .. " site: a warning naming it and its symptoms, sent to specialist review", function()
      local r = eval(case{ metastases = { { site = "bone", symptoms = {} }, { site = site, symptoms = { "pain", "neurologic" } } } })
      local w = H.warning(r, "symptomatic_site_specialist_review")
      assert.is_table(w)
      assert.truthy(w.text:find("#2", 1, true))
      assert.truthy(w.text:find("pain, neurological symptoms", 1, true))
      assert.truthy(w.text:find("multidisciplinary", 1, true))
      if site ~= "other" then
        assert.truthy(w.text:find(site == "peritoneum" and "peritoneal" or site, 1, true))
      end
    end)
    it("asymptomatic " .. site .. " site: no specialist-review warning", function()
      local r = eval(case{ metastases = { { site = site, symptoms = {} } } })
      assert.is_nil(H.warning(r, "symptomatic_site_specialist_review"))
    end)
  end

  it("anti-VEGF with a bleeding primary: perforation and bleeding warning, beyond the guideline", function()
    local r = eval(case{ primary = { symptoms = { "bleeding" } } })
    assert.is_table(rec(r, "FOLFIRI+bevacizumab"))
    local w = H.warning(r, "anti_vegf_perforation_bleeding")
    assert.is_table(w)
    assert.truthy(w.text:find("perforation", 1, true))
    assert.is_string(w.beyond_guideline)
  end)

  it("anti-VEGF with peritoneal obstruction: the same warning; peritoneal pain: none", function()
    assert.is_table(H.warning(eval(case{ metastases = { { site = "peritoneum", symptoms = { "obstruction" } } } }),
      "anti_vegf_perforation_bleeding"))
    assert.is_nil(H.warning(eval(case{ metastases = { { site = "peritoneum", symptoms = { "pain" } } } }),
      "anti_vegf_perforation_bleeding"))
  end)

  it("no bevacizumab (surgery in 30 days): no perforation warning even with a bleeding primary", function()
    local r = eval(case{ planned_surgery_in_days = 30, primary = { symptoms = { "bleeding" } } })
    assert.is_nil(H.has_agent(r, "bevacizumab"))
    assert.is_nil(H.warning(r, "anti_vegf_perforation_bleeding"))
  end)
end)

describe("issue 10: a consistent treatment history", function()
  local function hist(list, extra)
    local f = case(extra)
    f.prior_regimens = list
    return eval(f)
  end

  it("FOLFIRI already progressed (no line recorded): not applicable, FOLFIRI never recommended", function()
    local r = hist{ { name = "FOLFOX", line = 1, outcome = "progression" }, { name = "FOLFIRI", outcome = "progression" } }
    assert.is_false(r.applicable)
    assert.truthy(r.applicability:find("FOLFIRI", 1, true))
    assert.is_nil(H.has_agent(r, "irinotecan"))
  end)

  it("FOLFIRI not tolerated: not applicable either", function()
    local r = hist{ { name = "FOLFOX", line = 1, outcome = "progression" }, { name = "FOLFIRI+bevacizumab", line = 2, outcome = "intolerance" } }
    assert.is_false(r.applicable)
  end)

  it("second-line FOLFIRI+bevacizumab ongoing: continue it, nothing 'started now'", function()
    local r = hist{ { name = "FOLFOX", line = 1, outcome = "progression" }, { name = "FOLFIRI+bevacizumab", line = 2, outcome = "ongoing" } }
    assert.is_true(r.applicable)
    local item = rec(r, "FOLFIRI+bevacizumab")
    assert.truthy(item.text:find("already ongoing", 1, true))
    assert.is_nil(all_text(r):find("started now", 1, true))
    assert.truthy(r.pathway_detail.rationale:find("ongoing", 1, true))
  end)

  it("FOLFIRI ongoing: bevacizumab is added to it, not a new start", function()
    local r = hist{ { name = "FOLFOX", line = 1, outcome = "progression" }, { name = "FOLFIRI", line = 2, outcome = "ongoing" } }
    local item = rec(r, "FOLFIRI+bevacizumab")
    assert.truthy(item.text:find("add the rest", 1, true))
    assert.is_nil(item.text:find("started now", 1, true))
  end)

  it("a new second line is still 'started now' (the other side)", function()
    assert.truthy(rec(eval(case()), "FOLFIRI+bevacizumab").text:find("started now", 1, true))
  end)

  it("MSI-high after progression on pembrolizumab: pembrolizumab not recommended, said why", function()
    local r = hist({ { name = "FOLFOX", line = 1, outcome = "progression" }, { name = "pembrolizumab", outcome = "progression" } },
      { molecular = { msi = "msi_high" } })
    assert.is_nil(rec(r, "pembrolizumab"))
    assert.is_table(rec(r, "nivolumab"))
    assert.is_table(H.warning(r, "regimen_already_failed"))
    assert.equal(0, #r.blocked)
  end)

  for _, name in ipairs({ "FOLFOX+bevacizumab", "FOLFOX+cetuximab", "mFOLFOX6+panitumumab", "CAPOX", "XELOX", "CAPOX+bevacizumab" }) do
    it("first-line " .. name .. " progressed: first-line oxaliplatin, the guideline applies", function()
      local r = hist{ { name = name, line = 1, outcome = "progression" } }
      assert.is_true(r.applicable)
      assert.equal("second_line_systemic", r.pathway)
      assert.truthy(r.pathway_detail.rationale:find(name, 1, true))
    end)
  end

  it("CAPOX is read as FOLFOX's equivalent, and the report says so", function()
    local r = hist{ { name = "CAPOX", line = 1, outcome = "progression" } }
    assert.truthy(r.applicability:find("CAPOX", 1, true))
    assert.truthy(r.applicability:find("oxaliplatin", 1, true))
  end)

  it("an unrecognised first-line name: cannot tell, with a missing fact; never a confident no", function()
    local r = hist{ { name = "Oxali-Cape regimen", line = 1, outcome = "progression" } }
    assert.is_true(null(r.applicable))
    assert.truthy(H.missing(r, "prior_regimens").reason:find("Oxali-Cape regimen", 1, true))
  end)

  it("a first-line regimen with no name: cannot tell, said so", function()
    local r = hist{ { line = 1, outcome = "progression" } }
    assert.is_true(null(r.applicable))
    assert.truthy(H.missing(r, "prior_regimens").reason:find("name not recorded", 1, true))
  end)

  it("a recognised non-oxaliplatin first line (FOLFIRI): a confident no", function()
    assert.is_false(hist{ { name = "FOLFIRI", line = 1, outcome = "progression" } }.applicable)
  end)

  it("first-line FOLFOXIRI: not applicable, because irinotecan was already given", function()
    local r = hist{ { name = "FOLFOXIRI", line = 1, outcome = "progression" } }
    assert.is_false(r.applicable)
    assert.truthy(r.applicability:lower():find("irinotecan", 1, true))
  end)

  it("metastatic false with metastases listed: cannot tell, contradiction warned", function()
    local r = eval(case{ metastatic = false })
    assert.is_true(null(r.applicable))
    assert.is_table(H.missing(r, "metastatic"))
    assert.is_table(H.warning(r, "facts_contradiction"))
  end)

  it("line 2 with no line 1: cannot tell, contradiction warned", function()
    local r = hist{ { name = "FOLFOX", line = 2, outcome = "progression" } }
    assert.is_true(null(r.applicable))
    assert.is_table(H.missing(r, "prior_regimens"))
    assert.is_table(H.warning(r, "facts_contradiction"))
  end)

  it("line 1 ongoing with a line 2 listed: cannot tell, contradiction warned", function()
    local r = hist{ { name = "FOLFOX", line = 1, outcome = "ongoing" }, { name = "FOLFIRI", line = 2, outcome = "ongoing" } }
    assert.is_true(null(r.applicable))
    assert.is_table(H.missing(r, "prior_regimens"))
    assert.is_table(H.warning(r, "facts_contradiction"))
  end)

  it("lines 1 and 2 both recorded: no contradiction", function()
    local r = hist{ { name = "FOLFOX", line = 1, outcome = "progression" }, { name = "FOLFIRI", line = 2, outcome = "ongoing" } }
    assert.is_nil(H.warning(r, "facts_contradiction"))
  end)
end)

describe("issue 10: say only what the facts support", function()
  it("an unresected colon primary: no 'resected', 'irradiated' or 'rectal' claims", function()
    local r = eval(case{ primary = { site = "colon_left", resected = false, prior_pelvic_radiation = false,
      symptoms = { "obstruction" } } })
    local text = all_text(r):lower()
    assert.is_nil(text:find("resected and irradiated", 1, true))
    assert.is_nil(text:find("surgery and radiation", 1, true))
    assert.is_nil(text:find("rectal primary", 1, true))
    assert.is_nil(text:find("endorectal", 1, true))
    assert.is_nil(text:find("repeat radiotherapy", 1, true))
    assert.truthy(text:find("colon primary", 1, true))
    assert.truthy(r.applicability:find("Colon primary", 1, true))
  end)

  it("a resected, irradiated rectal primary keeps the guideline's words", function()
    local r = eval(case{ primary = { symptoms = { "obstruction" } } })
    assert.truthy(H.warning(r, "no_primary_surgery").text:find("prior surgery and pelvic radiation", 1, true))
    assert.truthy(H.warning(r, "obstruction_last_resort").text:find("endorectal", 1, true))
    assert.truthy(rec(r, "primary_local_therapy").text:find("repeat radiotherapy", 1, true))
  end)

  it("the population facts absent: reported missing, the systemic decision still made", function()
    local r = eval(case{ primary = { site = UNKNOWN, resected = UNKNOWN, prior_pelvic_radiation = UNKNOWN } })
    for _, f in ipairs({ "primary.site", "primary.resected", "primary.prior_pelvic_radiation" }) do
      assert.is_table(H.missing(r, f), f)
    end
    assert.is_true(r.applicable)
    assert.is_nil(all_text(r):find("prior surgery", 1, true))
  end)

  it("no 'FOLFIRI plus biologics' outcome when no biologic is recommended", function()
    local r = eval(case{ planned_surgery_in_days = 30 })
    assert.is_nil(H.outcome(r, "plus biologics"))
    assert.is_table(H.outcome(eval(case{ planned_surgery_in_days = 30,
      molecular = { kras = "wild_type", nras = "wild_type" } }), "plus biologics"))
    assert.is_table(H.outcome(eval(case()), "plus biologics"))
  end)

  it("'need not wait for RAS' only when FOLFIRI plus bevacizumab is recommended now", function()
    assert.truthy(rec(eval(case()), "ras_testing").rationale:find("need not wait", 1, true))
    assert.is_nil(rec(eval(case{ molecular = { msi = "msi_high" } }), "ras_testing").rationale:find("need not wait", 1, true))
    assert.is_nil(rec(eval(case{ ecog = UNKNOWN }), "ras_testing").rationale:find("need not wait", 1, true))
    assert.is_nil(rec(eval(case{ planned_surgery_in_days = 10 }), "ras_testing").rationale:find("need not wait", 1, true))
  end)

  it("a proposed order no rule blocks is 'no safety rule violated', never 'allowed'", function()
    local f = case{ proposed_orders = { "FOLFIRI", "long_course_chemoradiation" } }
    local r = eval(f)
    local status = {}
    for _, o in ipairs(r.orders) do
      status[o.id] = o.status
    end
    assert.equal("no_rule_violated", status.FOLFIRI)
    assert.equal("blocked", status.long_course_chemoradiation)
    local text = text_report(f)
    assert.truthy(text:find("FOLFIRI: no safety rule violated", 1, true))
    assert.is_nil(text:find("allowed", 1, true))
  end)
end)

describe("issue 10: unknowns are reported, never guessed", function()
  it("metastatic sites unknown: a missing fact with the assessment", function()
    local m = H.missing(eval(case{ metastases = UNKNOWN }), "metastases")
    assert.is_table(m)
    assert.truthy(m.test:find("imaging", 1, true))
  end)

  it("planned surgery unknown with bevacizumab: a missing fact; none planned (null): not missing", function()
    assert.is_table(H.missing(eval(case{ planned_surgery_in_days = UNKNOWN }), "planned_surgery_in_days"))
    assert.is_nil(H.missing(eval(case()), "planned_surgery_in_days"))
  end)

  local inguinal = { { site = "inguinal_nodes", symptoms = { "pain" } } }
  for _, sites in ipairs({ { "left groin" }, { "right inguinal" }, { "bilateral groin" }, { "Groin" } }) do
    it("prior radiation '" .. sites[1] .. "' is the groin: no 50 Gy course, review", function()
      local r = eval(case{ metastases = inguinal, prior_radiation_sites = sites })
      assert.is_nil(rec(r, "palliative_rt_inguinal"))
      assert.truthy(H.warning(r, "groin_reirradiation_review").text:find("Prior groin radiation", 1, true))
    end)
  end

  for _, site in ipairs({ "mantle field", "left hemipelvis", "pelvis and nodes" }) do
    it("unrecognised prior radiation site '" .. site .. "': possibly the groin, review, reported", function()
      local r = eval(case{ metastases = inguinal, prior_radiation_sites = { "pelvis", site } })
      assert.is_nil(rec(r, "palliative_rt_inguinal"))
      assert.truthy(H.warning(r, "groin_reirradiation_review").text:find("may include the groin", 1, true))
      assert.is_table(H.missing(r, "prior_radiation_sites"))
    end)
  end

  for _, sites in ipairs({ { "pelvis" }, { "left pelvis", "spine" }, {} }) do
    it("prior radiation " .. (sites[1] or "none") .. ": the 50 Gy inguinal course is offered", function()
      local r = eval(case{ metastases = inguinal, prior_radiation_sites = sites })
      assert.truthy(rec(r, "palliative_rt_inguinal").text:find("50 Gy", 1, true))
    end)
  end
end)

describe("issue 10: beyond the guideline, labelled as such", function()
  it("encorafenib alone is blocked with its source, distinct from citations 1-5", function()
    local r = eval(case{ molecular = { kras = "wild_type", nras = "wild_type", braf_v600e = "mutant", msi = "mss" },
      proposed_orders = { "encorafenib" } })
    local b = H.blocked(r, "encorafenib")
    assert.equal("encorafenib_needs_anti_egfr", b.rule)
    assert.equal(0, #b.citations)
    assert.truthy(b.beyond_guideline:find("BEACON", 1, true))
    assert.is_table(rec(r, "encorafenib+cetuximab"))
  end)

  it("the text report labels beyond-guideline blocks and warnings", function()
    local text = text_report(case{ molecular = { kras = "wild_type", nras = "wild_type", braf_v600e = "mutant", msi = "mss" },
      proposed_orders = { "encorafenib" } })
    assert.truthy(text:find("encorafenib_needs_anti_egfr [beyond the guideline]", 1, true))
    assert.truthy(text:find("Source: BEACON CRC", 1, true))
  end)

  it("BRAF V600E: the anti-EGFR alternatives without encorafenib are warned about", function()
    local r = eval(case{ molecular = { kras = "wild_type", nras = "wild_type", braf_v600e = "mutant", msi = "mss" } })
    local w = H.warning(r, "anti_egfr_braf_v600e")
    assert.truthy(w.text:find("FOLFIRI+cetuximab", 1, true))
    assert.is_nil(w.text:find("encorafenib+cetuximab", 1, true))
    assert.is_nil(H.warning(eval(case{ molecular = { kras = "wild_type", nras = "wild_type", braf_v600e = "wild_type", msi = "mss" } }),
      "anti_egfr_braf_v600e"))
  end)

  it("right-sided primary with anti-EGFR alternatives: warned; left-sided: not", function()
    local m = { kras = "wild_type", nras = "wild_type", braf_v600e = "wild_type", msi = "mss" }
    assert.is_table(H.warning(eval(case{ molecular = m, primary = { site = "colon_right" } }), "anti_egfr_right_sided"))
    assert.is_nil(H.warning(eval(case{ molecular = m, primary = { site = "colon_left" } }), "anti_egfr_right_sided"))
  end)

  for _, o in ipairs({ { { "pembrolizumab", "nivolumab" }, "single_pd1_inhibitor", { molecular = { msi = "msi_high" } } },
    { { "zoledronic_acid", "denosumab" }, "single_bone_agent", {} } }) do
    it(o[2] .. ": both proposed together are blocked, whichever comes first", function()
      for _, orders in ipairs({ o[1], { o[1][2], o[1][1] } }) do
        local f = case(o[3])
        f.proposed_orders = orders
        local r = eval(f)
        assert.equal(o[2], H.blocked(r, orders[1]).rule)
        assert.equal(o[2], H.blocked(r, orders[2]).rule)
      end
    end)
  end

  it("oxaliplatin at grade 3 neuropathy that is not persistent: blocked beyond the guideline", function()
    local r = eval(case{ neuropathy = { grade = 3, persistent = false }, proposed_orders = { "oxaliplatin" } })
    assert.equal("oxaliplatin_neuropathy_grade_3_4", H.blocked(r, "oxaliplatin").rule)
    r = eval(case{ neuropathy = { grade = 2, persistent = false }, proposed_orders = { "oxaliplatin" } })
    assert.is_nil(H.blocked(r, "oxaliplatin"))
  end)
end)

describe("issue 10: the same facts, the same answer", function()
  local function protocol(order)
    return ([[
local function cite() return { 1 } end
return {
  id = "order", version = "0", title = "order test", references = { [1] = "none" },
  applies = function() return true end,
  evaluate = function(facts, out)
    out.pathway("p", { rationale = "r", citations = cite() })
    for _, id in ipairs(%s) do
      out.recommend{ id = id, text = id, citations = cite() }
    end
  end,
}]]):format(order)
  end

  it("two biologics not offered as alternatives are both blocked, in either order", function()
    local f = H.json(case{ molecular = { kras = "wild_type", nras = "wild_type" }, planned_surgery_in_days = pathwise.null })
    for _, order in ipairs({ '{ "FOLFIRI+bevacizumab", "FOLFIRI+cetuximab" }', '{ "FOLFIRI+cetuximab", "FOLFIRI+bevacizumab" }' }) do
      local e = pathwise.new{ source = protocol(order), name = "order.lua" }
      local r = assert(e:eval(f))
      assert.equal(0, #r.recommendations)
      assert.equal("single_biologic", H.blocked(r, "FOLFIRI+bevacizumab").rule)
      assert.equal("single_biologic", H.blocked(r, "FOLFIRI+cetuximab").rule)
    end
  end)

  it("pairs and next visit keys in one fixed order; other key types are refused", function()
    local src = [[
local seen = {}
local t = { zeta = 1, alpha = 2, [3] = "c", [1] = "a", mid = 3, [true] = 4, [2.5] = 5 }
for k in pairs(t) do seen[#seen + 1] = tostring(k) end
local k, order2 = nil, {}
repeat k = next(t, k); if k ~= nil then order2[#order2 + 1] = tostring(k) end until k == nil
local bad = pcall(function() for _ in pairs({ [{}] = 1 }) do end end)
local addr = tostring({}) .. " " .. tostring(pairs) .. " " .. string.format("%s", {})
local ok_p = pcall(string.format, "%p", {})
local weak = pcall(setmetatable, {}, { __mode = "k" })
local text = table.concat(seen, ",") .. "|" .. table.concat(order2, ",") .. "|" .. tostring(bad) .. "|" .. addr ..
  "|" .. tostring(ok_p) .. "|" .. tostring(weak)
return {
  id = "pairs", version = "0", title = "pairs", references = { [1] = "none" },
  applies = function() return true end,
  evaluate = function(facts, out) out.pathway("p", { rationale = text, citations = { 1 } }) end,
}]]
    local e = pathwise.new{ source = src, name = "pairs.lua" }
    local r = assert(e:eval(H.json(case())))
    assert.equal("1,2.5,3,alpha,mid,zeta,true|1,2.5,3,alpha,mid,zeta,true|false|table function table|false|false",
      r.pathway_detail.rationale)
  end)
end)

describe("issue 10: an institution turns a beyond-guideline warning into a block (plugin)", function()
  local plugin = H.root .. "/plugins/local_right_sided_egfr_block.lua"
  local m = { kras = "wild_type", nras = "wild_type", braf_v600e = "wild_type", msi = "mss" }

  it("right-sided primary: the anti-EGFR alternatives are blocked, bevacizumab stays", function()
    local e = pathwise.new{ protocol = H.protocol, plugins = { plugin } }
    local r = assert(e:eval(H.json(case{ molecular = m, primary = { site = "colon_right" } })))
    assert.equal("local_right_sided_egfr/no_anti_egfr_right_sided", H.blocked(r, "FOLFIRI+cetuximab").rule)
    assert.equal("local_right_sided_egfr/no_anti_egfr_right_sided", H.blocked(r, "FOLFIRI+panitumumab").rule)
    assert.is_table(rec(r, "FOLFIRI+bevacizumab"))
  end)

  it("left-sided primary: nothing blocked", function()
    local e = pathwise.new{ protocol = H.protocol, plugins = { plugin } }
    local r = assert(e:eval(H.json(case{ molecular = m, primary = { site = "colon_left" } })))
    assert.equal(0, #r.blocked)
    assert.is_table(rec(r, "FOLFIRI+cetuximab"))
  end)
end)

describe("issue 10: with the facts contract (unknown everywhere, colon, spine)", function()
  it('"ecog": "unknown" is unknown: needs assessment, ECOG reported missing', function()
    local r = eval(case{ ecog = "unknown" })
    assert.equal("needs_assessment", r.pathway)
    assert.is_table(H.missing(r, "ecog"))
  end)

  it('"planned_surgery_in_days": "unknown": a missing fact, bevacizumab with the confirmation warning', function()
    local r = eval(case{ planned_surgery_in_days = "unknown" })
    assert.is_table(H.missing(r, "planned_surgery_in_days"))
    assert.is_table(H.warning(r, "bev_surgery_window"))
  end)

  it('"metastases": "unknown": a missing fact with what to assess, no RT, no bone agent', function()
    local r = eval(case{ metastases = "unknown" })
    assert.is_table(H.missing(r, "metastases"))
    assert.is_nil(rec(r, "palliative_rt_bone"))
    assert.is_nil(rec(r, "zoledronic_acid"))
  end)

  it('"prior_radiation_sites": "unknown" with a symptomatic groin: no 50 Gy course, reported missing', function()
    local r = eval(case{ metastases = { { site = "inguinal_nodes", symptoms = { "pain" } } }, prior_radiation_sites = "unknown" })
    assert.is_nil(rec(r, "palliative_rt_inguinal"))
    assert.is_table(H.missing(r, "prior_radiation_sites"))
  end)

  it('primary.site "colon": colon wording, in scope; "non_colorectal": not applicable', function()
    local r = eval(case{ primary = { site = "colon", symptoms = { "bleeding" } } })
    assert.is_true(r.applicable)
    assert.truthy(rec(r, "primary_local_therapy").text:find("colon primary", 1, true))
    assert.is_nil(H.warning(r, "anti_egfr_right_sided"))
    local n = eval(case{ primary = { site = "non_colorectal" } })
    assert.is_false(n.applicable)
    assert.truthy(n.applicability:find("not colorectal", 1, true))
    assert.equal(0, #n.recommendations)
  end)

  it("spine with fracture risk: urgent cord-compression warning; not in the spine: none; unknown: asked", function()
    local r = eval(case{ metastases = { { site = "bone", spine = true, symptoms = { "fracture_risk" } } } })
    assert.equal("spinal_cord_compression", r.warnings[1].id)
    assert.is_table(rec(r, "palliative_rt_bone", 1))
    r = eval(case{ metastases = { { site = "bone", spine = false, symptoms = { "fracture_risk" } } } })
    assert.is_nil(H.warning(r, "spinal_cord_compression"))
    assert.is_nil(H.missing(r, "metastases[0].spine"))
    r = eval(case{ metastases = { { site = "bone", symptoms = { "fracture_risk" } } } })
    assert.is_nil(H.warning(r, "spinal_cord_compression"))
    assert.is_table(H.missing(r, "metastases[0].spine"))
  end)
end)
