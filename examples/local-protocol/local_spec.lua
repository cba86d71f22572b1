-- local_spec.lua: the institution's own busted spec for its extension and
-- its 56-day bevacizumab rule. It needs only the pathwise Lua module on
-- LUA_CPATH (scripts/README.md, "Testing a local protocol"):
--   LUA_CPATH="build/lua/?.so;;" busted examples/local-protocol/local_spec.lua
local pathwise = require "pathwise"
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local LOCAL, BEV56 = here .. "/mrc_second_line_local.lua", here .. "/local_bev_surgery_56d.lua"

local function patient(changes)
  local f = { patient_id = "local-spec", ecog = 1, metastatic = true,
    primary = { site = "rectum", resected = true, prior_pelvic_radiation = true },
    prior_regimens = { { name = "FOLFOX", line = 1, outcome = "progression" } },
    neuropathy = { grade = 1, persistent = false }, prior_radiation_sites = { "pelvis" },
    molecular = { kras = "wild_type", nras = "wild_type", braf_v600e = "wild_type", msi = "mss" },
    metastases = { { site = "bone", symptoms = { "pain" } } } }
  for k, v in pairs(changes or {}) do f[k] = v end
  return f
end

local function find(list, id)
  for _, x in ipairs(list) do if x.id == id then return x end end
end

describe("the local protocol (extends mrc_second_line)", function()
  local e = assert(pathwise.new{ protocol = LOCAL })

  it("records its own identity and its base's", function()
    local r = assert(e:eval(patient()))
    assert.equal("mrc_second_line_local", r.protocol.id)
    assert.equal("mrc_second_line", r.protocol.extends.id)
    assert.equal(64, #r.protocol.extends.sha256)
  end)

  it("offers panitumumab, not cetuximab, for RAS wild type", function()
    local r = assert(e:eval(patient()))
    assert.truthy(find(r.recommendations, "FOLFIRI+panitumumab"))
    assert.truthy(find(r.recommendations, "FOLFIRI+bevacizumab"))
    assert.is_nil(find(r.recommendations, "FOLFIRI+cetuximab"))
    assert.same({ 2, 4, 6 }, find(r.recommendations, "FOLFIRI+panitumumab").citations)
  end)

  it("gives a single 8 Gy fraction for uncomplicated bone pain, the guideline's course at fracture risk", function()
    local rt = find(assert(e:eval(patient())).recommendations, "palliative_rt_bone")
    assert.matches("single 8 Gy fraction", rt.text)
    assert.same({ 1, 3, 6 }, rt.citations)
    local r = assert(e:eval(patient{ metastases = { { site = "bone", symptoms = { "pain", "fracture_risk" } } } }))
    assert.matches("20%-30 Gy", find(r.recommendations, "palliative_rt_bone").text)
  end)
end)

describe("a 56-day bevacizumab rule (local_bev_surgery_56d)", function()
  local e = assert(pathwise.new{ protocol = LOCAL, plugins = { BEV56 } })
  local kras = { kras = "mutant", nras = "wild_type", braf_v600e = "wild_type", msi = "mss" }

  it("leaves FOLFIRI without bevacizumab for surgery in 43 to 56 days", function()
    for days = 43, 56 do
      local r = assert(e:eval(patient{ planned_surgery_in_days = days, molecular = kras }))
      local folfiri = find(r.recommendations, "FOLFIRI")
      assert.truthy(folfiri, "day " .. days)
      assert.is_true(folfiri.preferred)
      assert.is_nil(find(r.recommendations, "FOLFIRI+bevacizumab"))
      local b = find(r.blocked, "FOLFIRI+bevacizumab")
      assert.equal("local_policy", b.by)
      assert.equal("local_bev_surgery_56d", b.plugin)
      assert.same({ 7 }, b.citations)
      assert.is_nil(find(r.warnings, "no_systemic_regimen"))
      assert.matches("start second%-line FOLFIRI", r.pathway_detail.rationale)
    end
  end)

  it("keeps FOLFIRI plus bevacizumab from day 57", function()
    local r = assert(e:eval(patient{ planned_surgery_in_days = 57, molecular = kras }))
    assert.truthy(find(r.recommendations, "FOLFIRI+bevacizumab"))
    assert.is_nil(find(r.recommendations, "FOLFIRI"))
    assert.same({}, r.blocked)
  end)
end)
