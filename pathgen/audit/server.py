"""`pathgen audit serve`: the review page of an audit folder, on 127.0.0.1 only.

Standard library only (``http.server``): no account, nothing fetched from the internet. The
page (``pathgen/data/audit/``) is static; it asks the JSON API for the items and renders every
text with ``textContent`` (a caption holding ``<script>`` shows as text), and the
Content-Security-Policy allows only the server's own script, style and images, so nothing
inline could run anyway.

Requests:

- ``GET /``, ``/static/review.js``, ``/static/review.css``: the page.
- ``GET /api/manifest``: the items (texts, sentences, image URLs, strata).
- ``GET /api/verdicts?reviewer=NAME``: that reviewer's saved verdicts (to resume).
- ``POST /api/verdict`` ``{"reviewer", "item", "part", "sentence", "verdict"}``: one
  sentence's verdict (``null`` clears it), saved before the answer is sent.
- ``POST /api/corrected`` ``{"reviewer", "item", "corrected"}``: the corrected caption.
- ``GET /files/<path>``: only the image files the manifest lists (inside the audit folder).

Refused and logged: a path with ``..`` / ``.`` segments, ``//``, a backslash or NUL, in plain
or percent-encoded form (decoded up to three times: ``%2e%2e%2f``, ``%252e``), and any target
not starting with ``/`` (400); any file not listed in the manifest (404); a Host header other
than this server's address (400, DNS rebinding); a post from another origin (403). A
malformed post (not JSON, unknown keys, unknown item/part/sentence/verdict, bad name, no or
oversized body, wrong content type) gets a 400 with the reason and changes no file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import mimetypes
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote

from .files import manifest_file
from .sample import TEXT_PARTS, AuditError, load_manifest
from .verdicts import VERDICT_LABELS, VERDICTS, VerdictError, VerdictStore

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
MAX_BODY = 16 * 1024  # bytes of a post (a verdict is ~150 B, a corrected caption at most ~16 KB)
ASSETS_DIR = Path(__file__).resolve().parents[1] / "data" / "audit"
ASSETS = {"/": ("index.html", "text/html; charset=utf-8"),
          "/static/review.js": ("review.js", "text/javascript; charset=utf-8"),
          "/static/review.css": ("review.css", "text/css; charset=utf-8")}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
POST_KEYS = {"/api/verdict": {"reviewer", "item", "part", "sentence", "verdict"},
             "/api/corrected": {"reviewer", "item", "corrected"}}


class AuditApp:
    """What the handler serves: the manifest, the allowed image files, the verdict store."""

    def __init__(self, audit_dir: str | Path):
        self.dir = Path(audit_dir).resolve()
        self.manifest = load_manifest(self.dir)
        self.store = VerdictStore(self.dir, self.manifest)
        self.images: dict[str, Path] = {}
        for item in self.manifest["items"]:
            rel = str(item.get("image") or "")
            parts = Path(rel).parts
            if not rel or Path(rel).is_absolute() or ".." in parts:
                raise AuditError(f"{manifest_file(self.dir)}: item {item.get('id')!r} has image "
                                 f"{rel!r}; images must be paths inside the audit folder")
            self.images[rel] = self.dir / rel
        key = json.dumps([self.dir.as_posix(), [i["id"] for i in self.manifest["items"]]])
        self.audit_id = hashlib.sha256(key.encode()).hexdigest()[:12]
        self.assets = {route: ((ASSETS_DIR / name).read_bytes(), ctype)
                       for route, (name, ctype) in ASSETS.items()}

    def public_manifest(self) -> dict:
        m = self.manifest
        items = [{"id": i["id"], "stratum": i.get("stratum"), "slide_id": i.get("slide_id"),
                  "x": i.get("x"), "y": i.get("y"), "model": i.get("model"),
                  "image_url": "/files/" + quote(i["image"]),
                  "sentences": {p: list((i.get("sentences") or {}).get(p) or []) for p in TEXT_PARTS}}
                 for i in m["items"]]
        return {"audit_id": self.audit_id, "folder": self.dir.name, "n": len(items),
                "caption_stage": m.get("caption_stage"), "stratify": m.get("stratify"),
                "verdicts": [{"value": v, "label": VERDICT_LABELS[v], "key": str(k + 1)}
                             for k, v in enumerate(VERDICTS)], "items": items}


class Refused(Exception):
    def __init__(self, status: HTTPStatus, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


def _decoded(path: str) -> str:
    """Percent-decoded until stable (at most three rounds: %252e%252e -> %2e%2e -> ..)."""
    for _ in range(3):
        nxt = unquote(path, errors="strict")
        if nxt == path:
            break
        path = nxt
    return path


def check_path(raw: str) -> str:
    """The request's path, decoded; Refused for anything that could leave the folder."""
    if not raw.startswith("/"):
        raise Refused(HTTPStatus.BAD_REQUEST, "request target must be a path starting with '/'")
    path = raw.split("?", 1)[0].split("#", 1)[0]
    try:
        decoded = _decoded(path)
    except UnicodeDecodeError:
        raise Refused(HTTPStatus.BAD_REQUEST, "path is not UTF-8") from None
    if "\x00" in decoded or "\\" in decoded:
        raise Refused(HTTPStatus.BAD_REQUEST, "NUL or backslash in path")
    if "//" in decoded:
        raise Refused(HTTPStatus.BAD_REQUEST, "absolute or empty path segment")
    if any(seg in ("..", ".") for seg in decoded.split("/")):
        raise Refused(HTTPStatus.BAD_REQUEST, "'..' or '.' in path")
    return decoded


class AuditHandler(BaseHTTPRequestHandler):
    server_version = "pathgen-audit"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    app: AuditApp  # set on the subclass make_server builds

    # -- plumbing --------------------------------------------------------------------------
    def log_message(self, fmt, *args):  # the access log goes to logging, not stderr
        log.debug("%s %s", self.address_string(), fmt % args)

    def _send(self, status: HTTPStatus, body: bytes, ctype: str, cache: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("Cache-Control", "private, max-age=300" if cache else "no-store")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: HTTPStatus, obj) -> None:
        self._send(status, json.dumps(obj, ensure_ascii=False).encode(), "application/json; charset=utf-8")

    def _error(self, status: HTTPStatus, reason: str) -> None:
        self._json(status, {"error": reason, "status": int(status)})

    def _refuse(self, err: Refused) -> None:
        log.warning("refused %s %r from %s: %s (%d)", self.command, self.path[:300],
                    self.client_address[0], err.reason, err.status)
        self._error(err.status, err.reason)

    def _origins(self) -> set[str]:
        port = self.server.server_address[1]
        return {f"{HOST}:{port}", f"localhost:{port}"}

    def _checked(self) -> str:
        path = check_path(self.path)
        host = (self.headers.get("Host") or "").strip().lower()
        if host not in self._origins():
            raise Refused(HTTPStatus.BAD_REQUEST, f"unexpected Host header {host[:80]!r}; open the "
                                                  f"page at http://{HOST}:{self.server.server_address[1]}/")
        return path

    # -- GET --------------------------------------------------------------------------------
    def do_GET(self):  # noqa: N802 (http.server's name)
        try:
            path = self._checked()
            if path in self.app.assets:
                body, ctype = self.app.assets[path]
                return self._send(HTTPStatus.OK, body, ctype)
            if path == "/favicon.ico":
                return self._send(HTTPStatus.NO_CONTENT, b"", "text/plain")
            if path == "/api/manifest":
                return self._json(HTTPStatus.OK, self.app.public_manifest())
            if path == "/api/verdicts":
                query = parse_qs(self.path.split("?", 1)[1] if "?" in self.path else "")
                try:
                    return self._json(HTTPStatus.OK, self.app.store.view((query.get("reviewer") or [""])[0]))
                except VerdictError as err:
                    return self._error(HTTPStatus.BAD_REQUEST, str(err))
                except ValueError as err:  # a damaged verdicts file: say which, never overwrite it
                    return self._error(HTTPStatus.INTERNAL_SERVER_ERROR, str(err))
            if path.startswith("/files/"):
                rel = path[len("/files/"):]
                file = self.app.images.get(rel)
                if file is None:
                    raise Refused(HTTPStatus.NOT_FOUND, "not an image of this audit")
                try:
                    body = file.read_bytes()
                except OSError:
                    raise Refused(HTTPStatus.NOT_FOUND, "image file missing") from None
                ctype = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
                return self._send(HTTPStatus.OK, body, ctype, cache=True)
            raise Refused(HTTPStatus.NOT_FOUND, "no such page")
        except Refused as err:
            self._refuse(err)

    # -- POST -------------------------------------------------------------------------------
    def _body(self) -> dict:
        keep_open = not self.close_connection
        self.close_connection = True  # until the body is read, the connection cannot be reused
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise VerdictError(f"Content-Type must be application/json, got {ctype[:60]!r}")
        if self.headers.get("Transfer-Encoding"):
            raise VerdictError("send the body with a Content-Length (no transfer encoding)")
        try:
            length = int(self.headers.get("Content-Length") or "")
        except ValueError:
            raise VerdictError("a Content-Length header is required") from None
        if length < 0 or length > MAX_BODY:
            raise VerdictError(f"body too large ({length} bytes; at most {MAX_BODY})")
        raw = self.rfile.read(length)
        self.close_connection = not keep_open
        try:
            obj = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise VerdictError(f"body is not valid JSON ({err})") from None
        if not isinstance(obj, dict):
            raise VerdictError("body must be a JSON object")
        return obj

    def do_POST(self):  # noqa: N802
        try:
            path = self._checked()
            if path not in POST_KEYS:
                raise Refused(HTTPStatus.NOT_FOUND, "no such API")
            origin = self.headers.get("Origin")
            if origin is not None and origin.lower().removeprefix("http://") not in self._origins():
                raise Refused(HTTPStatus.FORBIDDEN, f"post from another origin ({origin[:80]!r})")
        except Refused as err:
            self.close_connection = True
            return self._refuse(err)
        try:
            obj = self._body()
            unknown = sorted(set(obj) - POST_KEYS[path])
            missing = sorted(POST_KEYS[path] - set(obj))
            if unknown or missing:
                raise VerdictError(f"expected the keys {sorted(POST_KEYS[path])}; "
                                   + (f"unknown {unknown} " if unknown else "")
                                   + (f"missing {missing}" if missing else ""))
            store = self.app.store
            if path == "/api/verdict":
                entry = store.set_verdict(obj["reviewer"], obj["item"], obj["part"], obj["sentence"],
                                          obj["verdict"])
            else:
                entry = store.set_corrected(obj["reviewer"], obj["item"], obj["corrected"])
        except VerdictError as err:
            log.info("rejected post %s from %s: %s", path, self.client_address[0], err)
            return self._error(HTTPStatus.BAD_REQUEST, str(err))
        except ValueError as err:  # the reviewer's file on disk is damaged: leave it alone
            return self._error(HTTPStatus.INTERNAL_SERVER_ERROR, str(err))
        except OSError as err:
            log.error("could not save a verdict: %s", err)
            return self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"could not save: {err}")
        self._json(HTTPStatus.OK, {"ok": True, "item": obj["item"], "entry": entry})


class AuditServer(ThreadingHTTPServer):
    daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}/"


def make_server(audit_dir: str | Path, port: int = 0) -> AuditServer:
    """The review server of ``audit_dir`` bound to 127.0.0.1:``port`` (0 = a free port);
    not started (``serve_forever``)."""
    handler = type("BoundAuditHandler", (AuditHandler,), {"app": AuditApp(audit_dir)})
    return AuditServer((HOST, int(port)), handler)


def serve(audit_dir: str | Path, port: int = 8765, open_browser: bool = False) -> None:
    """Serve until Ctrl-C."""
    server = make_server(audit_dir, port)
    print(f"audit: reviewing {server.RequestHandlerClass.app.manifest['n']} items of {audit_dir} at "
          f"{server.url} (Ctrl-C to stop; every verdict is saved as it is given)", flush=True)
    if open_browser:
        import webbrowser

        threading.Timer(0.5, webbrowser.open, args=(server.url,)).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
