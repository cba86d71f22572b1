-- plugin_spec.lua: local-rule plugins may only tighten.
--
-- A tightening plugin (plugins/local_bev_surgery_60d.lua) blocks with its
-- own rule id and reason; a rogue plugin (tests/plugins/rogue.lua) that
-- tries to unblock, remove or rewrite anything is refused, fails the
-- evaluation closed, and leaves nothing behind for the next evaluation on
-- the same engine.

local H = package.loaded.pw_helper or dofile((debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or ".") .. "/helper.lua")

local BEV_PLUGIN = H.root .. "/plugins/local_bev_surgery_60d.lua"
local BRAIN_PLUGIN = H.root .. "/plugins/local_brain_mets_mdt.lua"
local ROGUE = H.root .. "/tests/plugins/rogue.lua"

local function engine(plugins, protocol)
  return H.pathwise.new{ protocol = protocol or H.protocol, plugins = plugins }
end

local function eval(e, facts)
  local r, err, code = e:eval(H.json(facts))
  return r, err, code
end

local function ids(list)
  local t = {}
  for _, item in ipairs(list) do
    t[#t + 1] = item.id
  end
  table.sort(t)
  return t
end

-- The result without the parts that name the engine's configuration.
local function decisions(r)
  return {
    pathway = r.pathway,
    recommendations = ids(r.recommendations),
    blocked = ids(r.blocked),
    missing = ids(r.missing),
  }
end

describe("a tightening plugin (local_bev_surgery_60d)", function()
  local e = engine{ BEV_PLUGIN }

  it("blocks bevacizumab recommendations and orders with its own rule when surgery is 43-60 days away", function()
    local r = assert(eval(e, H.case{ planned_surgery_in_days = 50, proposed_orders = { "bevacizumab" } }))
    assert.is_nil(H.rec(r, "FOLFIRI+bevacizumab"))
    local b = assert(H.blocked(r, "FOLFIRI+bevacizumab"))
    assert.equal("local_bev_surgery_60d/bev_surgery_60d", b.rule)
    assert.truthy(b.reason:find("60 days", 1, true))
    assert.truthy(b.reason:find("50 days", 1, true))
    assert.same({ 2, 4 }, H.cites(b))
    local order = assert(H.blocked(r, "bevacizumab"))
    assert.equal("local_bev_surgery_60d/bev_surgery_60d", order.rule)
    local w = assert(H.warning(r, "local_bev_surgery_60d"))
    assert.equal("plugin", w.source)
  end)

  it("changes nothing when surgery is more than 60 days away, none is planned, or it is not recorded", function()
    local plain = engine{}
    for _, days in ipairs({ 61, 120 }) do
      local facts = H.case{ planned_surgery_in_days = days }
      assert.same(decisions(assert(eval(plain, facts))), decisions(assert(eval(e, facts))))
      assert.truthy(H.rec(assert(eval(e, facts)), "FOLFIRI+bevacizumab"))
    end
    assert.truthy(H.rec(assert(eval(e, H.case())), "FOLFIRI+bevacizumab"))   -- null: none planned
    assert.truthy(H.rec(assert(eval(e, H.case{ planned_surgery_in_days = H.UNKNOWN })), "FOLFIRI+bevacizumab"))
  end)

  it("leaves the kernel's own block in place within 42 days", function()
    local r = assert(eval(e, H.case{ planned_surgery_in_days = 30, proposed_orders = { "bevacizumab" } }))
    assert.equal("bev_surgery_window", assert(H.blocked(r, "bevacizumab")).rule)
    assert.truthy(H.rec(r, "FOLFIRI"))
  end)

  it("works on the institution variant too", function()
    local v = engine({ BEV_PLUGIN }, H.local_protocol)
    local r = assert(eval(v, H.case{ planned_surgery_in_days = 45 }))
    assert.equal("local_bev_surgery_60d/bev_surgery_60d", assert(H.blocked(r, "FOLFIRI+bevacizumab")).rule)
  end)
end)

describe("a warning-only plugin (local_brain_mets_mdt)", function()
  it("adds a warning and blocks nothing", function()
    local e = engine{ BRAIN_PLUGIN }
    local facts = H.case{ metastases = { { site = "liver", symptoms = {} }, { site = "brain", symptoms = { "neurologic" } } } }
    local r = assert(eval(e, facts))
    local w = assert(H.warning(r, "local_brain_mets_mdt"))
    assert.truthy(w.text:find("#2", 1, true))
    assert.same(decisions(assert(eval(engine{}, facts))), decisions(r))
  end)
end)

describe("a rogue plugin", function()
  local e = engine{ ROGUE }
  local plain = engine{}
  -- KRAS mutant with cetuximab proposed: the kernel blocks cetuximab.
  local base = H.json(H.case{ molecular = { kras = "mutant" }, proposed_orders = { "cetuximab" } })

  local function rogue()
    return H.cjson.decode(base)   -- a fresh copy
  end

  local refused = {
    unblock = "plugins may only tighten: out.unblock is not available",
    write_item = "plugins may only tighten: the item list is read-only",
    remove = "plugins may only tighten: the item list is read-only",
    replace = "plugins may only tighten: the item list is read-only",
    tamper_items = "plugins may only tighten: the item list is read-only",
    recommend = "plugins may only tighten: out.recommend is not available",
    pathway = "plugins may only tighten: out.pathway is not available",
    rewrite_out = "plugins may only tighten: out is read-only",
    write_fact = "facts are read-only",
    metatable = "cannot change a protected metatable",
    tamper_string = "attempt to modify a read-only table",
    global = "attempt to modify a read-only table or create a global",
  }

  local names = {}
  for name in pairs(refused) do
    names[#names + 1] = name
  end
  table.sort(names)

  for _, name in ipairs(names) do
    it("is refused when it tries to " .. name:gsub("_", " ") .. ", and the evaluation fails closed", function()
      local facts = rogue()
      facts.patient_id = "rogue-" .. name
      local r, err, code = e:eval(H.json(facts))
      assert.is_nil(r)
      assert.equal("protocol", code)
      assert.truthy(err:find("plugin rogue: ", 1, true), err)
      assert.truthy(err:find(refused[name], 1, true), err)
    end)
  end

  it("leaves nothing behind: the next case on the same engine decides as without the plugin", function()
    -- every attempt first, then ordinary cases
    for _, name in ipairs(names) do
      local facts = rogue()
      facts.patient_id = "rogue-" .. name
      assert.is_nil((e:eval(H.json(facts))))
    end
    local cases = {
      H.case(),
      H.case{ molecular = { kras = "mutant" }, proposed_orders = { "cetuximab" } },
      H.case{ molecular = { kras = "wild_type", nras = "wild_type", braf_v600e = "wild_type", msi = "mss" } },
      H.case{ prior_regimens = { { name = "mFOLFOX6", line = 1, outcome = "progression" } } },
    }
    for _, facts in ipairs(cases) do
      local want = decisions(assert(eval(plain, facts)))
      local got = decisions(assert(eval(e, facts)))
      assert.same(want, got)
    end
    -- the kernel's block is still there
    local r = assert(eval(e, H.case{ molecular = { kras = "mutant" }, proposed_orders = { "cetuximab" } }))
    assert.equal("egfr_requires_ras_wt", assert(H.blocked(r, "cetuximab")).rule)
  end)
end)

describe("loading plugins", function()
  local function write(src)
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(src)
    f:close()
    return path
  end

  it("refuses a plugin without an id or without a check function", function()
    for _, src in ipairs({
      "return { check = function() end }",
      "return { id = 'Bad Id', check = function() end }",
      "return { id = 'no_check' }",
      "return 42",
    }) do
      local path = write(src)
      local ok, err = pcall(engine, { path })
      os.remove(path)
      assert.is_false(ok)
      assert.truthy(tostring(err):find("plugin", 1, true), tostring(err))
    end
  end)

  it("runs a plugin in the sandbox: no io, os or require", function()
    for name, call in pairs{ io = "io.open('/etc/passwd')", os = "os.getenv('HOME')", require = "require('socket')" } do
      local path = write("local f = " .. call .. " return { id = 'x', check = function() end }")
      local ok, err = pcall(engine, { path })
      os.remove(path)
      assert.is_false(ok)
      assert.truthy(tostring(err):find("undeclared global '" .. name .. "'", 1, true), tostring(err))
    end
  end)

  it("fails the evaluation closed when a plugin raises an error", function()
    local path = write("return { id = 'boom', check = function() error('local rule broke') end }")
    local e = engine{ path }
    os.remove(path)
    local r, err, code = e:eval(H.json(H.case()))
    assert.is_nil(r)
    assert.equal("protocol", code)
    assert.truthy(err:find("local rule broke", 1, true))
  end)
end)
