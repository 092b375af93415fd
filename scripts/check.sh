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

pass=0 fail=0 skip=0
# Adds the counts of meson test's closing summary (subtests of TAP tests count one each).
tally() {
  local log=$1 n
  n=$(awk '/^Ok:/{print $2}' "$log"); pass=$((pass + ${n:-0}))
  n=$(awk '/^Expected Fail:/{print $3}' "$log"); pass=$((pass + ${n:-0}))
  for k in 'Fail:' 'Unexpected Pass:' 'Timeout:'; do
    n=$(awk -v k="$k" 'index($0, k) == 1 {print $NF}' "$log"); fail=$((fail + ${n:-0}))
  done
  n=$(awk '/^Skipped:/{print $2}' "$log"); skip=$((skip + ${n:-0}))
}

status=0
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
echo "== tests (build: $build)"
meson test -C "$build" --no-rebuild --print-errorlogs 2>&1 | tee "$logs/main" || status=1
tally "$logs/main"
echo "== unit tests under AddressSanitizer + UndefinedBehaviorSanitizer (build: $asan)"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  meson test -C "$asan" --no-rebuild --print-errorlogs --suite unit 2>&1 | tee "$logs/asan" || status=1
tally "$logs/asan"

((fail > 0)) && status=1
((pass + fail == 0)) && { echo "check: no test ran"; status=1; }
echo "$pass passed, $fail failed, $skip skipped"
exit $status
