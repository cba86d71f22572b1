-- local_bev_surgery_60d.lua: an institutional rule that tightens one
-- threshold of the guideline.
--
-- The guideline (and the C safety kernel, rule bev_surgery_window) forbids
-- bevacizumab within 6 weeks (42 days or fewer) of planned surgery. This
-- institution's surgeons ask for 60 days. The plugin blocks every item
-- containing bevacizumab (a recommendation such as FOLFIRI+bevacizumab, or
-- a proposed order) when surgery is planned in 60 days or fewer. Items the
-- kernel already blocked keep the kernel's rule; the plugin only adds.
--
-- Load it with --plugin plugins/local_bev_surgery_60d.lua (eval, batch,
-- diff, serve, check). A blocked item reports the rule as
-- "local_bev_surgery_60d/bev_surgery_60d". See plugins/README.md.

local WINDOW_DAYS = 60

local function contains(list, value)
  for _, v in ipairs(list) do
    if v == value then
      return true
    end
  end
  return false
end

return {
  id = "local_bev_surgery_60d",

  check = function(facts, items, out)
    local days = facts.planned_surgery_in_days
    -- nil: not recorded; false: none planned. The protocol already warns
    -- when surgery is not recorded, so nothing to add then.
    if type(days) ~= "number" or days > WINDOW_DAYS then
      return
    end
    local blocked = 0
    for _, item in ipairs(items) do
      if not item.blocked and contains(item.agents, "bevacizumab") then
        blocked = blocked + 1
        out.block{
          id = item.id,
          rule = "bev_surgery_60d",
          reason = "Local policy: no bevacizumab within " .. WINDOW_DAYS ..
            " days of planned surgery; surgery is planned in " .. days .. " days.",
          citations = { 2, 4 },
        }
      end
    end
    if blocked > 0 then
      -- A plugin cannot recommend: it says what remains instead.
      out.warn{
        id = "local_bev_surgery_60d",
        text = "Bevacizumab withheld under the local 60-day surgery rule: FOLFIRI without bevacizumab remains the option until after surgery.",
        citations = { 1, 3 },
      }
    end
  end,
}
