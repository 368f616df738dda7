#!/usr/bin/env bash
# scale: gnapd holding many live tokens (issue 19). Builds gnapd (release)
# and the bench, then runs it; arguments go to the bench (see --help), e.g.
#   benches/scale/run.sh                         # 1,000,000 tokens
#   benches/scale/run.sh --tokens 200000
#   benches/scale/run.sh --sweep --run-for 300   # the sweeper under short-lived agents
# The table is saved under <target>/scale/ beside the JSON the bench writes.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/../.."

target_dir="$(cargo metadata --format-version 1 --no-deps 2>/dev/null \
  | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
target_dir="${target_dir:-${CARGO_TARGET_DIR:-$PWD/target}}"

echo "== building gnapd (release)"
cargo build --release --locked --bin gnapd

echo "== building the bench"
cargo bench --locked --bench scale --no-run

mkdir -p "$target_dir/scale"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
out="$target_dir/scale/run-$stamp.txt"
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1 \
    && ! git diff --quiet HEAD -- src Cargo.toml Cargo.lock; then
    commit="$commit (src/, Cargo.toml or Cargo.lock modified)"
  fi
  echo "gnapd commit: $commit"
  echo "kernel: $(uname -r)"
} | tee "$out"
cargo bench --locked --bench scale -- \
  --gnapd "${GNAPD_BIN:-$target_dir/release/gnapd}" \
  --json "$target_dir/scale/run-$stamp.json" \
  "$@" | tee -a "$out"
echo "saved: $out"
