#!/bin/sh
# Soak `pathwise serve` (not in ctest): mixed valid, invalid and adversarial
# traffic (tests/soak/soak_protocol.lua) with reloads, file-watcher reloads
# and kill -9 of workers; prints requests, replies by kind, and each
# process's RSS at the start and the end; exits 1 if a request went
# unanswered, the server died or its memory grew.
#   PW_SOAK_SECONDS=600 (default) tests/soak/run.sh [--pathwise BIN] [--clients N] [--workers N]
root=$(cd "$(dirname "$0")/../.." && pwd)
exec python3 "$root/tests/soak/soak.py" --pathwise "$root/build/pathwise" --root "$root" "$@"
