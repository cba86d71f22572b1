-- A hostile protocol (issue 12, "never hang"): a plain string.find of a megabyte needle over a 4 MB haystack
-- One long C call that neither allocates nor runs the count hook. The test
-- (test_hostile.py) runs it in every mode and, from a copy with at_load =
-- true, at load time; each must end with a budget or deadline error that
-- names this file and line, well before ctest's timeout.
local at_load = false
local function trick()
  return string.find(string.rep("a", 4 * 2^20), string.rep("a", 2^20) .. "b", 1, true)
end
if at_load then trick() end
return {
  id = "hostile_find", version = "0.1.0", title = "Hostile: find",
  references = { [1] = "Hostile protocol: no guideline sentence." },
  applies = function(facts, out) return true end,
  evaluate = function(facts, out)
    trick()
    out.pathway("never_reached", { citations = { 1 } })
  end,
}
