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
-- Looking things up in a result
------------------------------------------------------------------------

function H.rec(r, id, target)
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
  for _, item in ipairs(r.blocked) do
    if item.id == id then
      return item
    end
  end
  return nil
end

-- Is some blocked item refused by this rule?
function H.blocked_by(r, rule)
  for _, item in ipairs(r.blocked) do
    if item.rule == rule then
      return item
    end
  end
  return nil
end

function H.missing(r, fact)
  for _, m in ipairs(r.missing) do
    if m.fact == fact then
      return m
    end
  end
  return nil
end

function H.warning(r, id)
  for _, w in ipairs(r.warnings) do
    if w.id == id then
      return w
    end
  end
  return nil
end

function H.followup(r, id)
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
