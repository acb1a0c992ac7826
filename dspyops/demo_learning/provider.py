"""The bad candidate's LM service: a loopback OpenAI-compatible endpoint that refuses every
call with 401, as a provider does once a key is revoked. The candidate is the good one's
program pointed at this connection, so everything about it is right except that it cannot
answer: the canary's error-rate guardrail must catch it.

A 401 rather than a closed port: litellm retries connection errors with backoff (about 7 s a
call), but not an authentication error, so each failed prediction costs milliseconds.
The standard library's http.server is enough: loopback, short requests, no streaming.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

CONNECTION = "revoked"
MODEL = "m1"


class _Refuse(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # quiet: the demo prints its own lines
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0") or 0))
        body = json.dumps({"error": {"message": "invalid api key", "type": "invalid_request_error"}})
        data = body.encode()
        self.send_response(401)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class RefusingProvider:
    def __init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Refuse)
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="refusing-provider", daemon=True
        )
        self.thread.start()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def connections_file(self, path: Path) -> Path:
        """The connections file both services are started with: this endpoint as `revoked`."""
        path.write_text(
            f'[connections.{CONNECTION}]\napi_base = "{self.api_base}"\nmodels = ["{MODEL}"]\n'
            "default_max_tokens = 64\nmax_tokens_cap = 256\n"
        )
        return path

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
