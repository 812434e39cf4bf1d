"""Loopback fakes of the two name services skycut resolves targets with, for offline tests.

* :class:`FakeSesame` answers like CDS's Sesame (``GET <base>/<databases>?<name>``, plain text): a known name gets
  a ``%J ra dec`` line (ICRS J2000 degrees), an unknown one ``#! *** Nothing found ***``, as the real service.
* :class:`FakeMast` answers like MAST's Mashup API (``POST <base>/api/v0/invoke``, form field ``request`` holding
  the JSON request): service ``Mast.Catalogs.Filtered.Tic`` filtered on ``ID`` gives
  ``{"status": "COMPLETE", "data": [{"ID": ..., "ra": ..., "dec": ...}], ...}`` (no rows for an unknown id).

Both bind 127.0.0.1 on a free port, record every request (``requests``: the name or TIC id asked for) and stop
with :meth:`close` (or as context managers). Point skycut at them with ``SKYCUT_SESAME_URL`` / ``SKYCUT_MAST_URL``
(their :attr:`url`).
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _FakeService:
    """A threaded HTTP server on 127.0.0.1 whose handler calls :meth:`answer`."""

    def __init__(self, known: dict[str, tuple[float, float]]):
        self.known = dict(known)
        self.requests: list[str] = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                service._reply(self, "GET", b"")

            def do_POST(self):  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                service._reply(self, "POST", self.rfile.read(length))

            def log_message(self, *args):  # keep the test output quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def _reply(self, handler: BaseHTTPRequestHandler, method: str, body: bytes) -> None:
        status, content_type, payload = self.answer(method, handler.path, body)
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def answer(self, method: str, path: str, body: bytes) -> tuple[int, str, bytes]:
        raise NotImplementedError

    def close(self) -> None:
        """Stop serving and free the port (a later request is refused)."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class FakeSesame(_FakeService):
    """Sesame's plain-text answer for the names in ``known`` (name -> ICRS ``(ra, dec)`` degrees)."""

    def answer(self, method: str, path: str, body: bytes) -> tuple[int, str, bytes]:
        parsed = urllib.parse.urlsplit(path)
        if method != "GET" or not parsed.query:
            return 400, "text/plain", b"bad request\n"
        name = urllib.parse.unquote(parsed.query)
        self.requests.append(name)
        lines = [f"# {name}\t#Q12345", f"#=S=Simbad (via url):    {1 if name in self.known else 0}"]
        if name in self.known:
            ra, dec = self.known[name]
            lines += [
                f"%@ {abs(hash(name)) % 10**7}",
                f"%I.0 {name}",
                "%C.0 G",
                f"%J {ra:.6f} {dec:+.6f} = 00:00:00.00 +00:00:00.0",
                "%J.E [3.9 2.5 90] A 2020yCat.1350....0G",
                "#B 12",
            ]
        else:
            lines.append("#! *** Nothing found *** ")
        lines.append("#====Done (2024-Jan-01,00:00:00z)====")
        return 200, "text/plain", ("\n".join(lines) + "\n").encode("ascii")


class FakeMast(_FakeService):
    """MAST's ``Mast.Catalogs.Filtered.Tic`` for the TIC ids in ``known`` (``"261136679"`` -> ``(ra, dec)``)."""

    def answer(self, method: str, path: str, body: bytes) -> tuple[int, str, bytes]:
        if method != "POST" or urllib.parse.urlsplit(path).path != "/api/v0/invoke":
            return 404, "text/plain", b"not found\n"
        form = urllib.parse.parse_qs(body.decode("ascii"))
        try:
            request = json.loads(form["request"][0])
            service = request["service"]
            ids = [
                str(v) for f in request["params"]["filters"] if f["paramName"] == "ID" for v in f["values"]
            ]
        except (KeyError, IndexError, TypeError, json.JSONDecodeError):
            return 400, "application/json", b'{"status": "ERROR", "msg": "malformed request"}'
        if service != "Mast.Catalogs.Filtered.Tic":
            return (
                200,
                "application/json",
                json.dumps({"status": "ERROR", "msg": f"unknown {service}"}).encode(),
            )
        self.requests += ids
        rows = [{"ID": i, "ra": self.known[i][0], "dec": self.known[i][1]} for i in ids if i in self.known]
        answer = {
            "status": "COMPLETE",
            "msg": "",
            "data": rows,
            "fields": [
                {"name": "ID", "type": "string"},
                {"name": "ra", "type": "float"},
                {"name": "dec", "type": "float"},
            ],
            "paging": {
                "page": 1,
                "pageSize": 10,
                "pagesFiltered": 1,
                "rows": len(rows),
                "rowsFiltered": len(rows),
                "rowsTotal": len(rows),
            },
        }
        return 200, "application/json", json.dumps(answer).encode()
