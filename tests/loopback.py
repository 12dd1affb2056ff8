"""Test helpers shared by several test packages (tests/ is on pytest's `pythonpath`)."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson


class Receiver:
    """A loopback webhook receiver that answers each request after `delay` seconds."""

    def __init__(self, delay: float = 0.0) -> None:
        self.arrived: list[tuple[float, dict[str, Any]]] = []  # when the request came in
        self.answered = 0
        lock = threading.Lock()
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = orjson.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with lock:
                    outer.arrived.append((time.monotonic(), body))
                time.sleep(delay)
                self.send_response(200)
                self.end_headers()
                with lock:
                    outer.answered += 1

            def log_message(self, *a: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alert_ids(self) -> list[str]:
        return [a["fields"]["事件ID"] for _, body in list(self.arrived) for a in body["alerts"]]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
