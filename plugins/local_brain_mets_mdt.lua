-- local_brain_mets_mdt.lua: an institutional warning the guideline does
-- not give.
--
-- The guideline does not cover brain metastases. This institution wants
-- every such patient discussed at the neuro-oncology multidisciplinary
-- meeting before systemic therapy starts. The plugin only adds a warning;
-- it blocks nothing.

return {
  id = "local_brain_mets_mdt",

  check = function(facts, items, out)
    local mets = facts.metastases
    if mets == nil then
      return
    end
    for i, met in ipairs(mets) do
      if met.site == "brain" then
        out.warn{
          id = "local_brain_mets_mdt",
          text = "Brain metastasis (#" .. i .. "): discuss at the neuro-oncology MDT before starting systemic therapy (local policy).",
        }
        out.note("local_brain_mets_mdt: brain metastasis #" .. i)
        return
      end
    end
  end,
}
