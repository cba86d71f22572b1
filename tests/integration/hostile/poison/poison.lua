-- A protocol that tries to poison the evaluations after its own (issue 12,
-- "the same input, the same answer"): by patient_id it sets _ENV to nil or
-- to an empty table (returning normally or raising), or reassigns a local
-- helper every later evaluation calls. test_hostile.py runs a batch where
-- these cases sit between ordinary ones: every ordinary case must still
-- get the ordinary answer.
local function label(s)
  return string.format("%s_%d", s, 1)
end

local function poison(id)
  if id == "env_nil" then _ENV = nil return true end
  if id == "env_nil_error" then _ENV = nil error("after _ENV = nil") end
  if id == "env_swap" then _ENV = {} return true end
  if id == "helper" then label = nil error("after reassigning a helper") end
  if id == "deep" then
    local function f(n) return 1 + f(n + 1) end
    return f(1)
  end
  return false
end

return {
  id = "hostile_poison", version = "0.1.0", title = "Hostile: poison later evaluations",
  references = { [1] = "Hostile protocol: no guideline sentence." },
  applies = function(facts, out) return true end,
  evaluate = function(facts, out)
    if poison(facts.patient_id) then return end
    out.pathway(label("ok"), { citations = { 1 } })
  end,
}
