-- extends_spec.lua: protocols that extend another (issue 11), resolved by
-- the host; local references; citation errors that name the value.

local H = package.loaded.pw_helper or dofile((debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or ".") .. "/helper.lua")

local function write(text)
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. dir))
  local path = dir .. "/local.lua"
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

-- The protocol (or plugin) in opts fails to load, with an error matching pattern.
local function refused(opts, pattern)
  local ok, err = pcall(H.pathwise.new, opts)
  assert.is_false(ok)
  assert.matches(pattern, err)
end

describe("extends", function()
  it("inherits the default from the scripts directory and records both identities", function()
    local p = write('return { extends = "mrc_second_line", id = "x", version = "9", title = "t" }')
    local e = assert(H.pathwise.new{ protocol = p })
    local r = assert(e:eval(H.json(H.case())))
    assert.equal("x", r.protocol.id)
    assert.equal("mrc_second_line", r.protocol.extends.id)
    assert.equal("1.0.0", r.protocol.extends.version)
    assert.truthy(H.rec(r, "FOLFIRI+bevacizumab"))
    assert.truthy(H.rec(r, "denosumab"))
  end)

  it("a formulary exclusion removes the item and says so", function()
    local p = write('return { extends = "mrc_second_line", id = "x", version = "9", title = "t",'
      .. ' policy = { excluded = { "denosumab" } } }')
    local r = assert(assert(H.pathwise.new{ protocol = p }):eval(H.json(H.case()), { trace = true }))
    assert.is_nil(H.rec(r, "denosumab"))
    assert.truthy(H.rec(r, "zoledronic_acid"))
    assert.matches("denosumab not proposed: excluded from the local formulary", H.cjson.encode(r))
  end)

  it("replaces one named rule and keeps the others", function()
    local p = write('return { extends = "mrc_second_line", id = "x", version = "9", title = "t",'
      .. ' rules = { bone_agents = function() end } }')
    local r = assert(assert(H.pathwise.new{ protocol = p }):eval(H.json(H.case())))
    assert.is_nil(H.rec(r, "zoledronic_acid"))
    assert.truthy(H.rec(r, "palliative_rt_bone"))
    assert.truthy(H.rec(r, "FOLFIRI+bevacizumab"))
  end)

  it("refuses a base it cannot find, naming it", function()
    local p = write('return { extends = "no_such_protocol", id = "x", version = "9", title = "t" }')
    refused({ protocol = p }, "extends 'no_such_protocol'")
  end)

  it("an extension that rewrites a base sentence is cited and quoted as rewritten (prepare runs after the merge)", function()
    local p = write('return { extends = "mrc_second_line", id = "x", version = "9", title = "t",'
      .. ' references = { [6] = "Institutional policy" },'
      .. ' sentences = { egfr = { { 6 }, "Local anti-EGFR sentence." } } }')
    local r = assert(assert(H.pathwise.new{ protocol = p }):eval(H.json(H.case{ molecular = { kras = "wild_type", nras = "wild_type" } }),
      { trace = true }))
    local it = H.rec(r, "FOLFIRI+cetuximab")
    assert.truthy(it)
    assert.same({ 6 }, it.citations)
    assert.equal("Local anti-EGFR sentence.", it.evidence)
  end)

  it("a protocol's prepare must be a function, and its error fails the load", function()
    local p = write('return { extends = "mrc_second_line", id = "x", version = "9", title = "t", prepare = 5 }')
    refused({ protocol = p }, "protocol field 'prepare' must be a function")
    p = write('return { extends = "mrc_second_line", id = "x", version = "9", title = "t",'
      .. ' prepare = function() error("no cache today") end }')
    refused({ protocol = p }, "prepare: .*no cache today")
  end)

  it("a cited sentence that does not exist is named", function()
    local p = write('return { extends = "mrc_second_line", id = "x", version = "9", title = "t",'
      .. ' policy = { anti_egfr_sentences = { "egfr", "local_egrf" } } }')
    local r, err = assert(H.pathwise.new{ protocol = p }):eval(H.json(H.case{ molecular = { kras = "wild_type", nras = "wild_type" } }))
    assert.is_nil(r)
    assert.matches("no sentence named 'local_egrf'", err)
  end)
end)

describe("local references and citation errors", function()
  it("a plugin cites its own reference", function()
    local e = assert(H.pathwise.new{ protocol = H.protocol,
      plugins = { H.root .. "/examples/local-protocol/local_bev_surgery_56d.lua" } })
    local r = assert(e:eval(H.json(H.case{ planned_surgery_in_days = 50 })))
    local b = H.blocked(r, "FOLFIRI+bevacizumab")
    assert.same({ 7 }, b.citations)
    assert.equal("local_policy", b.by)
    assert.truthy(H.rec(r, "FOLFIRI"))
  end)

  it("a citation outside the references is named by its value, not its position", function()
    local p = write('return { id = "bad", check = function(f, items, out)'
      .. ' out.block{ id = items[1].id, rule = "r", reason = "x", citations = { 1, 9 } } end }')
    local e = assert(H.pathwise.new{ protocol = H.protocol, plugins = { p } })
    local r, err = e:eval(H.json(H.case()))
    assert.is_nil(r)
    assert.matches("citation 9 is not a number listed", err)
  end)

  it("a plugin may not give a protocol's reference number another text", function()
    local p = write('return { id = "bad", references = { [1] = "mine" }, check = function() end }')
    refused({ protocol = H.protocol, plugins = { p } }, "already uses")
  end)
end)

describe("a plan left without a systemic regimen", function()
  it("is flagged when a local rule blocks every regimen", function()
    local p = write('return { id = "no_irinotecan", check = function(f, items, out)'
      .. ' for _, it in ipairs(items) do for _, a in ipairs(it.agents) do'
      .. ' if a == "irinotecan" then out.block{ id = it.id, rule = "r", reason = "local", citations = { 1 } } end'
      .. ' end end end }')
    local e = assert(H.pathwise.new{ protocol = H.protocol, plugins = { p } })
    local r = assert(e:eval(H.json(H.case())))
    assert.equal("second_line_systemic", r.pathway)
    local w = H.warning(r, "no_systemic_regimen")
    assert.truthy(w)
    assert.equal("urgent", w.level)
    -- and not without the plugin
    local r0 = assert(assert(H.pathwise.new{ protocol = H.protocol }):eval(H.json(H.case())))
    assert.is_nil(H.warning(r0, "no_systemic_regimen"))
  end)
end)
