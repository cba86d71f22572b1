-- A hostile protocol (issue 12, "never hang"): string.rep of an empty string 2^50 times (no allocation at all)
-- One long C call that neither allocates nor runs the count hook. The test
-- (test_hostile.py) runs it in every mode and, from a copy with at_load =
-- true, at load time; each must end with a budget or deadline error that
-- names this file and line, well before ctest's timeout.
local at_load = false
local function trick()
  return string.rep("", 2^50)
end
if at_load then trick() end
return {
  id = "hostile_rep", version = "0.1.0", title = "Hostile: rep",
  references = { [1] = "Hostile protocol: no guideline sentence." },
  applies = function(facts, out) return true end,
  evaluate = function(facts, out)
    trick()
    out.pathway("never_reached", { citations = { 1 } })
  end,
}
