"""A stdio MCP server on the official Python SDK (`mcp` 2.x, `MCPServer`) for
the gateway's `env` credential test (tests/it/gateway_stdio.rs).

    python mcp_stdio_upstream.py

Speaks MCP over stdin/stdout. Its one tool, `environment`, reports the names
of the variables in its environment and a SHA-256 of each value, never a
value itself, so the test can check what reached the process while the
secret itself appears nowhere but in the child's memory. It writes one line
to stderr when it starts (the gateway logs a child's stderr at debug level).
"""

import hashlib
import os
import sys

from mcp.server.mcpserver import MCPServer

server = MCPServer("gnapd-test-stdio-upstream", log_level="WARNING")


@server.tool()
def environment() -> dict:
    """The environment's variable names, each with the SHA-256 (hex) of its value."""
    return {name: hashlib.sha256(value.encode()).hexdigest() for name, value in sorted(os.environ.items())}


def main() -> None:
    print("gnapd-test-stdio-upstream: ready", file=sys.stderr, flush=True)
    server.run("stdio")


if __name__ == "__main__":
    sys.exit(main())
