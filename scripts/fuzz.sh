#!/usr/bin/env bash
# Runs each fuzz target for a bounded time (not part of CI).
#
#   scripts/fuzz.sh [seconds per target, default 120]
#
# cargo-fuzz needs a nightly compiler; the machine's stable one is used with RUSTC_BOOTSTRAP=1.
# Findings land in fuzz/artifacts/<target>/ and the script exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
SECONDS_EACH=${1:-120}
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
export RUSTC_BOOTSTRAP=1
status=0
for target in session_file cookie_path; do
  echo "== $target: $SECONDS_EACH s"
  cargo fuzz run "$target" -- -max_total_time="$SECONDS_EACH" -max_len=8192 2>&1 | tail -n 4 || status=1
done
exit $status
