"""The service's HTTP endpoints: /metrics for Prometheus, /healthz and /readyz.

/healthz answers 200 while the process runs its loop; /readyz answers 200 only
when a model is loaded and the instance owns partitions of the events topic.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # scrapes are not log lines
        return None


class HealthServer:
    def __init__(self, host: str, port: int, registry: CollectorRegistry, ready: Callable[[], tuple[bool, str]]) -> None:
        self._registry, self._ready = registry, ready
        self._server: WSGIServer = make_server(host, port, self._app, handler_class=_QuietHandler)
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, name="http", daemon=True)

    def start(self) -> "HealthServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _app(self, environ: dict, start_response: Callable) -> list[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
            return [generate_latest(self._registry)]
        if path == "/healthz":
            return _text(start_response, "200 OK", "ok\n")
        if path == "/readyz":
            ready, why = self._ready()
            return _text(start_response, "200 OK" if ready else "503 Service Unavailable", why + "\n")
        return _text(start_response, "404 Not Found", "not found: try /metrics, /healthz, /readyz\n")


def _text(start_response: Callable, status: str, body: str) -> list[bytes]:
    start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
    return [body.encode()]
