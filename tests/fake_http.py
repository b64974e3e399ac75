"""The tests' fake Kaggle API: a handler served on 127.0.0.1, the kaggle CLI pointed at it, and what it sends back."""
import json
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from research.kaggle_sim.sim import SOCKET_GUARD


def send_json(handler, reply) -> None:
    """`reply` as a 200 JSON response of a BaseHTTPRequestHandler."""
    data = json.dumps(reply).encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def send_not_found(handler) -> None:
    handler.send_response(404)
    handler.end_headers()


class KaggleAPIHandler(BaseHTTPRequestHandler):
    """Records every POST the kaggle CLI sends (`received`) and answers it with `answer(method, body)`: a JSON reply,
    or None for a 404. Subclasses answer the calls their tests need."""
    received: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        method = self.path.rsplit("/", 1)[-1]
        self.received.append({"path": self.path, "method": method, "auth": self.headers.get("Authorization"),
                              "body": body})
        reply = self.answer(method, body)
        if reply is None:
            send_not_found(self)
        else:
            send_json(self, reply)

    def answer(self, method: str, body: dict) -> dict | None:
        raise NotImplementedError

    def log_message(self, *args):
        pass


def saved(slug: str) -> dict:
    """SaveKernel's reply for a pushed kernel."""
    return {"ref": f"/code/{slug}", "url": f"http://127.0.0.1/code/{slug}", "versionNumber": 1}


def guard_child_processes(tmp_path: Path, monkeypatch) -> Path:
    """Python processes the test starts (a kernel, the kaggle CLI) load this sitecustomize: the network guard and,
    where CHAII_FAKE_KAGGLE is set, the CLI's endpoint patched to the fake."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SOCKET_GUARD)
    monkeypatch.setenv("PYTHONPATH", str(site))
    return site


@contextmanager
def serve_kaggle_api(handler, tmp_path: Path, monkeypatch):
    """`handler` served on a free loopback port, with the kaggle CLI's environment pointed at it and no real
    credentials readable (HOME and KAGGLE_CONFIG_DIR under tmp_path, the credential variables unset)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stopper = threading.Timer(300, server.shutdown)  # stops by itself if the test hangs
    stopper.start()
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(home / "cfg"))
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_KERNEL_RUN_TYPE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KAGGLE_API_ENVIRONMENT", "LOCALHOST")  # the CLI's LOCAL endpoint, patched to the fake
    monkeypatch.setenv("CHAII_FAKE_KAGGLE", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("CHAII_NO_NETWORK", "1")
    try:
        yield handler
    finally:
        stopper.cancel()
        server.shutdown()
        server.server_close()
