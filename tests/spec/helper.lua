-- helper.lua: shared set-up for the busted specs.
--
-- Loads the engine's Lua C module from the build directory (env
-- PW_BUILD_DIR, default /work/main/build) and offers small helpers to
-- build patient facts from the index case, evaluate them through the real
-- engine and look things up in the result.
--
-- Run by busted --helper=tests/spec/helper.lua; spec files reach it as
-- package.loaded.pw_helper (or dofile it themselves when run alone).

if package.loaded.pw_helper then
  return package.loaded.pw_helper
end

local H = {}

local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
H.root = os.getenv("PW_SOURCE_DIR") or (here .. "/../..")
H.build = os.getenv("PW_BUILD_DIR") or "/work/main/build"
package.cpath = H.build .. "/lua/?.so;" .. package.cpath

H.pathwise = require "pathwise"
H.cjson = require "cjson"

H.protocol = H.root .. "/scripts/mrc_second_line.lua"
H.local_protocol = H.root .. "/examples/local-protocol/mrc_second_line_local.lua"
H.examples = H.root .. "/examples"
H.guideline = H.root .. "/docs/guideline.txt"   -- the guideline, verbatim (docs/README.md)

function H.read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

------------------------------------------------------------------------
-- JSON out of Lua tables. cjson 2.1.0 writes an empty table as {}, so
-- the facts' list fields are written as arrays here explicitly.
------------------------------------------------------------------------

local LIST_KEYS = {
  symptoms = true, prior_regimens = true, metastases = true,
  prior_radiation_sites = true, proposed_orders = true,
}

-- Marks a field as unknown (the key is left out of the JSON).
H.UNKNOWN = setmetatable({}, { __tostring = function() return "UNKNOWN" end })

local function is_null(v)
  return v == H.cjson.null or v == H.pathwise.null
end

local encode
local function encode_list(t)
  local parts = {}
  for i = 1, #t do
    parts[i] = encode(t[i])
  end
  return "[" .. table.concat(parts, ",") .. "]"
end

encode = function(v, key)
  if is_null(v) then
    return "null"
  end
  local tv = type(v)
  if tv == "string" then
    return H.cjson.encode(v)
  elseif tv == "number" then
    if math.type(v) == "integer" then
      return string.format("%d", v)
    end
    return H.cjson.encode(v)
  elseif tv == "boolean" then
    return tostring(v)
  elseif tv == "table" then
    if (key and LIST_KEYS[key]) or #v > 0 then
      return encode_list(v)
    end
    local keys = {}
    for k, val in pairs(v) do
      if val ~= H.UNKNOWN then
        keys[#keys + 1] = k
      end
    end
    table.sort(keys)
    local parts = {}
    for _, k in ipairs(keys) do
      parts[#parts + 1] = H.cjson.encode(k) .. ":" .. encode(v[k], k)
    end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  error("cannot encode " .. tv)
end

function H.json(t)
  return encode(t)
end

------------------------------------------------------------------------
-- Facts
------------------------------------------------------------------------

local function copy(v)
  if type(v) ~= "table" or is_null(v) or v == H.UNKNOWN then
    return v
  end
  local t = {}
  for k, x in pairs(v) do
    t[k] = copy(x)
  end
  return t
end
H.copy = copy

-- The guideline's patient (examples/index_case.json) with changes:
-- a list replaces a field, a record merges into it (one level), H.UNKNOWN
-- drops a field, pathwise.null sets JSON null.
function H.case(changes)
  local f = H.cjson.decode(H.read(H.examples .. "/index_case.json"))
  for k, v in pairs(changes or {}) do
    if v == H.UNKNOWN then
      f[k] = nil
    elseif type(v) == "table" and not is_null(v) and #v == 0 and next(v) ~= nil
        and type(f[k]) == "table" and not is_null(f[k]) then
      for k2, v2 in pairs(v) do
        if v2 == H.UNKNOWN then
          f[k][k2] = nil
        else
          f[k][k2] = copy(v2)
        end
      end
    else
      f[k] = copy(v)
    end
  end
  return f
end

function H.case_file(name)
  return H.read(H.examples .. "/cases/" .. name .. ".json")
end

------------------------------------------------------------------------
-- Engines and evaluation
------------------------------------------------------------------------

local engines = {}

function H.engine(path)
  path = path or H.protocol
  if not engines[path] then
    engines[path] = H.pathwise.new{ protocol = path }
  end
  return engines[path]
end

-- Evaluate facts (a table, turned into JSON here, or JSON text) and
-- return the result; an evaluation error fails the test.
function H.eval(facts, opts, path)
  local e = H.engine(path)
  local json = type(facts) == "string" and facts or H.json(facts)
  local r, err, code = e:eval(json, opts)
  assert(r, "eval failed (" .. tostring(code) .. "): " .. tostring(err))
  return r, e
end

------------------------------------------------------------------------
-- Ids a test may look for. A lookup with an id pathwise does not know is
-- an error, not a nil: `assert.is_nil(H.rec(r, "FOLFIRl"))` would pass
-- for ever, so every helper below checks its id first.
------------------------------------------------------------------------

local known = { id = {}, agent = {}, fact = {}, text = nil }

-- A knowledge id (agent, regimen, action or a '+' combination): the engine
-- accepts it as a proposed order exactly when it knows it.
function H.known_id(id)
  if known.id[id] == nil then
    local r = H.engine():eval(H.json({ proposed_orders = { id } }))
    known.id[id] = r ~= nil
    known.agent[id] = r ~= nil and #r.orders == 1 and #r.orders[1].agents == 1
      and r.orders[1].agents[1] == id
  end
  return known.id[id]
end

function H.known_agent(id)
  H.known_id(id)
  return known.agent[id]
end

-- A fact path: the builder's out.missing refuses a path it does not know.
local FACT_PROBE = [[
return {
  id = "fact_probe", version = "1", title = "fact path probe", references = { [1] = "-" },
  applies = function() return true end,
  evaluate = function(f, out) out.missing{ fact = f.patient_id, why = "probe" } end,
}]]

function H.known_fact(path)
  if known.fact[path] == nil then
    if not known.probe then
      known.probe = os.tmpname()
      local f = assert(io.open(known.probe, "wb"))
      f:write(FACT_PROBE)
      f:close()
      known.probe_engine = H.pathwise.new{ protocol = known.probe }
      os.remove(known.probe)
    end
    known.fact[path] = known.probe_engine:eval(H.json({ patient_id = path })) ~= nil
  end
  return known.fact[path]
end

-- A safety rule of the kernel, or a plugin's "plugin_id/rule".
function H.known_rule(id)
  for _, rule in ipairs(H.pathwise.rules()) do
    if rule.id == id then
      return true
    end
  end
  return id:match("^[a-z0-9_.-]+/[a-z0-9_.-]+$") ~= nil
end

-- A warning id: written as a string literal in a protocol, a plugin or
-- the engine's C core (warnings are free-form ids, no table lists them).
function H.known_warning(id)
  if not known.text then
    local parts = {}
    local ls = io.popen("ls " .. H.root .. "/scripts/*.lua " .. H.root .. "/examples/*/*.lua "
      .. H.root .. "/plugins/*.lua " .. H.root .. "/tests/plugins/*.lua " .. H.root .. "/engine/core/*.c")
    for path in ls:lines() do
      parts[#parts + 1] = H.read(path)
    end
    ls:close()
    known.text = table.concat(parts, "\n")
  end
  return known.text:find('"' .. id .. '"', 1, true) ~= nil
end

local function must_know(what, ok, id)
  if not ok then
    error(string.format("%s '%s' is not one pathwise knows: a lookup for it could never match", what,
      tostring(id)), 3)
  end
end

------------------------------------------------------------------------
-- Looking things up in a result
------------------------------------------------------------------------

function H.rec(r, id, target)
  must_know("id", H.known_id(id), id)
  for _, item in ipairs(r.recommendations) do
    if item.id == id and (target == nil or item.target == target) then
      return item
    end
  end
  return nil
end

function H.rec_ids(r)
  local ids = {}
  for _, item in ipairs(r.recommendations) do
    ids[#ids + 1] = item.id
  end
  return ids
end

function H.blocked(r, id)
  must_know("id", H.known_id(id), id)
  for _, item in ipairs(r.blocked) do
    if item.id == id then
      return item
    end
  end
  return nil
end

-- Is some blocked item refused by this rule?
function H.blocked_by(r, rule)
  must_know("rule", H.known_rule(rule), rule)
  for _, item in ipairs(r.blocked) do
    if item.rule == rule then
      return item
    end
  end
  return nil
end

function H.missing(r, fact)
  must_know("fact path", H.known_fact(fact), fact)
  for _, m in ipairs(r.missing) do
    if m.fact == fact then
      return m
    end
  end
  return nil
end

function H.warning(r, id)
  must_know("warning id", H.known_warning(id), id)
  for _, w in ipairs(r.warnings) do
    if w.id == id then
      return w
    end
  end
  return nil
end

function H.followup(r, id)
  must_know("id", H.known_id(id), id)
  for _, f in ipairs(r.followup) do
    if f.id == id then
      return f
    end
  end
  return nil
end

function H.outcome(r, pattern)
  for _, o in ipairs(r.outcomes) do
    if o.text:find(pattern, 1, true) then
      return o
    end
  end
  return nil
end

-- Does any recommendation contain this agent (directly or in a regimen)?
function H.has_agent(r, agent)
  must_know("agent", H.known_agent(agent), agent)
  for _, item in ipairs(r.recommendations) do
    for _, a in ipairs(item.agents or {}) do
      if a == agent then
        return item
      end
    end
  end
  return nil
end

function H.cites(item)
  local c = {}
  for i, n in ipairs(item.citations) do
    c[i] = math.tointeger(n) or n
  end
  return c
end

package.loaded.pw_helper = H
return H
