-- local_right_sided_egfr_block.lua: an institution that turns one of the
-- kernel's beyond-guideline warnings into a block.
--
-- The kernel warns (anti_egfr_right_sided, ASCO 2022: Morris et al., J Clin
-- Oncol 2023) when an anti-EGFR antibody is recommended or proposed for a
-- right-sided primary, and blocks nothing. This plugin blocks it: every
-- item with cetuximab or panitumumab for a colon_right primary, except
-- encorafenib with cetuximab (BRAF V600E), which is not weighed by side.
-- A plugin can only add blocks and warnings, never lift the kernel's.

local ANTI_EGFR = { cetuximab = true, panitumumab = true }

local function has_agent(item, set)
  for _, agent in ipairs(item.agents) do
    if set[agent] then
      return true
    end
  end
  return false
end

return {
  id = "local_right_sided_egfr",
  check = function(facts, items, out)
    if facts.primary.site ~= "colon_right" then
      return
    end
    for _, item in ipairs(items) do
      if not item.blocked and has_agent(item, ANTI_EGFR) and not has_agent(item, { encorafenib = true }) then
        out.block{
          id = item.id,
          rule = "no_anti_egfr_right_sided",
          reason = "Local policy: no anti-EGFR antibody for a right-sided primary (the kernel's warning anti_egfr_right_sided, made a block).",
        }
      end
    end
  end,
}
