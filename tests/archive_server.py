"""A real HTTP server on 127.0.0.1 (an http.server in a thread, on an ephemeral port) serving files
from a dict, for the download tests: ``from archive_server import ArchiveServer``."""
from __future__ import annotations

import hashlib
import http.server
import re
import threading


class ArchiveServer:
    """Serves ``files`` (path -> bytes) and records each request as ``(path, Range header)``.

    ``mode``: "normal"; "truncate" (declares the full length, sends half); "no-range" (ignores
    Range headers); "no-length" (no Content-Length: the body ends when the connection closes);
    "no-length-cut" (no Content-Length, and only half the body before closing).
    ``validators``: send ``ETag`` and ``Last-Modified`` (both change with the content) and honour
    ``If-Range`` (a stale validator gets the whole file, as HTTP says) unless ``honour_if_range``
    is False.
    """

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.mode = "normal"
        self.validators, self.honour_if_range = False, True
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append((self.path, self.headers.get("Range")))
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404, "Not Found")
                    return
                etag, modified = server.tags(data)
                start = 0
                match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
                if_range = self.headers.get("If-Range")
                stale = server.validators and server.honour_if_range and if_range not in (None, etag, modified)
                if match and server.mode != "no-range" and not stale:
                    start = int(match.group(1))
                    if start >= len(data):
                        self.send_error(416, "Range Not Satisfiable")
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                if not server.mode.startswith("no-length"):
                    self.send_header("Content-Length", str(len(data) - start))
                if server.validators:
                    self.send_header("ETag", etag)
                    self.send_header("Last-Modified", modified)
                self.end_headers()
                body = data[start:]
                if server.mode in ("truncate", "no-length-cut"):
                    body = body[: len(body) // 2]
                    self.close_connection = True
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.running = True

    @staticmethod
    def tags(data: bytes) -> tuple[str, str]:
        """The ``ETag`` and ``Last-Modified`` of a content (a version number made from its hash)."""
        digest = hashlib.sha256(data).hexdigest()
        hour, minute = int(digest[:2], 16) % 24, int(digest[2:4], 16) % 60
        return f'"{digest[:16]}"', f"Mon, 01 Jan 2024 {hour:02d}:{minute:02d}:00 GMT"

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{path.lstrip('/')}"

    def stop(self):
        if self.running:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.running = False
