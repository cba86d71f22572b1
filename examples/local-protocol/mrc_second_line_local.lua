-- mrc_second_line_local.lua: an institution's variant of the default
-- protocol. It extends scripts/mrc_second_line.lua (loaded by the host) and
-- names only what it changes; everything else is the default's.
local function index_case(changes) -- the guideline's patient, changed
  local f = { patient_id = "index-001", ecog = 1, metastatic = true,
    primary = { site = "rectum", resected = true, prior_pelvic_radiation = true, symptoms = {} },
    prior_regimens = { { name = "FOLFOX", line = 1, outcome = "progression" } },
    neuropathy = { grade = 1, persistent = false }, prior_radiation_sites = { "pelvis" },
    molecular = { kras = "unknown", nras = "unknown", braf_v600e = "unknown", msi = "unknown" },
    metastases = { { site = "bone", symptoms = { "pain" } }, { site = "inguinal_nodes", symptoms = {} },
      { site = "retroperitoneal", symptoms = {} } } }
  for k, v in pairs(changes) do f[k] = v end
  return f
end

return {
  extends = "mrc_second_line",
  id = "mrc_second_line_local",
  version = "1.0.0-local.1",
  title = "Metastatic rectal cancer, second line (institution variant: 8 Gy single fraction, panitumumab)",
  references = { [6] = "Institution policy (example): single 8 Gy fraction for uncomplicated painful bone metastases; panitumumab as the preferred anti-EGFR agent" },
  sentences = {
    local_bone = { { 6 }, "Local policy: uncomplicated painful bone metastases (no fracture risk) receive a single 8 Gy fraction." },
    local_egfr = { { 6 }, "Local policy: panitumumab is the preferred anti-EGFR agent." },
  },
  policy = {
    -- 1. Panitumumab is the anti-EGFR agent offered for RAS wild type.
    anti_egfr = { "panitumumab" },
    anti_egfr_label = "EGFR inhibitor, local preferred agent",
    anti_egfr_rationale = " Panitumumab is the local preferred anti-EGFR agent.",
    anti_egfr_sentences = { "egfr", "local_egfr" },
    -- 2. A single 8 Gy fraction for painful bone metastases without fracture risk.
    rt_dose = function(site, met, spec)
      for _, s in ipairs(met.symptoms) do if s == "fracture_risk" then site = nil end end
      if site ~= "bone" then return spec.dose, { spec.sentence }, spec.evidence end
      local cited = { "rt_bone", "seq_rt", "local_bone" }
      return "single 8 Gy fraction, local policy for uncomplicated bone pain", cited, cited
    end,
  },
  examples = {
    { name = "index case: single 8 Gy fraction for the painful bone site", facts = index_case{},
      expect = { recommend = { "FOLFIRI+bevacizumab", "palliative_rt_bone", "zoledronic_acid", "denosumab", "ras_testing" },
        not_recommend = { "palliative_rt_inguinal", "palliative_rt_retroperitoneal" }, missing = { "molecular.kras", "molecular.nras" } } },
    { name = "bone site at risk of fracture keeps radiotherapy",
      facts = index_case{ metastases = { { site = "bone", symptoms = { "pain", "fracture_risk" } } } },
      expect = { recommend = { "palliative_rt_bone" } } },
    { name = "RAS wild type: panitumumab is the anti-EGFR alternative",
      facts = index_case{ molecular = { kras = "wild_type", nras = "wild_type", braf_v600e = "wild_type", msi = "mss" } },
      expect = { recommend = { "FOLFIRI+bevacizumab", "FOLFIRI+panitumumab" }, not_recommend = { "FOLFIRI+cetuximab" } } },
    { name = "still bound by the kernel: KRAS mutant, proposed panitumumab blocked",
      facts = index_case{ molecular = { kras = "mutant", nras = "unknown", braf_v600e = "unknown", msi = "unknown" }, proposed_orders = { "panitumumab" } },
      expect = { blocked = { "panitumumab" }, not_recommend = { "FOLFIRI+panitumumab" } } },
  },
}
