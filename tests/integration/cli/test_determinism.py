#!/usr/bin/env python3
"""The same facts give the same answer in every process (issue 10).

A protocol that recommends from pairs() over a table of biologics and
tests, and warns from pairs() over a table of notes, is evaluated in 30
fresh `pathwise eval` processes; every run must print the same bytes.
Lua's own table order depends on a per-process hash seed and on addresses,
so without the sandbox's fixed-order pairs the runs differ.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import unittest

ARGS = None
RUNS = 30

PROTOCOL = r'''
local BIOLOGICS = { bevacizumab = "anti-VEGF", cetuximab = "anti-EGFR", panitumumab = "anti-EGFR" }
local TESTS = { ras_testing = 1, braf_testing = 2, msi_testing = 3, ct_reassessment = 4 }
local NOTES = {}
for i = 1, 24 do NOTES["note_" .. string.char(96 + i)] = i end
return {
  id = "pairs_order", version = "1", title = "recommends from pairs()",
  references = { [1] = "test" },
  applies = function() return true end,
  evaluate = function(facts, out)
    out.pathway("p", { rationale = "r", citations = { 1 } })
    for agent, class in pairs(BIOLOGICS) do
      out.recommend{ id = "FOLFIRI+" .. agent, text = agent .. " (" .. class .. ")", citations = { 1 } }
    end
    for id in pairs(TESTS) do
      out.recommend{ id = id, text = id, citations = { 1 } }
    end
    local seen = {}
    for k, v in pairs(NOTES) do seen[#seen + 1] = k .. "=" .. v end
    out.warn{ id = "order", text = table.concat(seen, " "), citations = { 1 } }
  end,
  examples = {},
}
'''

FACTS = ('{"patient_id":"det","ecog":1,"metastatic":true,'
         '"molecular":{"kras":"wild_type","nras":"wild_type","braf_v600e":"wild_type","msi":"mss"},'
         '"planned_surgery_in_days":null,"prior_regimens":[{"name":"FOLFOX","line":1,"outcome":"progression"}]}')


def write_temp(text, suffix):
    f = tempfile.NamedTemporaryFile("w", suffix=suffix, delete=False)
    f.write(text)
    f.close()
    return f.name


class SameAnswer(unittest.TestCase):
    def run_many(self, *argv):
        outs = set()
        for _ in range(RUNS):
            p = subprocess.run([ARGS.pathwise, *argv], capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
            outs.add(p.stdout)
        return outs

    def test_pairs_protocol_same_bytes_in_every_process(self):
        proto, facts = write_temp(PROTOCOL, ".lua"), write_temp(FACTS, ".json")
        try:
            for fmt in ("json", "text"):
                outs = self.run_many("eval", "--format", fmt, "--protocol", proto, facts)
                self.assertEqual(len(outs), 1, "%s output differs between processes (%d variants)" % (fmt, len(outs)))
            out = outs.pop()
            # the biologics conflict (not offered as alternatives): all are blocked, whatever came first
            self.assertIn("FOLFIRI+bevacizumab (protocol) by single_biologic", out)
            self.assertIn("FOLFIRI+cetuximab (protocol) by single_biologic", out)
            self.assertIn("note_a=1 note_b=2 note_c=3", out)
        finally:
            os.unlink(proto)
            os.unlink(facts)

    def test_default_protocol_same_bytes_in_every_process(self):
        case = os.path.join(ARGS.root, "examples", "cases", "ras_wild_type.json")
        self.assertEqual(len(self.run_many("eval", "--format", "json", case)), 1)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--pathwise", required=True)
    ap.add_argument("--root", required=True)
    ARGS, rest = ap.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=1)
