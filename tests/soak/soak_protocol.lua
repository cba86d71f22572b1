-- The soak's adversarial protocol (tests/soak/run.sh): ordinary answers for
-- ordinary patients, and by patient_id a long C call, an endless loop, a
-- poisoned _ENV, a deep recursion, too much output or a raised error.
local function ordinary(out)
  out.pathway("soak_ok", { citations = { 1 } })
  out.recommend{ id = "FOLFIRI", text = "FOLFIRI.", citations = { 1 } }
end

local tricks = {
  move = function() return table.move({}, 1, math.maxinteger - 1, 1, {}) end,
  loop = function() while true do end end,
  poison = function() _ENV = nil end,
  deep = function() local function f(n) return 1 + f(n + 1) end return f(1) end,
  many = function(out) for i = 1, 300 do out.warn{ text = "w" .. i, citations = { 1 } } end end,
  raise = function() error("raised on purpose") end,
  memory = function() local t = {} for i = 1, 1e8 do t[i] = ("x"):rep(64) .. i end end,
}

return {
  id = "soak", version = "0.1.0", title = "Soak: adversarial protocol",
  references = { [1] = "Soak protocol: no guideline sentence." },
  applies = function(facts, out) return true end,
  evaluate = function(facts, out)
    local trick = tricks[facts.patient_id or ""]
    if trick then trick(out) end
    ordinary(out)
  end,
  examples = {
    { name = "ordinary", facts = { patient_id = "x", ecog = 1 }, expect = { pathway = "soak_ok", recommend = { "FOLFIRI" } } },
  },
}
