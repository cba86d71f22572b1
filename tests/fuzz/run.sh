#!/bin/sh
# Run each libFuzzer target for a bounded time (not part of ctest; CI only
# replays the corpora). Needs clang and libFuzzer (Debian: clang,
# libclang-rt-14-dev) and what the normal build needs.
#
#   tests/fuzz/run.sh [TARGET...]        default: gate eval rpc output
#   PW_FUZZ_SECONDS=60   seconds per target
#   PW_FUZZ_DIR=build-fuzz   the CMake build (PW_FUZZ), working corpora, crashes
#   PW_FUZZ_JOBS=2       build parallelism; CC_FUZZ=clang  the compiler
#
# Seeds: tests/fuzz/corpus/<target>/ and, for gate and eval, the examples
# behind an option byte. New inputs stay in $PW_FUZZ_DIR/corpus-<target>;
# a crash is written as $PW_FUZZ_DIR/crash-<target>-<sha1> and the script
# exits 1. Copy a fixed crash into tests/fuzz/corpus/<target>/.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
secs=${PW_FUZZ_SECONDS:-60}
out=${PW_FUZZ_DIR:-$root/build-fuzz}
cc=${CC_FUZZ:-clang}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$root"
targets=${*:-gate eval rpc output}
for t in $targets; do
  case $t in gate|eval|rpc|output) ;; *) echo "run.sh: unknown target $t" >&2; exit 64 ;; esac
done
# The targets are built by CMake (-DPW_FUZZ=ON, tests/fuzz/CMakeLists.txt),
# so they link what the engine links (vendored Lua with its patches,
# llhttp, libcrypto, the generated headers) and never fall out of date.
echo "== configuring $out (clang, PW_FUZZ, ASan+UBSan)"
cmake -S "$root" -B "$out" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DPW_SANITIZE=ON -DPW_FUZZ=ON >"$out/configure.log" 2>&1 \
  || { tail -20 "$out/configure.log"; exit 2; }
echo "== building $(echo "$targets" | sed 's/\([a-z]*\)/fuzz_\1/g')"
# shellcheck disable=SC2046
cmake --build "$out" -j"${PW_FUZZ_JOBS:-2}" $(for t in $targets; do printf ' --target fuzz_%s' "$t"; done) \
  >"$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 2; }
status=0
for t in $targets; do
  case $t in gate) maxlen=512 ;; eval) maxlen=2048 ;; rpc) maxlen=1024 ;; output) maxlen=512 ;; esac
  bin=$out/tests/fuzz/fuzz_$t
  corpus=$out/corpus-$t
  mkdir -p "$corpus"
  if [ -d "tests/fuzz/corpus/$t" ]; then cp "tests/fuzz/corpus/$t"/* "$corpus"/ 2>/dev/null || true; fi
  if [ "$t" = gate ] || [ "$t" = eval ]; then
    for f in examples/index_case.json examples/cases/*.json tests/bench/cases/*.json; do
      { printf '\001'; cat "$f"; } > "$corpus/seed-$(basename "$f")"
    done
  fi
  echo "== fuzz_$t: $secs s"
  if ! (cd "$out" && ASAN_OPTIONS=detect_leaks=1 "$bin" -max_total_time="$secs" -max_len="$maxlen" \
        -artifact_prefix="$out/crash-$t-" -print_final_stats=1 "$corpus" 2>"$out/fuzz_$t.log"); then
    echo "== fuzz_$t: FAILED, see $out/fuzz_$t.log and $out/crash-$t-*"
    tail -30 "$out/fuzz_$t.log"
    status=1
  else
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb|cov:" "$out/fuzz_$t.log" | tail -3
  fi
done
exit $status
