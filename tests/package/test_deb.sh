#!/usr/bin/env bash
# test_deb.sh: build the Debian package (cpack -G DEB), install it with
# dpkg -i, then run pathwise eval (facts and FHIR), check, serve and client from the
# installed files only, with the source tree (and the build tree in it)
# hidden, and remove the package. Needs root; changes the system (installs
# and purges the package pathwise; the service user stays, as Debian
# leaves it). Run by `bash quickstart.sh test` (README) and so by .ci/run.
#
#   bash tests/package/test_deb.sh [BUILD_DIR]     (default: build-deb)
#
# The source tree is hidden with a private mount namespace (unshare -m, a
# tmpfs over it) where the kernel allows it, else renamed for the run and
# put back on exit.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build-deb}
fail() { echo "test_deb: FAIL: $*" >&2; exit 1; }
[[ $(id -u) == 0 ]] || fail "needs root (dpkg -i)"

cmake -S "$root" -B "$build" -DCMAKE_INSTALL_PREFIX=/usr -DPW_WERROR=ON >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
rm -f "$build"/pathwise_*.deb
(cd "$build" && cpack -G DEB >/dev/null 2>&1) || fail "cpack -G DEB"
deb=$(ls "$build"/pathwise_*.deb)
depends=$(dpkg-deb -f "$deb" Depends)
# Lua and lua-cjson are linked statically from third_party/ by default: the
# package then needs neither; a -DPW_SYSTEM_LUA=ON build needs both.
want="libuv1 libc6"
# (read whole first: a missing objdump fails here, and grep -q closing the
# pipe early cannot, under pipefail, pass for "statically linked")
dynamic=$(objdump -p "$build/pathwise") || fail "objdump -p $build/pathwise"
if grep -q 'NEEDED.*liblua' <<<"$dynamic"; then
  want="$want liblua5.4-0 lua-cjson"
else
  [[ $depends != *liblua5.4* ]] || fail "Lua is linked statically, yet Depends names liblua5.4: $depends"
fi
for p in $want; do
  [[ ", $depends" == *", $p "* || ", $depends," == *", $p,"* ]] || fail "Depends lacks $p: $depends"
done
echo "test_deb: $(basename "$deb"): Depends: $depends; Installed-Size: $(dpkg-deb -f "$deb" Installed-Size) KiB"

dpkg --purge pathwise >/dev/null 2>&1 || true
dpkg -i "$deb" >/dev/null
trap 'dpkg --purge pathwise >/dev/null 2>&1 || true' EXIT
getent passwd pathwise >/dev/null || fail "postinst did not create the user pathwise (sysusers.d)"
getent group pathwise-clients >/dev/null || fail "postinst did not create the group pathwise-clients"
[[ -d /var/lib/pathwise && $(stat -c %U:%a /var/lib/pathwise) == pathwise:700 ]] ||
  fail "tmpfiles.d: /var/lib/pathwise is not pathwise:700"

if command -v systemd-analyze >/dev/null; then
  out=$(systemd-analyze verify /usr/lib/systemd/system/pathwise.service /usr/lib/systemd/system/pathwise.socket 2>&1) ||
    fail "systemd-analyze verify: $out"
  [[ -z $out ]] || fail "systemd-analyze verify: $out"
fi
logrotate --debug /etc/logrotate.d/pathwise >/dev/null 2>&1 || fail "logrotate refuses /etc/logrotate.d/pathwise"
[[ $(dpkg-query -W -f='${Conffiles}' pathwise) == *"/etc/logrotate.d/pathwise"* ]] ||
  fail "/etc/logrotate.d/pathwise is not a conffile"

work=$(mktemp -d)
cp "$root/examples/index_case.json" "$work/case.json"
cp "$root/tests/data/fhir/colorectal/index_case.json" "$work/bundle.json"
want_sha=$(sha256sum /usr/share/pathwise/scripts/mrc_second_line.lua | cut -d' ' -f1)

# Runs with the source tree out of reach: every file comes from the package.
cat > "$work/installed.sh" <<'INNER'
set -euo pipefail
root=$1 work=$2 want_sha=$3
fail() { echo "test_deb: FAIL: $*" >&2; exit 1; }
[[ ! -e $root/scripts/mrc_second_line.lua ]] || fail "the source tree is still reachable"
cd "$work"
unset PATHWISE_PROTOCOL PATHWISE_PATH PATHWISE_ADAPTER
/usr/bin/pathwise --version | head -1 | grep -qx 'pathwise [0-9.]*' || fail "--version"
/usr/bin/pathwise eval case.json > eval.json || fail "eval exit $?"
python3 -c 'import json,sys; r=json.load(open("eval.json")); sys.exit(r["protocol"]["sha256"]!=sys.argv[1] or not r["recommendations"])' "$want_sha" ||
  fail "eval did not use the installed protocol"
/usr/bin/pathwise check /usr/share/pathwise/scripts/mrc_second_line.lua > check.txt || fail "check exit $?"
# an extension outside every scripts dir finds its base in /usr/share/pathwise/scripts
mkdir -p site
printf 'return { extends = "mrc_second_line", id = "site_ext", version = "1.0.0-site", title = "Site extension" }\n' > site/ext.lua
/usr/bin/pathwise check site/ext.lua > ext-check.txt || fail "check of an extension exit $?: $(tail -3 ext-check.txt)"
grep -qx "base sha256 $want_sha" ext-check.txt || fail "the extension's base is not the installed one: $(head -4 ext-check.txt)"
/usr/bin/pathwise eval --protocol site/ext.lua case.json > ext.json || fail "eval of an extension exit $?"
python3 -c 'import json,sys; r=json.load(open("ext.json")); sys.exit(r["protocol"]["extends"]["sha256"]!=sys.argv[1])' "$want_sha" ||
  fail "eval of the extension did not use the installed base"
# the FHIR adapter comes from /usr/share/pathwise/plugins/fhir (the source tree is hidden)
/usr/bin/pathwise eval --from fhir --as-of 2026-06-01 --format json bundle.json > fhir.json ||
  fail "eval --from fhir exit $?"
python3 -c 'import json,sys; r=json.load(open("fhir.json")); sys.exit(r["input"]["from"]!="fhir" or r["patient_id"]!="index-001" or not r["recommendations"])' ||
  fail "eval --from fhir gave no result for the bundle"
/usr/bin/pathwise serve --socket "$work/s.sock" --log "$work/log.jsonl" --workers 1 2> serve.err &
pid=$!
for _ in $(seq 100); do [[ -S $work/s.sock ]] && break; sleep 0.05; done
[[ -S $work/s.sock ]] || fail "serve did not create its socket: $(cat serve.err)"
/usr/bin/pathwise client --socket "$work/s.sock" case.json > client.json || fail "client exit $?"
cmp -s client.json eval.json || fail "the server's answer differs from eval"
kill -TERM "$pid"
rc=0; wait "$pid" || rc=$?
[[ $rc == 0 ]] || fail "serve exit $rc after SIGTERM: $(cat serve.err)"
[[ $(wc -l < log.jsonl) == 1 ]] || fail "decision log: $(wc -l < log.jsonl) records, want 1"
echo "test_deb: eval, eval --from fhir, check, an extension of the installed base, serve+client+SIGTERM ran from the installed files"
INNER
if unshare --mount --propagation private true 2>/dev/null; then
  unshare --mount --propagation private bash -c \
    'mount -t tmpfs -o size=1m pathwise-hidden "$1" && exec bash "$4/installed.sh" "$@"' \
    _ "$root" "$work" "$want_sha" "$work"
  how="hidden under a tmpfs in a private mount namespace"
else
  mv "$root" "$root.away-$$"
  trap 'mv "$root.away-$$" "$root"; dpkg --purge pathwise >/dev/null 2>&1 || true' EXIT
  bash "$work/installed.sh" "$root" "$work" "$want_sha"
  mv "$root.away-$$" "$root"
  trap 'dpkg --purge pathwise >/dev/null 2>&1 || true' EXIT
  how="renamed"
fi
echo "test_deb: (source tree $how)"

dpkg --purge pathwise >/dev/null
[[ ! -e /usr/bin/pathwise && ! -e /usr/share/pathwise ]] || fail "files left after dpkg --purge"
rm -rf "$work"
echo "test_deb: ok"
