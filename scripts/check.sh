#!/usr/bin/env bash
# check.sh: runs every test (normal build, then unit tests under ASan+UBSan) and prints one summary line.
# Usage: check.sh BUILD_DIR ASAN_BUILD_DIR
set -uo pipefail
build=${1:-build}
asan=${2:-build-asan}

[[ -f $asan/build.ninja ]] ||
  meson setup "$asan" -Dkernel=false -Db_sanitize=address,undefined -Db_lundef=false >/dev/null ||
  { echo "check: cannot configure $asan"; echo "0 passed, 1 failed"; exit 1; }
if ! ninja -C "$asan" --quiet; then
  echo "check: sanitizer build failed"; echo "0 passed, 1 failed"; exit 1
fi

status=0
echo "== tests (build: $build)"
meson test -C "$build" --no-rebuild --print-errorlogs || status=1
echo "== unit tests under AddressSanitizer + UndefinedBehaviorSanitizer (build: $asan)"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  meson test -C "$asan" --no-rebuild --print-errorlogs --suite unit || status=1

# Every case of every TAP test counts, not just every test program.
read -r pass fail skip < <(python3 "$(dirname "$0")/tally.py" \
  "$build/meson-logs/testlog.json" "$asan/meson-logs/testlog.json")
((fail > 0)) && status=1
((pass + fail == 0)) && { echo "check: no test ran"; status=1; }
echo "$pass passed, $fail failed, $skip skipped"
exit $status
