#!/bin/sh
# Run each C unit test under valgrind memcheck; any report fails (issue 12:
# "CI runs the C unit tests once under valgrind memcheck with zero
# reports"). Registered by tests/fault/CMakeLists.txt only without
# PW_SANITIZE (ASan and valgrind cannot share a process).
#   valgrind.sh TEST...
command -v valgrind >/dev/null 2>&1 || { echo "valgrind.sh: valgrind is not installed (quickstart.sh installs it)"; exit 1; }
[ $# -gt 0 ] || { echo "valgrind.sh: no tests given"; exit 1; }
status=0
for t in "$@"; do
  [ -x "$t" ] || { echo "valgrind.sh: missing $t"; status=1; continue; }
  if valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect,possible \
       --errors-for-leak-kinds=definite,indirect,possible --track-origins=yes "$t" >/dev/null 2>"$t.valgrind"; then
    echo "valgrind: $(basename "$t"): no reports"
  else
    echo "valgrind: $(basename "$t"): FAILED"
    cat "$t.valgrind"
    status=1
  fi
done
exit $status
