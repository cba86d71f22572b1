#!/bin/sh
# Soak `pathwise serve` (not in ctest): mixed valid, invalid and adversarial
# traffic (tests/soak/soak_protocol.lua) with reloads, file-watcher reloads
# and kill -9 of workers, and abusive socket clients; prints requests,
# replies and errors by kind, each process's RSS and the supervisor's heap
# in use at the start and the end,
# the workers' Lua state bytes and the decision log's record count; exits 1
# if a request went unanswered, the server died, memory grew past the
# bounds soak.py states, or the log has a bad line.
#   PW_SOAK_SECONDS=600 (default) tests/soak/run.sh [--pathwise BIN] [--clients N] [--workers N]
root=$(cd "$(dirname "$0")/../.." && pwd)
exec python3 "$root/tests/soak/soak.py" --pathwise "$root/build/pathwise" --root "$root" "$@"
