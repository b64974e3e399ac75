"""The simulated Kaggle's "internet", on loopback: one bounded HTTP server on 127.0.0.1 standing in for the model hub,
the download hosts and a Python package index, serving small files in each source's real format.

- the hub (`HF_ENDPOINT=<server>`): `/api/models/<repo>/revision/<rev>` (`HfApi.model_info`),
  `/api/models/<repo>/tree/<commit>` (`list_repo_tree`, which `snapshot_download` calls) and
  `/<repo>/resolve/<rev>/<file>` (HEAD with the commit, ETag and size `hf_hub_download` reads, then GET), as
  huggingface_hub 2.4.0 calls them;
- the download hosts (`CHAII_DOWNLOAD_MIRROR=<server>/dl`): `https://<host>/<path>` is served at `/dl/<host>/<path>`;
- a package index (`PIP_INDEX_URL=<server>/simple`): PEP 503 pages `/simple/<project>/` linking `/files/<wheel>`.

The server listens on 127.0.0.1 only, on a free port, and shuts itself down after `timeout_s` (a test that hangs does
not leave it behind); every request is recorded (`requests`). http.server in a thread: no dependency for a test.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit


class Loopback:
    def __init__(self, timeout_s: float = 1800.0):
        self.files: dict[str, bytes] = {}          # URL path -> body
        self.models: dict[str, dict] = {}          # repo id -> {"commit", "revisions", "files": {name: bytes}}
        self.requests: list[tuple[str, str]] = []
        self.timeout_s = timeout_s
        self.server: ThreadingHTTPServer | None = None

    # ---------------------------------------------------------------- what it serves
    def add_download(self, url: str, body: bytes) -> str:
        """Serve `body` where the mirror puts `url`; returns the URL path."""
        parts = urlsplit(url)
        path = f"/dl/{parts.netloc}{parts.path}"
        self.files[path] = body
        return path

    def add_model(self, repo_id: str, folder: Path, revision: str = "main") -> str:
        """Serve the files of a model directory as hub repo `repo_id` at `revision`; returns its commit sha."""
        files = {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir()) if p.is_file()}
        commit = hashlib.sha1((repo_id + "".join(files)).encode()).hexdigest()
        self.models[repo_id] = {"commit": commit, "revisions": {revision, commit}, "files": files}
        return commit

    def add_wheel(self, wheel: Path) -> None:
        name = wheel.name.split("-")[0].lower().replace("_", "-")
        self.files[f"/files/{wheel.name}"] = wheel.read_bytes()
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        self.files[f"/simple/{name}/"] = (f'<html><body><a href="/files/{wheel.name}#sha256={digest}">{wheel.name}'
                                          "</a></body></html>").encode()

    # ---------------------------------------------------------------- where
    @property
    def base(self) -> str:
        assert self.server is not None, "start the loopback server first"
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def env(self) -> dict[str, str]:
        """What a kernel's process needs to reach this server instead of the internet."""
        # PIP_CONFIG_FILE: this machine's pip configuration (extra indexes) is not Kaggle's
        return {"HF_ENDPOINT": self.base, "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_TELEMETRY": "1",
                "CHAII_DOWNLOAD_MIRROR": f"{self.base}/dl", "PIP_INDEX_URL": f"{self.base}/simple",
                "PIP_CONFIG_FILE": os.devnull}

    def start(self) -> "Loopback":
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self._timer = threading.Timer(self.timeout_s, self.stop)   # stops by itself
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self._timer.cancel()
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def __enter__(self) -> "Loopback":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---------------------------------------------------------------- the hub's answers
    def _model(self, path: str) -> tuple[int, dict, bytes]:
        for repo, m in self.models.items():
            api = f"/api/models/{repo}/"
            if path.startswith(api + "revision/"):
                rev = unquote(path[len(api + "revision/"):])
                if rev not in m["revisions"]:
                    return 404, {"X-Error-Code": "RevisionNotFound"}, b'{"error": "Invalid rev id"}'
                info = {"id": repo, "modelId": repo, "sha": m["commit"], "private": False,
                        "siblings": [{"rfilename": f} for f in m["files"]]}
                return 200, {"Content-Type": "application/json"}, json.dumps(info).encode()
            if path.startswith(api + "tree/"):
                tree = [{"type": "file", "path": f, "size": len(b), "oid": hashlib.sha1(b).hexdigest()}
                        for f, b in m["files"].items()]
                return 200, {"Content-Type": "application/json"}, json.dumps(tree).encode()
            resolve = f"/{repo}/resolve/"
            if path.startswith(resolve):
                rev, _, name = unquote(path[len(resolve):]).partition("/")
                if rev not in m["revisions"]:
                    return 404, {"X-Error-Code": "RevisionNotFound"}, b"revision not found"
                if name not in m["files"]:
                    return 404, {"X-Error-Code": "EntryNotFound"}, b"entry not found"
                body = m["files"][name]
                return 200, {"X-Repo-Commit": m["commit"], "ETag": f'"{hashlib.sha256(body).hexdigest()}"',
                             "Content-Type": "application/octet-stream"}, body
        return 404, {"X-Error-Code": "RepoNotFound"}, b"repository not found"

    def _handler(self):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, with_body: bool):
                path = urlsplit(self.path).path
                outer.requests.append((self.command, self.path))
                if path.startswith(("/api/models/",)) or "/resolve/" in path:
                    status, headers, body = outer._model(path)
                elif path in outer.files:
                    kind = "text/html" if path.startswith("/simple/") else "application/octet-stream"
                    status, headers, body = 200, {"Content-Type": kind}, outer.files[path]
                else:
                    status, headers, body = 404, {}, f"not served here: {path}".encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if with_body:
                    self.wfile.write(body)

            def do_GET(self):
                self._answer(True)

            def do_HEAD(self):
                self._answer(False)

            def log_message(self, *args):
                pass

        return Handler


def tiny_wheel(dest: Path, name: str = "chaii-probe", version: str = "0.1") -> Path:
    """A pure-Python wheel of one empty module, valid for pip (METADATA, WHEEL, RECORD with hashes)."""
    module, dist = name.replace("-", "_"), f"{name.replace('-', '_')}-{version}"
    files = {f"{module}/__init__.py": f'"""{name}: a package the simulated index serves."""\n'.encode(),
             f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
             f"{dist}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: chaii-recipes\nRoot-Is-Purelib: true\n"
                                        b"Tag: py3-none-any\n"}

    def record(path: str, body: bytes) -> str:
        digest = base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b"=").decode()
        return f"{path},sha256={digest},{len(body)}"

    files[f"{dist}.dist-info/RECORD"] = ("\n".join([*(record(p, b) for p, b in files.items()),
                                                    f"{dist}.dist-info/RECORD,,"]) + "\n").encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for path, body in files.items():
            z.writestr(path, body)
    out = Path(dest) / f"{dist}-py3-none-any.whl"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(buf.getvalue())
    return out
