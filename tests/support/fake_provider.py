"""A loopback stand-in for an OpenAI-compatible provider, for the security tests.

It records the headers of every request it receives (so a test can see which key a
service sent, and where), and either answers chat completions in the format DSPy's
ChatAdapter parses, or fails the way a careless provider does: an error body that echoes
the request's headers back, Authorization included.

The standard library's http.server is enough: one listener, a handful of requests, no
streaming.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeProvider:
    """`mode`: "ok" answers every chat completion with `answer` as the first output field;
    "echo_error" answers 401 with the request headers in the error message."""

    mode: str = "ok"
    answer: str = "billing"
    usage: tuple[int, int] = (100, 20)  # prompt, completion tokens reported per call
    cost: float = 0.0  # USD reported per call in the usage when > 0, as providers that price calls do
    received: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def authorizations(self) -> list[str]:
        with self._lock:
            return [r.headers.get("authorization", "") for r in self.received]

    def start(self) -> FakeProvider:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                self._answer(200, {"object": "list", "data": [{"id": "m", "object": "model"}]})

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    body = {}
                headers = {k.lower(): v for k, v in self.headers.items()}
                with provider._lock:
                    provider.received.append(Received(self.path, headers, body))
                if provider.mode == "echo_error":
                    # what a careless provider or proxy does: the whole request echoed back
                    self._answer(
                        401,
                        {
                            "error": {
                                "message": f"invalid credentials; request headers were {json.dumps(headers)} "
                                f"(Authorization: {headers.get('authorization', '')})",
                                "type": "invalid_request_error",
                                "code": "invalid_api_key",
                            }
                        },
                    )
                    return
                self._answer(200, provider._completion(body))

            def _answer(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-provider", daemon=True)
        self._thread.start()
        return self

    def _completion(self, body: dict[str, Any]) -> dict[str, Any]:
        # The output field names are in the system message DSPy's ChatAdapter wrote.
        system = next(
            (m.get("content", "") for m in body.get("messages", []) if m.get("role") == "system"), ""
        )
        fields = _output_fields(system if isinstance(system, str) else "") or ["answer"]
        content = "\n\n".join(f"[[ ## {name} ## ]]\n{self.answer}" for name in fields)
        prompt, completion = self.usage
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model", "fake"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content + "\n\n[[ ## completed ## ]]"},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
                **({"cost": self.cost} if self.cost > 0 else {}),
            },
        }

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def _output_fields(system: str) -> list[str]:
    import re

    at = system.find("Your output fields are:")
    if at < 0:
        return []
    end = system.find("All interactions will be structured", at)
    block = system[at : end if end >= 0 else len(system)]
    return re.findall(r"^\d+\. `(\w+)`", block, re.MULTILINE)
