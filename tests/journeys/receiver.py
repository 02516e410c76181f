"""A webhook receiver for tests: a real HTTP server on a free loopback port, in a thread. It checks each
request's HMAC signature, records what arrived, and can answer 500 to the first N requests."""

import hashlib
import hmac
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    idempotency_key: str
    signature_ok: bool
    body: dict
    status: int


@dataclass
class Receiver:
    secret: str
    fail_first: int = 0
    fail_nth: int = 0  # the n-th request received (1-based) is answered 500, the others as usual
    always_fail: bool = False
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, raw: bytes, headers) -> int:
        expected = "sha256=" + hmac.new(self.secret.encode(), raw, hashlib.sha256).hexdigest()
        signature_ok = hmac.compare_digest(expected, headers.get("X-Hub-Signature-256", ""))
        with self.lock:
            failing = self.always_fail or self.fail_first > 0 or len(self.received) + 1 == self.fail_nth
            if self.fail_first > 0:
                self.fail_first -= 1
            status = 500 if failing or not signature_ok else 200
            self.received.append(
                Received(headers.get("Idempotency-Key", ""), signature_ok, json.loads(raw), status)
            )
        return status

    def delivered_keys(self) -> list[str]:
        """Item keys in requests answered 2xx (what a de-duplicating receiver has processed)."""
        return [
            item["idempotency_key"] for r in self.received if r.status == 200 for item in r.body["deliveries"]
        ]


def start(secret: str, **options) -> tuple[Receiver, str, ThreadingHTTPServer]:
    receiver = Receiver(secret=secret, **options)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status = receiver.answer(raw, self.headers)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver, f"http://127.0.0.1:{server.server_address[1]}/hook", server
