#!/bin/sh
# Regenerate this example's cohort and its expected diff against the
# default protocol (both committed; tests/integration/experiments checks
# that they still come out byte for byte). Run after an intended change to
# either protocol or to the plugin, then review `git diff`:
#
#   examples/local-protocol/regenerate.sh [path/to/pathwise]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
pw=${1:-$root/build/pathwise}
"$pw" cohort --n 1000 --seed 2024 > "$here/cohort.jsonl"
"$pw" diff --a "$root/scripts/mrc_second_line.lua" \
  --b "$here/mrc_second_line_local.lua" --b-plugin "$root/plugins/local_bev_surgery_60d.lua" \
  "$here/cohort.jsonl" > "$here/diff_vs_default.txt"
echo "wrote $here/cohort.jsonl and $here/diff_vs_default.txt"
