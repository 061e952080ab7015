"""A local HTTP server for the fetch tests: small files, HTTP range requests, and the faults a real server has.

Each served file is a :class:`Served` entry (plain data the test changes between calls): its bytes and ETag,
whether the server honours ``Range``, a status to answer instead (404, 503), how many of the next responses to
cut after some bytes (the server closes the socket mid-body), whether to announce the length, and a delay per
chunk (slow enough to kill a client mid-download). Every request's path and range headers are recorded.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Served:
    body: bytes
    etag: str = '"v1"'
    ranges: bool = True  # False: a server that ignores Range and always sends the whole file
    status: int | None = None  # answer this instead of the file (404, 503, ...)
    status_times: int = 1 << 30  # ... for this many requests, then serve the file
    cut_after: int | None = None  # close the connection after this many body bytes ...
    cuts: int = 0  # ... for this many responses
    length: bool = True  # False: no Content-Length, the end of the body is the closed connection
    chunk_delay: float = 0.0  # seconds between 1 KiB chunks

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()


@dataclass
class Request:
    path: str
    range: str | None
    if_range: str | None


@dataclass
class LocalServer:
    port: int
    files: dict[str, Served] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def serve(self, name: str, body: bytes, **options) -> Served:
        self.files[name] = Served(body, **options)
        return self.files[name]

    def ranges_asked(self, name: str) -> list[str | None]:
        return [request.range for request in self.requests if request.path == f"/{name}"]


def _handler(server: LocalServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep pytest's output clean
            pass

        def do_GET(self) -> None:  # noqa: N802
            try:
                self._get()
            except (BrokenPipeError, ConnectionResetError):  # the client went away (a test killed it or gave up)
                pass

        def _get(self) -> None:
            self.close_connection = True
            name = self.path.lstrip("/")
            server.requests.append(Request(self.path, self.headers.get("Range"), self.headers.get("If-Range")))
            served = server.files.get(name)
            if served is None:
                return self._answer(404, "Not Found")
            if served.status is not None and served.status_times > 0:
                served.status_times -= 1
                return self._answer(served.status, self.responses.get(served.status, ("",))[0])
            body, start, status = served.body, 0, 200
            asked = self.headers.get("Range")
            if_range = self.headers.get("If-Range")
            if served.ranges and asked and asked.startswith("bytes=") and if_range in (None, served.etag):
                start = int(asked[len("bytes="):].split("-")[0])
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.send_header("Connection", "close")
                    return self.end_headers()
                status = 206
            part = body[start:]
            self.send_response(status)
            self.send_header("ETag", served.etag)
            self.send_header("Accept-Ranges", "bytes" if served.ranges else "none")
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            if served.length:
                self.send_header("Content-Length", str(len(part)))
            self.send_header("Connection", "close")
            self.end_headers()
            if served.cuts > 0 and served.cut_after is not None:
                served.cuts -= 1
                self._send(part[: served.cut_after], served.chunk_delay)
                self.connection.shutdown(socket.SHUT_RDWR)  # the connection drops mid-body
                return
            self._send(part, served.chunk_delay)

        def _send(self, data: bytes, delay: float) -> None:
            for offset in range(0, len(data), 1024):
                self.wfile.write(data[offset : offset + 1024])
                self.wfile.flush()
                if delay:
                    time.sleep(delay)

        def _answer(self, code: int, reason: str) -> None:
            body = f"<html>{code} {reason}</html>".encode()
            self.send_response(code, reason)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)

    return Handler


@pytest.fixture()
def http_server():
    """A threaded HTTP server on 127.0.0.1 (a free port) serving the files a test puts in ``files``."""
    state = LocalServer(port=0)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture()
def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connections are refused, as with no network)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture()
def tiny_disk(tmp_path):
    """A 64 KiB tmpfs (a real full disk); skipped where this process may not mount one (it needs root)."""
    import subprocess

    mount = tmp_path / "tiny-disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode}); the ENOSPC path is "
                    f"covered by test_disk_full_mid_download_is_reported_with_the_space_still_needed")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)
