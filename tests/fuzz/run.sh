#!/bin/sh
# Run each libFuzzer target for a bounded time (not part of ctest; CI only
# replays the corpora). Needs clang and libFuzzer (Debian: clang,
# libclang-rt-14-dev).
#
#   tests/fuzz/run.sh [TARGET...]        default: gate eval rpc output
#   PW_FUZZ_SECONDS=60   seconds per target
#   PW_FUZZ_DIR=build-fuzz   where binaries, working corpora and crashes go
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
cd "$root"
srcs=$(ls engine/base/*.c engine/core/*.c engine/cli/*.c engine/server/*.c engine/experiments/*.c | grep -v -E '/(main|client)\.c$')
flags="-std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -D_GNU_SOURCE
  -DPW_DEFAULT_PROTOCOL=\"$root/scripts/mrc_second_line.lua\" -DPW_SOURCE_DIR=\"$root\"
  -Iengine/include -Iengine/base -Iengine/core -Iengine/cli -Iengine/server $(pkg-config --cflags lua5.4 libuv)"
libs="$(pkg-config --libs lua5.4 lua5.4-cjson libuv 2>/dev/null || echo -llua5.4 -llua5.4-cjson -luv) -lm -lpthread"
targets=${*:-gate eval rpc output}
status=0
for t in $targets; do
  case $t in
    gate) maxlen=512 ;; eval) maxlen=2048 ;; rpc) maxlen=1024 ;; output) maxlen=512 ;;
    *) echo "run.sh: unknown target $t" >&2; exit 64 ;;
  esac
  bin=$out/fuzz_$t
  echo "== fuzz_$t: building"
  # shellcheck disable=SC2086
  $cc $flags tests/fuzz/fuzz_$t.c $srcs -o "$bin" $libs
  corpus=$out/corpus-$t
  mkdir -p "$corpus"
  if [ -d tests/fuzz/corpus/$t ]; then cp tests/fuzz/corpus/$t/* "$corpus"/ 2>/dev/null || true; fi
  if [ "$t" = gate ] || [ "$t" = eval ]; then
    for f in examples/index_case.json examples/cases/*.json tests/bench/cases/*.json; do
      { printf '\001'; cat "$f"; } > "$corpus/seed-$(basename "$f")"
    done
  fi
  echo "== fuzz_$t: $secs s"
  if ! (cd "$out" && ASAN_OPTIONS=detect_leaks=1 "$bin" -max_total_time="$secs" -max_len=$maxlen \
        -artifact_prefix="$out/crash-$t-" -print_final_stats=1 "$corpus" 2>"$out/fuzz_$t.log"); then
    echo "== fuzz_$t: FAILED, see $out/fuzz_$t.log and $out/crash-$t-*"
    tail -30 "$out/fuzz_$t.log"
    status=1
  else
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb|cov:" "$out/fuzz_$t.log" | tail -3
  fi
done
exit $status
