"""The service's HTTP endpoint: Prometheus metrics, liveness and readiness for supervisors."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from consumers.watchdog import Health

LIVE_PATH = "/livez"
READY_PATH = "/readyz"


def serve(addr: str, port: int, health: Health, *, stall_s: float) -> ThreadingHTTPServer:
    """Serve /metrics, /livez and /readyz from a daemon thread; OSError if it cannot listen.

    /livez answers 503 once the member is wedged or its loop stopped turning (restart it);
    /readyz answers 503 as well while it is not in the consumer group.
    """

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == LIVE_PATH:
                self._answer(*health.live(stall_s))
            elif path == READY_PATH:
                self._answer(*health.ready(stall_s))
            elif path in ("/", "/metrics"):
                self._send(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
            else:
                self._send(404, b"not found\n", "text/plain")

        def _answer(self, ok: bool, why: str) -> None:
            self._send(200 if ok else 503, f"{why}\n".encode(), "text/plain; charset=utf-8")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # probes every few seconds would flood the service's log

    server = ThreadingHTTPServer((addr, port), Handler)
    threading.Thread(target=server.serve_forever, name="health-http", daemon=True).start()
    return server
