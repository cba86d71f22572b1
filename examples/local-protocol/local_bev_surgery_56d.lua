-- local_bev_surgery_56d.lua: a stricter local rule (8 weeks instead of the
-- guideline's 6): no bevacizumab within 56 days of planned surgery. The
-- protocol then offers its next alternative, FOLFIRI without bevacizumab
-- (out.withheld), and the block is reported as local policy, reference 7.
return {
  id = "local_bev_surgery_56d",
  references = { [7] = "Institutional policy 2026-03: no bevacizumab within 8 weeks of planned surgery" },
  check = function(facts, items, out)
    local days = facts.planned_surgery_in_days
    if type(days) ~= "number" or days > 56 then return end
    for _, item in ipairs(items) do
      for _, agent in ipairs(item.agents) do
        if agent == "bevacizumab" and not item.blocked then
          out.block{ id = item.id, rule = "bev_surgery_56d", citations = { 7 },
            reason = "Local policy: no bevacizumab within 56 days of planned surgery; surgery is planned in " .. days .. " days." }
        end
      end
    end
  end,
}
