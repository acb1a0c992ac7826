"""The `/metrics` endpoint of one server: prometheus_client's own HTTP server over that
server's registry, on a thread, stopped with the server."""

from __future__ import annotations

import threading
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server


class MetricsEndpoint:
    """Serves `registry` at http://host:port/metrics (port 0: any free port, see `.port`)."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int, port_file: str | Path = "") -> None:
        self._server: WSGIServer
        self._thread: threading.Thread
        self._server, self._thread = start_http_server(port, addr=host, registry=registry)
        self.port: int = self._server.server_port
        if port_file:
            Path(port_file).write_text(str(self.port))

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
