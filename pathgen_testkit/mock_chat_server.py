"""A local OpenAI-compatible chat-completions server with CANNED replies (test support, not
part of pathgen): for the tests, the client benchmark (bench/caption_client.py), the stand-in
model server process (pathgen_testkit.standin_server) and offline smoke tests of the `openai`
backend. Not a model: it answers fixed text.

It serves at most ``capacity`` requests at once, each taking ``latency_s`` (throughput
ceiling capacity / latency per second; extra requests wait server-side, as on a saturated
vLLM), and can inject faults from a script: ``"429"``, ``"429:<Retry-After value>"`` (e.g.
``"429:soon"``), ``"500"``, ``"400"`` (vLLM's reply to one over-long prompt), ``"401"``,
``"403"``, ``"404model"`` (vLLM's "model does not exist"), ``"timeout"`` (hangs ``hang_s``),
``"slow"`` (2 x latency), ``"malformed"`` (not JSON), ``"nochoices"`` (JSON without choices),
``"ok"``. ``fault_for(body)`` may pick a fault per request (e.g. for one item's image) before
the script; ``api_key`` makes it answer 401 to requests without ``Bearer <api_key>``;
``served_models`` makes it answer 404 "model does not exist" for any other model.
``kill()`` makes it die mid-run (connections cut, requests in service unanswered).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DESCRIPTION = ("The field shows crowded tumour-like epithelium with enlarged, hyperchromatic "
               "and pleomorphic nuclei arranged in solid nests, separated by thin strands of "
               "eosinophilic fibrous stroma. No necrosis is seen.")
CAPTION = ("Tumour-like epithelium in solid nests with enlarged, pleomorphic, hyperchromatic "
           "nuclei and thin eosinophilic stroma.")


# vLLM's error replies (OpenAI-style error objects)
_ERRORS = {
    "400": (400, "BadRequestError", "This model's maximum context length is 4096 tokens. However, "
            "you requested 6144 tokens (5632 in the messages, 512 in the completion). Please "
            "reduce the length of the messages or completion."),
    "401": (401, "AuthenticationError", "Incorrect API key provided."),
    "403": (403, "PermissionDeniedError", "This key may not use this server."),
    "404model": (404, "NotFoundError", "The model `{model}` does not exist."),
}


def canned_reply(body: dict) -> str:
    """Description for image turns, caption for text-only (summarize) turns."""
    content = body["messages"][-1]["content"]
    has_image = isinstance(content, list) and any(p.get("type") == "image_url" for p in content)
    return DESCRIPTION if has_image else CAPTION


def _completion(body: dict, text: str) -> bytes:
    return json.dumps({"id": "mock", "object": "chat.completion", "model": body.get("model"),
                       "choices": [{"index": 0, "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": text}}]}).encode()


def _refusal(fault: str, body: dict) -> tuple | None:
    """(code, payload, headers) of a fault answered at once (before service), else None."""
    if fault == "429" or fault.startswith("429:"):
        after = fault.partition(":")[2] or "0.05"
        return 429, b'{"error": "rate limited"}', [("Retry-After", after)]
    if fault == "500":
        return 500, b'{"error": "internal"}', ()
    if fault in _ERRORS:
        code, typ, msg = _ERRORS[fault]
        err = {"object": "error", "message": msg.format(model=body.get("model")),
               "type": typ, "param": None, "code": code}
        return code, json.dumps(err).encode(), ()
    return None


# faults answered after the service time: a 200 whose body is broken
_BROKEN_REPLIES = {"malformed": b"<html>upstream error</html>",
                   "nochoices": b'{"id": "x", "object": "chat.completion"}'}


class _Handler(BaseHTTPRequestHandler):
    """One request of a :class:`MockChatServer` (reached as ``self.server.mock``)."""

    protocol_version = "HTTP/1.1"  # keep-alive, like real servers

    def log_message(self, *args):  # quiet
        pass

    def setup(self):
        super().setup()
        with self.server.mock.lock:
            self.server.mock._conns.add(self.connection)

    def finish(self):
        with self.server.mock.lock:
            self.server.mock._conns.discard(self.connection)
        try:
            super().finish()
        except OSError:  # cut by kill()
            pass

    def _send(self, code, payload: bytes, headers=()):
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self):
        """``GET /v1/models`` (what health checks poll): the served models, OpenAI-style."""
        mock = self.server.mock
        if self.path.rstrip("/") != "/v1/models" or mock.dead:
            return self._send(404, b'{"error": "not found"}')
        if not mock.ready:
            return self._send(503, b'{"error": "model is loading"}')
        names = sorted(mock.served_models or ["mock"])
        return self._send(200, json.dumps({"object": "list", "data": [
            {"id": n, "object": "model", "owned_by": "pathgen-mock"} for n in names]}).encode())

    def do_POST(self):
        mock = self.server.mock
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if mock.dead:  # killed: hang up without a reply, like a crashed server
            self.close_connection = True
            return
        if self.path != "/v1/chat/completions":
            return self._send(404, b'{"error": "not found"}')
        body = json.loads(raw)
        if mock.on_request is not None:
            mock.on_request(body)
        fault = mock._take_fault(body, self.headers)
        refused = _refusal(fault, body)
        if refused is not None:
            return self._send(*refused)
        with mock.slots:  # at most `capacity` in service; the rest queue here
            if fault == "timeout":
                time.sleep(mock.hang_s)
            time.sleep(mock.latency_s * (2 if fault == "slow" else 1))
        if fault in _BROKEN_REPLIES:
            return self._send(200, _BROKEN_REPLIES[fault])
        if mock.dead:  # killed while this request was in service
            self.close_connection = True
            return
        try:
            self._send(200, _completion(body, mock.reply(body)))
        except (BrokenPipeError, ConnectionResetError):  # client gave up (timeout)
            pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def handle_error(self, request, client_address):  # clients hanging up: not news
        pass


class MockChatServer:
    def __init__(self, capacity: int = 32, latency_s: float = 0.2, faults=(), hang_s: float = 5.0,
                 reply=canned_reply, host: str = "127.0.0.1", port: int = 0, fault_for=None,
                 api_key: str | None = None, served_models=None):
        self.capacity, self.latency_s, self.hang_s, self.reply = capacity, latency_s, hang_s, reply
        self.faults = deque(faults)
        self.fault_for, self.api_key = fault_for, api_key
        self.served_models = set(served_models) if served_models is not None else None
        self.headers: list[dict] = []
        self.slots = threading.BoundedSemaphore(capacity)
        self.lock = threading.Lock()
        self.log: list[tuple[float, str]] = []  # (time, fault or "ok")
        self.bodies: list[dict] = []
        self.dead = False
        self.ready = True  # False: GET /v1/models answers 503 (weights still loading)
        self.on_request = None  # called with each chat body (e.g. to die after N requests)
        self._conns: set = set()  # open client sockets (kill() cuts them)
        self.httpd = _Server((host, port), _Handler)
        self.httpd.mock = self
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def _take_fault(self, body: dict, headers) -> str:
        """This request's fault (per-request pick, auth, served model, then the script) and
        its record in log/bodies/headers."""
        picked = self.fault_for(body) if self.fault_for else None
        if self.api_key is not None and headers.get("Authorization") != f"Bearer {self.api_key}":
            picked = "401"
        if self.served_models is not None and body.get("model") not in self.served_models:
            picked = "404model"
        with self.lock:
            fault = picked or (self.faults.popleft() if self.faults else "ok")
            self.log.append((time.time(), fault))
            self.bodies.append(body)
            self.headers.append(dict(headers.items()))
        return fault

    def settle(self, quiet_s: float = 0.2, timeout_s: float = 10.0) -> int:
        """Wait until no request has arrived for `quiet_s`; returns the request count.

        A client that gives up (cancelled tasks) may leave requests on the wire that the
        server logs a moment later: count per run only after this.
        """
        deadline = time.monotonic() + timeout_s
        n = len(self.log)
        while time.monotonic() < deadline:
            time.sleep(quiet_s)
            if len(self.log) == n:
                return n
            n = len(self.log)
        return n

    def kill(self) -> None:
        """Die mid-run like a crashed server: stop listening and cut every open connection,
        requests in service included (their clients see a connection reset)."""
        import socket

        self.dead = True
        self.httpd.shutdown()
        self.httpd.server_close()
        with self.lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def serve_forever(self):
        self.httpd.serve_forever()
