#!/usr/bin/env bash
# validate_examples.sh JSONSCHEMA ROOT: every examples/*.json and
# examples/cases/*.json is valid against docs/schema/facts.schema.json,
# and documents the schema must refuse are refused (so the check can fail).
set -u
js=$1 root=$2
schema=$root/docs/schema/facts.schema.json
pass=0 fail=0
ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }

if ! command -v "$js" >/dev/null 2>&1; then
  echo "FAIL: the jsonschema command is missing (Debian package python3-jsonschema)" >&2
  echo "0 passed, 1 failed"
  exit 1
fi
[[ -f $schema ]] || { echo "FAIL: $schema is missing" >&2; echo "0 passed, 1 failed"; exit 1; }

shopt -s nullglob
files=("$root"/examples/*.json "$root"/examples/cases/*.json)
((${#files[@]} >= 12)) && ok || bad "expected at least 12 example files, found ${#files[@]}"
for f in "${files[@]}"; do
  if out=$("$js" -i "$f" "$schema" 2>&1); then ok; else bad "$f: $out"; fi
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
refused=(
  '{"ecog": 7}'
  '{"ecog": 2.5}'
  '{"ecgo": 1}'
  '{"primary": {"site": "sigmoid"}}'
  '{"metastases": [{"site": "bone", "symptoms": ["fever"]}]}'
  '{"prior_regimens": [{"name": "FOLFOX", "line": 0}]}'
  '{"planned_surgery_in_days": -1}'
  '{"molecular": {"kras": "positive"}}'
  '{"prior_regimens": {}}'
  '{"primary": []}'
  '{"metastases": [{"site": "liver", "spine": true}]}'
  '{"metastases": [{"spine": false}]}'
  '{"primary": {"site": "sigmoid colon"}}'
  '{"ecog": "Unknown"}'
)
accepted=(
  '{"ecog": "unknown", "primary": "unknown", "prior_regimens": "unknown", "planned_surgery_in_days": "unknown"}'
  '{"primary": {"site": "colon"}, "metastases": [{"site": "bone", "spine": true}, {"site": "liver"}]}'
  '{"primary": {"site": "non_colorectal"}, "metastases": [{"site": "bone", "spine": "unknown"}]}'
  '{"prior_radiation_sites": ["left groin", "pelvis", "Groin (L)"], "planned_surgery_in_days": null}'
  '{"prior_regimens": [], "primary": {}, "metastases": [{"site": "liver", "spine": null}]}'
)
i=0
for doc in "${refused[@]}"; do
  i=$((i + 1))
  printf '%s\n' "$doc" > "$tmp/bad$i.json"
  if "$js" -i "$tmp/bad$i.json" "$schema" >/dev/null 2>&1; then bad "schema accepted $doc"; else ok; fi
done
for doc in "${accepted[@]}"; do
  i=$((i + 1))
  printf '%s\n' "$doc" > "$tmp/good$i.json"
  if out=$("$js" -i "$tmp/good$i.json" "$schema" 2>&1); then ok; else bad "schema refused $doc: $out"; fi
done
echo "$pass passed, $fail failed"
((fail == 0))
