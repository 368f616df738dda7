#!/usr/bin/env python3
"""A headless stand-in for the browser a desktop OAuth client opens
(`xdg-open URL`): GETs the authorization URL without following redirects
(gnapd --dev approves at once and answers with a redirect to the client's
loopback callback), then GETs that Location, delivering the code to the
client's callback server as a browser would.

    browser.py URL [--log FILE]

Appends one JSON line per run to --log (or $GNAPD_FAKE_BROWSER_LOG), so the
test can see what the client sent. Standard library only.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from urllib.parse import parse_qs, urlparse


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001, ARG002
        return None


def get(url: str) -> tuple[int, str | None]:
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(url, timeout=30) as response:
            return response.status, response.headers.get("location")
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("location")


def main() -> int:
    url = sys.argv[1]
    log = os.environ.get("GNAPD_FAKE_BROWSER_LOG")
    record: dict = {"sent": {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}}
    status, location = get(url)
    record["status"] = status
    if location:
        back = urlparse(location)
        record["redirect"] = f"{back.scheme}://{back.netloc}{back.path}"
        record["params"] = sorted(parse_qs(back.query).keys())
        record["callback_status"], _ = get(location)
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
    return 0 if location else 1


if __name__ == "__main__":
    sys.exit(main())
