-- helpers_spec.lua: the spec helpers refuse ids pathwise does not know.
--
-- A negative assertion such as assert.is_nil(H.rec(r, "FOLFIRl")) would
-- pass for ever if the helper merely looked the id up. Each lookup helper
-- first checks that its id exists (a knowledge id, an agent, a fact path,
-- a rule, a warning id) and raises an error otherwise.

local H = package.loaded.pw_helper or dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "helper.lua")

describe("spec helpers", function()
  local r = H.eval(H.case())

  it("know the ids, agents, fact paths, rules and warnings pathwise has", function()
    assert.is_true(H.known_id("FOLFIRI+bevacizumab"))
    assert.is_true(H.known_id("ras_testing"))
    assert.is_true(H.known_agent("bevacizumab"))
    assert.is_false(H.known_agent("FOLFIRI"))   -- a regimen, not an agent
    assert.is_true(H.known_fact("molecular.kras"))
    assert.is_true(H.known_fact("metastases[2].symptoms"))
    assert.is_true(H.known_rule("ecog_gate"))
    assert.is_true(H.known_rule("local/bev_surgery_60d"))
    assert.is_true(H.known_warning("no_rt_asymptomatic_sites"))
  end)

  it("refuse what pathwise does not know", function()
    assert.is_false(H.known_id("FOLFIRl"))
    assert.is_false(H.known_id("NOT_AN_ID"))
    assert.is_false(H.known_agent("bevacizumub"))
    assert.is_false(H.known_fact("molecular.kraz"))
    assert.is_false(H.known_rule("ecog_gat"))
    assert.is_false(H.known_warning("no_such_warning_anywhere"))
  end)

  it("raise on a lookup that could never match, instead of returning nil", function()
    assert.has_error(function() H.rec(r, "FOLFIRl") end)
    assert.has_error(function() H.blocked(r, "bevacizumub") end)
    assert.has_error(function() H.has_agent(r, "FOLFIRI") end)
    assert.has_error(function() H.missing(r, "molecular.kraz") end)
    assert.has_error(function() H.blocked_by(r, "ecog_gat") end)
    assert.has_error(function() H.warning(r, "no_such_warning_anywhere") end)
    assert.has_error(function() H.followup(r, "ct_reassesment") end)
  end)

  it("still answer for known ids, present or not", function()
    assert.is_table(H.rec(r, "FOLFIRI+bevacizumab"))
    assert.is_nil(H.rec(r, "FOLFIRI+cetuximab"))
    assert.is_table(H.missing(r, "molecular.kras"))
    assert.is_nil(H.blocked_by(r, "single_biologic"))
  end)

  it("read the guideline from the repository", function()
    local f = assert(io.open(H.guideline, "r"), "docs/guideline.txt is missing")
    f:close()
  end)
end)
