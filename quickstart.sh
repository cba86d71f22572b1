#!/usr/bin/env bash
# quickstart.sh: from a fresh Debian 12 machine to pathwise in one command.
#
#   bash quickstart.sh demo    install dependencies, build, evaluate the
#                              guideline's index case and print the report
#   bash quickstart.sh test    install dependencies, build, run every test,
#                              then build the Debian package, install it,
#                              run it with the source tree hidden, purge it
#
# Run as root (or with sudo): it installs Debian packages with apt-get.
# Set PW_NO_APT=1 to skip the install step when the packages are present.
set -euo pipefail
cd "$(dirname "$0")"

PACKAGES=(build-essential cmake pkg-config liblua5.4-dev lua5.4 lua-cjson lua-cjson-dev
          libuv1-dev lua-busted python3 socat valgrind
          help2man dpkg-dev file logrotate python3-jsonschema python3-distributed
          node-llhttp libssl-dev curl)

install_deps() {
  [[ ${PW_NO_APT:-0} == 1 ]] && return 0
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  echo "quickstart: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
}

build() {
  local werror=OFF
  [[ ${CI:-} == true ]] && werror=ON
  cmake -S . -B build -DPW_WERROR="$werror" >/dev/null
  cmake --build build -j"$(nproc)" >/dev/null
}

case "${1:-}" in
  demo)
    install_deps
    build
    ./build/pathwise eval --format text examples/index_case.json
    ;;
  test)
    install_deps
    build
    # The Debian package: build, dpkg -i, run from the installed files with
    # the source tree hidden, purge. It changes the system, so root only.
    # It runs first so that ctest's summary closes the run.
    if [[ $(id -u) == 0 ]]; then
      bash tests/package/test_deb.sh
    else
      echo "quickstart: package test skipped (needs root: dpkg -i)" >&2
    fi
    (cd build && ctest --output-on-failure -j"$(nproc)")
    ;;
  *)
    echo "usage: bash quickstart.sh demo|test" >&2
    exit 64
    ;;
esac
