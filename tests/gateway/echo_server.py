"""A tiny upstream for gateway tests: one process serving several ports, each posing as one instance of
one service, answering every request with who it is and what it received.

    python -m tests.gateway.echo_server identity:0:18001 applications:1:18104 ...

`/api/v1/applications/drop` makes instance 1 close the connection without answering (a crashed
instance after the request was sent), so tests can tell which requests nginx retries.
"""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def make_handler(service: str, instance: int, port: int) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            received = 0
            while received < length:
                chunk = self.rfile.read(min(1 << 20, length - received))
                if not chunk:
                    break
                received += len(chunk)
            if self.path.startswith("/api/v1/applications/drop") and instance == 1:
                self.close_connection = True
                self.connection.close()
                return
            body = json.dumps(
                {
                    "service": service,
                    "instance": instance,
                    "port": port,
                    "method": self.command,
                    "path": self.path,
                    "request_id": self.headers.get("X-Request-ID"),
                    "forwarded_for": self.headers.get("X-Forwarded-For"),
                    "body_bytes": received,
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Request-ID", "upstream-must-not-leak")
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    return Handler


def main(bindings: list[str]) -> None:
    servers = []
    for binding in bindings:
        service, instance, port = binding.split(":")
        server = ThreadingHTTPServer(("127.0.0.1", int(port)), make_handler(service, int(instance), int(port)))
        server.daemon_threads = True
        servers.append(server)
    for server in servers[1:]:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print("ready", flush=True)
    servers[0].serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
