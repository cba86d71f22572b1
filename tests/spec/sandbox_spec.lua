-- sandbox_spec.lua: a protocol script cannot escape the sandbox, exhaust
-- the engine or loosen the safety kernel, and the engine survives each
-- attempt: the next evaluation works.
--
-- Each rogue protocol misbehaves only for patient "evil"; for anyone else
-- it recommends FOLFIRI, so we can check the same engine still works.

local H = package.loaded.pw_helper or dofile((debug.getinfo(1, "S").source:match("^@(.*)/") or ".") .. "/helper.lua")
local pathwise = H.pathwise

local TEMPLATE = [[
local stash
return {
  id = "rogue", version = "0", title = "rogue protocol",
  references = { [1] = "r1", [2] = "r2", [3] = "r3", [4] = "r4" },
  applies = function(facts, out) return true end,
  evaluate = function(facts, out)
    if facts.patient_id == "evil" then
%s
    end
    out.recommend{ id = "FOLFIRI", text = "FOLFIRI", citations = { 1, 3 } }
  end,
}
]]

local function engine(body, opts)
  opts = opts or {}
  return pathwise.new{ source = TEMPLATE:format(body), name = "rogue.lua",
                       memory = opts.memory, instructions = opts.instructions }
end

local EVIL = { patient_id = "evil", ecog = 1, metastatic = true }
local GOOD = { patient_id = "good", ecog = 1, metastatic = true }

-- Runs the evil case, expects failure with code (and message pattern),
-- then checks the same engine still evaluates the good case.
local function refused(body, code, pattern, opts)
  local e = engine(body, opts)
  local r, err, c = e:eval(EVIL)
  assert.is_nil(r, "expected the evaluation to fail")
  assert.are.equal(code, c, err)
  if pattern then assert.matches(pattern, err) end
  local ok, err2 = e:eval(GOOD)
  assert.is_truthy(ok, err2)
  assert.are.equal("FOLFIRI", ok.recommendations[1].id)
  return err
end

describe("sandbox: forbidden capabilities", function()
  for _, name in ipairs({ "io", "os", "debug", "package", "require", "load", "loadstring", "dofile",
                          "loadfile", "collectgarbage", "xpcall", "coroutine", "print", "rawset",
                          "_G", "module", "setfenv", "getfenv" }) do
    it("has no " .. name, function()
      refused("local x = " .. name, "protocol", "undeclared global '" .. name .. "'")
    end)
  end

  it("has no string.dump and no math.random", function()
    refused("local f = string.dump(function() end)", "protocol", "dump")
    refused("local r = math.random()", "protocol", "random")
  end)

  it("cannot create globals", function()
    refused("x = 1", "protocol", "use local")
  end)

  it("cannot modify the libraries it is given", function()
    refused("string.upper = function() end", "protocol", "read%-only")
    refused("table.insert = nil", "protocol", "read%-only")
    refused("setmetatable(string, {})", "protocol", "protected metatable")
  end)

  it("cannot reach or change the string metatable", function()
    refused("getmetatable('').__index = {}", "protocol", "index a boolean")
    -- string methods still work in a later evaluation of the same state
    local e = engine("local s = ('abc'):upper(); assert(s == 'ABC')")
    assert.is_truthy(e:eval(EVIL))
  end)

  it("cannot rewrite the out builder", function()
    refused("out.recommend = function() end", "protocol", "does not exist")
    refused("out.unblock{ id = 'FOLFIRI' }", "protocol", "does not exist")
  end)

  it("refuses binary chunks: protocols load as text only", function()
    local dumped = string.dump(function() return {} end)
    local ok, err = pcall(pathwise.new, { source = dumped, name = "binary.lua" })
    assert.is_false(ok)
    assert.matches("binary", err)
  end)

  it("refuses __gc finalizers (a looping one would hang lua_close)", function()
    refused("setmetatable({}, { __gc = function() while true do end end })", "protocol", "__gc")
  end)
end)

describe("sandbox: budgets", function()
  it("stops an infinite loop", function()
    refused("while true do end", "budget", "instruction budget")
  end)

  it("stops a loop that catches the budget error with pcall", function()
    refused("while true do pcall(function() while true do end end) end", "budget")
  end)

  it("fails the evaluation even when the script swallows the budget error", function()
    refused("pcall(function() while true do end end)", "budget")
  end)

  it("stops deep recursion with a clear error", function()
    refused("local function f(n) return f(n + 1) + 1 end f(1)", "protocol", "stack overflow")
  end)

  it("refuses pathological patterns quickly instead of running for seconds", function()
    local t0 = os.clock()
    refused("string.find(('a'):rep(16), ('a*'):rep(16) .. 'b')", "protocol", "pattern too complex")
    refused("local s = ('a'):rep(16); s:find(('a*'):rep(16) .. 'b')", "protocol", "pattern too complex")
    refused("string.match(('x'):rep(400), '.-.-.-b')", "protocol", "pattern too complex")
    refused("string.gsub(('x'):rep(5000), 'x', 'y')", "protocol", "subject too long")
    assert.is_true(os.clock() - t0 < 2)
  end)

  it("allows plain finds and simple patterns", function()
    local e = engine("assert(('FOLFOX'):find('FOX', 1, true)); assert(('mFOLFOX6'):match('^m?FOLFOX%d*$'))")
    assert.is_truthy(e:eval(EVIL))
  end)

  it("stops a memory bomb at the cap", function()
    refused("local t = {} for i = 1, 1e9 do t[i] = ('x'):rep(1000) .. i end", "memory", "memory cap",
            { memory = 8 * 1024 * 1024, instructions = 1e9 })
  end)

  it("fails the evaluation even when the script catches the memory error", function()
    refused("pcall(function() local s = ('x'):rep(64 * 1024 * 1024) end)", "memory", nil,
            { memory = 8 * 1024 * 1024 })
  end)
end)

describe("sandbox: facts are read-only", function()
  it("refuses writes to facts, nested facts and lists", function()
    refused("facts.ecog = 0", "protocol", "read%-only")
    refused("facts.molecular.kras = 'wild_type'", "protocol", "read%-only")
    refused("facts.metastases = {}", "protocol", "read%-only")
  end)

  it("has no rawset to shadow a fact", function()
    refused("rawset(facts, 'ecog', 0)", "protocol", "undeclared global 'rawset'")
  end)

  it("lets the kernel decide on its own copy: a caught write changes nothing", function()
    local e = engine([[
      pcall(function() facts.molecular.kras = "wild_type" end)
      out.recommend{ id = "cetuximab", text = "cetuximab", citations = { 2, 4 } }
    ]])
    local r = assert(e:eval({ patient_id = "evil", ecog = 1, metastatic = true,
                              molecular = { kras = "mutant", nras = "wild_type" } }))
    assert.are.equal("cetuximab", r.blocked[1].id)
    assert.are.equal("egfr_requires_ras_wt", r.blocked[1].rule)
  end)

  it("invalidates facts kept past their evaluation", function()
    local e = pathwise.new{ name = "stash.lua", source = [[
      local stash = {}   -- a table: upvalues are put back before each evaluation
      return { id = "stash", version = "0", title = "t", references = { [1] = "r" },
        applies = function(facts) return true end,
        evaluate = function(facts, out)
          if stash.f then local x = stash.f.ecog end
          stash.f = facts
          out.recommend{ id = "FOLFIRI", text = "FOLFIRI", citations = { 1 } }
        end }
    ]] }
    assert.is_truthy(e:eval(GOOD))
    local r, err, code = e:eval(GOOD)
    assert.is_nil(r)
    assert.are.equal("protocol", code)
    assert.matches("after their evaluation ended", err)
  end)
end)

describe("sandbox: every evaluation starts from the loaded state", function()
  it("puts back upvalues a previous evaluation changed", function()
    local e = pathwise.new{ name = "counter.lua", source = [[
      local calls = 0
      return { id = "counter", version = "0", title = "t", references = { [1] = "r" },
        applies = function(facts) return true end,
        evaluate = function(facts, out)
          calls = calls + 1
          out.pathway("call_" .. calls, { citations = { 1 } })
          if calls == 1 then _ENV = nil end
        end }
    ]] }
    for _ = 1, 3 do
      local r = assert(e:eval(GOOD))
      assert.are.equal("call_1", r.pathway)
    end
  end)
end)

describe("sandbox: hostile values never crash the host", function()
  it("reports error objects that are not strings", function()
    refused("error({})", "protocol", "not a string")
    refused("error(setmetatable({}, { __tostring = function() error('boom') end }))", "protocol", "not a string")
    refused("error(nil)", "protocol")
  end)

  it("reads builder arguments raw: an erroring __index is not run", function()
    refused("out.recommend(setmetatable({}, { __index = function() error('boom') end }))", "protocol",
            "field 'id' is required")
  end)

  it("refuses a protocol table whose fields are behind metamethods", function()
    local ok, err = pcall(pathwise.new, { name = "meta.lua",
      source = "return setmetatable({}, { __index = function() error('boom') end })" })
    assert.is_false(ok)
    assert.matches("protocol field 'id'", err)
  end)

  it("refuses unknown ids and citations that are not references", function()
    refused("out.recommend{ id = 'cetuximabb', text = 't', citations = { 1 } }", "protocol", "unknown id 'cetuximabb'")
    refused("out.recommend{ id = 'FOLFIRI', text = 't', citations = { 9 } }", "protocol", "citation")
    refused("out.recommend{ id = 'FOLFIRI', text = 't' }", "protocol", "citations")
    refused("out.recommend{ id = 'FOLFIRI', text = '\\255\\254', citations = { 1 } }", "protocol", "UTF%-8")
  end)

  it("refuses builder fields it does not read (a typo would drop text silently)", function()
    refused("out.recommend{ id = 'FOLFIRI', text = 't', rationle = 'r', citations = { 1 } }", "protocol",
            "out%.recommend: unknown field 'rationle'")
    refused("out.missing{ fact = 'ecog', why = 'w', oder = 'x' }", "protocol", "out%.missing: unknown field 'oder'")
    refused("out.warn{ text = 't', citations = { 1 }, levle = 'urgent' }", "protocol", "out%.warn: unknown field 'levle'")
    refused("out.pathway('p', { 1 })", "protocol", "out%.pathway: unexpected number key")
    refused("out.consider{ 'FOLFIRI', text = 't', citations = { 1 } }", "protocol", "out%.consider: unexpected number key")
  end)

  it("refuses reading a facts field the schema does not have (a typo reads as unknown forever)", function()
    refused("local x = facts.ecgo", "protocol", "rogue%.lua:%d+: facts has no field 'ecgo'")
    refused("local x = facts.primary.sitee", "protocol", "facts%.primary has no field 'sitee'")
  end)

  it("names the script and line of an error", function()
    local err = refused("local x = nil; x.y = 1", "protocol")
    assert.matches("rogue%.lua:%d+:", err)
  end)
end)
