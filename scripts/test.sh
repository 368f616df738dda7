#!/usr/bin/env bash
# The full test suite, from a fresh clone: prepares the interop peer (a Python
# virtualenv with the pinned RFC 9421 library and the MCP SDK), checks the peer against the
# RFC vectors, then runs every Rust test. Nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/interop-venv
if [ ! -x "$venv/bin/python" ] || ! cmp -s tests/interop/requirements.txt "$venv/.requirements"; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/interop/requirements.txt
  cp tests/interop/requirements.txt "$venv/.requirements"
fi
"$venv/bin/python" tests/interop/peer.py selftest --vectors tests/vectors
# The gateway tests' upstream MCP server needs the official SDK (`mcp`).
"$venv/bin/python" -c "import mcp.server.mcpserver"
export GNAPD_INTEROP_PYTHON="$PWD/$venv/bin/python"

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --no-fail-fast
else
  cargo test --locked --no-fail-fast
fi
