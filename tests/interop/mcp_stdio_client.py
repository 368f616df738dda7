#!/usr/bin/env python3
"""The official MCP SDK's stdio client (Python `mcp` 2.x) launching
`gnapd connect`, as Claude Desktop, VS Code or any MCP client would.

    mcp_stdio_client.py --command /path/to/gnapd --arg connect --arg URL [--arg ...] \
        --stderr-log FILE --script JSON

The client starts the command with `stdio_client(StdioServerParameters(...))`,
runs the MCP handshake through it, then the steps of `--script`, a JSON array
of objects, in order:

  {"list": ["a", "b"]}                       tools/list must name exactly these
  {"call": "tool", "args": {...}}            tools/call must succeed
  {"call": "tool", "args": {...}, "error": "text"}
                                             tools/call must fail (JSON-RPC
                                             error or isError result) with a
                                             message containing "text"
  {"sleep": 3.5}                             pause (token rotation, expiry)
  {"run": ["argv", ...]}                     run a command (must exit 0)

One JSON line per step on stdout ({"step": ..., "ok": ...}); exit 0 when all
matched, 1 when one did not (its line has "error"), 2 on a usage error. A
JSON-RPC error answering `initialize` (e.g. the access was denied) is the
line {"step": "connect", "ok": false, "code": ..., "error": "message"}.
The connector's stderr goes to --stderr-log, so the test can read its logs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import anyio
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.shared.exceptions import MCPError


class StepFailed(Exception):
    pass


def emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


def result_text(result) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


async def run(args) -> int:
    script = json.loads(args.script)
    params = StdioServerParameters(command=args.command, args=args.arg)
    with open(args.stderr_log, "a", encoding="utf-8") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                try:
                    init = await session.initialize()
                except MCPError as e:
                    emit(step="connect", ok=False, code=e.code, error=str(e))
                    print(f"connect: {e}", file=sys.stderr)
                    return 1
                emit(step="connect", ok=True, protocol_version=init.protocol_version,
                     server=init.server_info.name)
                for i, step in enumerate(script):
                    name = f"{i}:" + next(iter(step))
                    try:
                        outcome = await one(session, step)
                        emit(step=name, ok=True, **outcome)
                    except StepFailed as e:
                        emit(step=name, ok=False, error=str(e))
                        print(f"{name}: {e}", file=sys.stderr)
                        return 1
    emit(step="done", ok=True)
    return 0


async def one(session: ClientSession, step: dict) -> dict:
    if "list" in step:
        tools = sorted(t.name for t in (await session.list_tools()).tools)
        if tools != sorted(step["list"]):
            raise StepFailed(f"tools/list gave {tools}, expected {sorted(step['list'])}")
        return {"tools": tools}
    if "call" in step:
        expected_error = step.get("error")
        try:
            result = await session.call_tool(step["call"], step.get("args", {}))
        except MCPError as e:
            if expected_error is None:
                raise StepFailed(f"tools/call failed: {e}") from e
            if expected_error not in str(e):
                raise StepFailed(f"tools/call failed with {e!r}, not mentioning {expected_error!r}") from e
            return {"error_message": str(e)}
        text = result_text(result)
        if result.is_error:
            if expected_error is not None and expected_error in text:
                return {"error_message": text}
            raise StepFailed(f"tools/call returned an error result: {text}")
        if expected_error is not None:
            raise StepFailed(f"tools/call succeeded ({text!r}) where an error was expected")
        return {"text": text}
    if "sleep" in step:
        await anyio.sleep(float(step["sleep"]))
        return {}
    if "run" in step:
        done = subprocess.run(step["run"], capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise StepFailed(f"{step['run']} exited {done.returncode}: {done.stderr}")
        return {}
    raise StepFailed(f"unknown step {step}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--command", required=True)
    parser.add_argument("--arg", action="append", default=[])
    parser.add_argument("--stderr-log", required=True)
    parser.add_argument("--script", default="[]")
    args = parser.parse_args()
    return anyio.run(run, args)


if __name__ == "__main__":
    sys.exit(main())
