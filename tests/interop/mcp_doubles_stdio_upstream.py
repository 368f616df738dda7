"""A stdio MCP upstream that reads every JSON number as a double, as
JavaScript's JSON.parse (and many decoders) do, and checks nothing about
ids: 2^53 and 2^53 + 1 are one id to it. For the gateway's stdio id test
(tests/it/gateway_stdio.rs). Standard library only.

    python mcp_doubles_stdio_upstream.py

Newline-delimited JSON-RPC on stdin/stdout. Tools: `search_issues` and
`delete_repo` answer at once; `wait` answers after `arguments.seconds`
(so another request can be answered while it is in flight). Numbers are
written back as JavaScript writes them: a whole double without a fraction.
"""

import json
import sys
import threading

TOOLS = [
    {"name": "search_issues", "inputSchema": {"type": "object"}},
    {"name": "delete_repo", "inputSchema": {"type": "object"}},
    {"name": "wait", "inputSchema": {"type": "object"}},
]

out = threading.Lock()


def js(value):
    """A decoded value with whole doubles written as integers (JSON.stringify)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: js(v) for k, v in value.items()}
    if isinstance(value, list):
        return [js(v) for v in value]
    return value


def write(message):
    with out:
        sys.stdout.write(json.dumps(js(message)) + "\n")
        sys.stdout.flush()


def answer(id_, result):
    write({"jsonrpc": "2.0", "id": id_, "result": result})


def handle(message):
    method = message.get("method")
    id_ = message.get("id")
    if id_ is None:
        return
    params = message.get("params") or {}
    if method == "initialize":
        answer(id_, {
            "protocolVersion": params.get("protocolVersion", "2025-11-25"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "doubles-stdio-upstream", "version": "0"},
        })
    elif method == "tools/list":
        answer(id_, {"tools": TOOLS})
    elif method == "tools/call":
        name = params.get("name")
        text = {"content": [{"type": "text", "text": f"ran {name}"}]}
        if name == "wait":
            seconds = (params.get("arguments") or {}).get("seconds", 1)
            threading.Timer(seconds, answer, (id_, text)).start()
        else:
            answer(id_, text)
    elif method == "ping":
        answer(id_, {})
    else:
        write({"jsonrpc": "2.0", "id": id_, "error": {"code": -32601, "message": "method not found"}})


def main():
    for line in sys.stdin:
        if line.strip():
            handle(json.loads(line, parse_int=float))


if __name__ == "__main__":
    sys.exit(main())
