"""Kaggle kernels: metadata pitfalls caught before sending, self-contained folders, a built submit kernel runs
offline in a simulated /kaggle tree, and the real kaggle CLI pushes to a loopback fake of the Kaggle API."""
import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from src import kaggle_kernels as kk
from src.paths import COMPETITION, REPO_ROOT
from src.submission import check_submission

USER = "tester"
TRAIN_SLUG = "chaii-recipes-03-muril-large-fold0"
SUBMIT_SLUG = "chaii-recipes-05-submit"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("kernels")
    kk.build(out, USER, folds=[0], wheels=False)
    return out


def valid_meta(**changes) -> dict:
    meta = kk.kernel_metadata(USER, SUBMIT_SLUG, f"{SUBMIT_SLUG}.ipynb", [], [],
                              json.loads(kk.ROOT_METADATA.read_text()))
    meta.update(changes)
    return meta


# ---------------------------------------------------------------- metadata
def test_metadata_pitfalls_are_caught_with_file_and_field():
    kk.check_metadata(valid_meta(), "m.json", submit=True)
    cases = [
        (dict(id=None), "field 'id': missing"),
        (dict(id=f"{USER}/Chaii_Submit!"), "slug 'Chaii_Submit!' is invalid"),
        (dict(id=f"{kk.USER_PLACEHOLDER}/{SUBMIT_SLUG}"), "placeholder"),
        (dict(enable_internet=True), "field 'enable_internet': true on a submission kernel"),
        (dict(enable_internet=None), "field 'enable_internet': None: write true or false explicitly"),
        (dict(code_file=""), "field 'code_file': missing"),
        (dict(title="another title"), "resolves to slug 'another-title'"),
        (dict(dataset_sources=["dataset/nbroad/rembert"]), "dataset/ prefix"),
        (dict(kernel_sources=["code/tester/k"]), "code/ prefix"),
        (dict(competition_sources=["c/" + COMPETITION]), "slug alone"),
    ]
    for change, message in cases:
        with pytest.raises(kk.MetadataError, match=message) as e:
            kk.check_metadata(valid_meta(**change), "m.json", submit=True)
        assert str(e.value).startswith("m.json: field")
    meta = valid_meta()
    del meta["enable_internet"]
    with pytest.raises(kk.MetadataError, match="explicitly"):
        kk.check_metadata(meta, "m.json")
    with pytest.raises(kk.MetadataError, match="'k.ipynb' not found in"):
        kk.check_metadata(valid_meta(code_file="k.ipynb"), "m.json", folder=Path("/nonexistent"))


def test_pulled_prefixes_are_stripped_and_a_bad_template_stops_the_build(tmp_path):
    meta = kk.strip_source_prefixes({"dataset_sources": ["dataset/nbroad/rembert", "a/b"],
                                     "kernel_sources": ["code/u/k"], "competition_sources": ["c/" + COMPETITION]})
    assert meta == {"dataset_sources": ["nbroad/rembert", "a/b"], "kernel_sources": ["u/k"],
                    "competition_sources": [COMPETITION]}
    kk.read_template()  # the committed root kernel-metadata.json is valid
    template = json.loads(kk.ROOT_METADATA.read_text())
    for change, message in [(dict(enable_internet=True), "enable_internet"), (dict(code_file=None), "code_file"),
                            (dict(code_file="nope.ipynb"), "'nope.ipynb' not found"), (dict(id=None), "'id'")]:
        path = tmp_path / "kernel-metadata.json"
        (tmp_path / "notebooks").mkdir(exist_ok=True)
        shutil.copy(REPO_ROOT / "notebooks" / "05_submit.ipynb", tmp_path / "notebooks")
        path.write_text(json.dumps({**template, **change}))
        with pytest.raises(kk.MetadataError, match=message):
            kk.build(tmp_path / "out", USER, wheels=False, template_path=path)
        assert not (tmp_path / "out" / "kernels.json").exists()


def test_user_name_comes_from_option_env_or_kaggle_json(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("KAGGLE_USERNAME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "cfg"))
    assert kk.kaggle_user() is None
    assert kk.main(["build", "--out", str(tmp_path / "k"), "--no-wheels"]) == 2
    assert "pass --user NAME" in capsys.readouterr().err and not (tmp_path / "k").exists()
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "kaggle.json").write_text(json.dumps({"username": "from-json", "key": "k"}))
    assert kk.kaggle_user() == "from-json"
    monkeypatch.setenv("KAGGLE_USERNAME", "from-env")
    assert kk.kaggle_user() == "from-env" and kk.kaggle_user("explicit") == "explicit"
    with pytest.raises(kk.MetadataError, match="user name 'Bad User' is invalid"):
        kk.build(tmp_path / "k", "Bad User", wheels=False)


# ---------------------------------------------------------------- build
def test_build_writes_self_contained_kernel_folders(built):
    order = json.loads((built / "kernels.json").read_text())["order"]
    assert order == [TRAIN_SLUG, "chaii-recipes-03-rembert-fold0", "chaii-recipes-03-xlm-roberta-large-squad2-fold0",
                     SUBMIT_SLUG]
    train = json.loads((built / TRAIN_SLUG / "kernel-metadata.json").read_text())
    assert train["id"] == f"{USER}/{TRAIN_SLUG}" and train["code_file"] == f"{TRAIN_SLUG}.ipynb"
    assert (train["language"], train["kernel_type"], train["enable_gpu"], train["enable_internet"]) == \
        ("python", "notebook", True, False)
    assert train["dataset_sources"] == ["nbroad/muril-large-cased", f"{USER}/{kk.WHEELS_SLUG}"]
    assert train["competition_sources"] == [COMPETITION]
    submit = json.loads((built / SUBMIT_SLUG / "kernel-metadata.json").read_text())
    assert submit["kernel_sources"] == [f"{USER}/{TRAIN_SLUG}"] and submit["enable_internet"] is False
    nb = nbformat.read(built / TRAIN_SLUG / f"{TRAIN_SLUG}.ipynb", as_version=4)
    nbformat.validate(nb)
    written = {c.source.split("\n", 1)[0].split()[1]: c.source.split("\n", 1)[1] for c in nb.cells
               if c.cell_type == "code" and c.source.startswith("%%writefile")}
    assert written == kk.src_files()  # every module, verbatim
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and 'backbone = "muril-large"' in injected[0].source and "fold = 0" in injected[0].source
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")


def test_wheels_are_the_hf_stack_not_kaggles_compiled_packages():
    from importlib.metadata import version

    reqs = kk.wheel_requirements()
    assert f"transformers=={version('transformers')}" in reqs and f"tokenizers=={version('tokenizers')}" in reqs
    names = {r.split("==")[0] for r in reqs}
    assert not names & {"torch", "numpy", "pandas", "pyarrow", "nvidia-cublas-cu12"}


# ---------------------------------------------------------------- offline run in a simulated /kaggle tree
SOCKET_GUARD = '''
import os, socket
if os.environ.get("CHAII_NO_NETWORK") == "1":
    _connect = socket.socket.connect
    def _guarded(self, address, *a):
        host = address[0] if isinstance(address, tuple) else address
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in ("127.0.0.1", "::1", "localhost"):
            raise OSError(f"network blocked in this test: connect to {address!r}")
        return _connect(self, address, *a)
    socket.socket.connect = _guarded
if os.environ.get("CHAII_FAKE_KAGGLE"):
    import kagglesdk.kaggle_env as env
    env._env_to_endpoint[env.KaggleEnv.LOCAL] = os.environ["CHAII_FAKE_KAGGLE"]
'''


@pytest.fixture
def sitecustomize(tmp_path, monkeypatch) -> Path:
    """Python processes started by the test (kernel, kaggle CLI) load this: network guard, fake-API endpoint."""
    d = tmp_path / "site"
    d.mkdir()
    (d / "sitecustomize.py").write_text(SOCKET_GUARD)
    monkeypatch.setenv("PYTHONPATH", str(d))
    return d


def test_built_submit_kernel_runs_offline_in_a_simulated_kaggle_tree(built, tmp_path, tiny_dirs, monkeypatch,
                                                                   sitecustomize):
    import papermill as pm

    from src.synthetic import make_synthetic_qa
    from src.train import TrainConfig, train_fold

    root = tmp_path / "sim"
    kin, work = root / "kaggle" / "input", root / "kaggle" / "working"
    work.mkdir(parents=True)
    shutil.copytree(REPO_ROOT / "input", kin / COMPETITION)
    # the training kernel's output, as Kaggle mounts it: tiny-bert standing in for muril-large
    train_fold(make_synthetic_qa(60, seed=5), TrainConfig(
        backbone="muril-large", model_path=str(tiny_dirs["tiny-bert"]), epochs=1, batch_size=8, grad_accum=1,
        max_length=128, doc_stride=48, save_steps=10_000,
        output_dir=str(kin / TRAIN_SLUG / "muril-large" / "fold0")))
    wheels = kin / kk.WHEELS_SLUG
    wheels.mkdir()
    (wheels / "requirements.txt").write_text("\n".join(kk.wheel_requirements()) + "\n")  # all satisfied here

    nb = nbformat.read(built / SUBMIT_SLUG / f"{SUBMIT_SLUG}.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import src, os\nprint('SRC', src.__file__)\nprint('HF', os.environ['HF_HUB_OFFLINE'])"))
    probe = tmp_path / "kernel.ipynb"
    nbformat.write(nb, probe)
    monkeypatch.setenv("CHAII_KAGGLE_ROOT", str(root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("CHAII_NO_NETWORK", "1")
    out = pm.execute_notebook(str(probe), str(tmp_path / "executed.ipynb"), cwd=str(work), kernel_name="python3",
                              progress_bar=False)
    printed = "".join(o.get("text", "") for c in out.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert f"SRC {work / 'src' / '__init__.py'}" in printed  # the inlined package, not the repo's
    test = pd.read_csv(kin / COMPETITION / "test.csv", dtype=str, keep_default_na=False)
    sub = pd.read_csv(work / "submission.csv", dtype=str, keep_default_na=False)
    check_submission(sub, test["id"])
    assert (work / "src" / "train.py").read_text() == (REPO_ROOT / "src" / "train.py").read_text()


def test_network_guard_blocks_outside_connections(sitecustomize):
    import os
    import subprocess
    import sys

    env = dict(os.environ, CHAII_NO_NETWORK="1")
    out = subprocess.run([sys.executable, "-c", "import socket; socket.create_connection(('93.184.216.34', 80), 5)"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "network blocked in this test" in out.stderr


# ---------------------------------------------------------------- push against a loopback fake Kaggle API
class FakeKaggle(BaseHTTPRequestHandler):
    """The three Kaggle API calls the CLI makes here; records every request."""
    received: list = []
    refuse: str = "rembert"  # SaveKernel answers an API error for slugs containing this

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        method = self.path.rsplit("/", 1)[-1]
        self.received.append({"path": self.path, "method": method, "auth": self.headers.get("Authorization"),
                              "body": body})
        if method == "IntrospectToken":
            reply = {"active": body.get("token") == "tok-123", "username": USER}
        elif method == "SaveKernel":
            slug = body["slug"].split("/")[-1]
            reply = ({"error": f"Dataset not found: nbroad/{self.refuse}"} if self.refuse in slug else
                     {"ref": f"/code/{body['slug']}", "url": f"http://127.0.0.1/code/{body['slug']}",
                      "versionNumber": 1})
        elif method == "GetKernelSessionStatus":
            reply = {"status": "ERROR" if self.refuse in body["kernelSlug"] else "COMPLETE"}
        else:
            self.send_response(404)
            self.end_headers()
            return
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_kaggle(monkeypatch, tmp_path, sitecustomize):
    FakeKaggle.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeKaggle)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stopper = threading.Timer(300, server.shutdown)  # stops by itself if the test hangs
    stopper.start()
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))          # no real credentials are read
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(home / "cfg"))
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_KERNEL_RUN_TYPE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KAGGLE_API_ENVIRONMENT", "LOCALHOST")  # the CLI's LOCAL endpoint, patched to the fake
    monkeypatch.setenv("CHAII_FAKE_KAGGLE", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("CHAII_NO_NETWORK", "1")
    try:
        yield FakeKaggle
    finally:
        stopper.cancel()
        server.shutdown()
        server.server_close()


def test_push_without_credentials_sends_nothing(built, fake_kaggle, capsys):
    assert kk.main(["push", "--out", str(built)]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "KAGGLE_API_TOKEN" in err and "nothing was pushed" in err
    assert fake_kaggle.received == []


def test_push_with_bad_metadata_sends_nothing(built, fake_kaggle, tmp_path, capsys, monkeypatch):
    copy = tmp_path / "copy"
    shutil.copytree(built, copy)
    meta_path = copy / SUBMIT_SLUG / "kernel-metadata.json"
    meta_path.write_text(json.dumps({**json.loads(meta_path.read_text()), "enable_internet": True}))
    monkeypatch.setenv("KAGGLE_API_TOKEN", "tok-123")
    assert kk.main(["push", "--out", str(copy)]) == 1
    assert "enable_internet" in capsys.readouterr().err
    assert fake_kaggle.received == []


def test_real_cli_pushes_to_the_loopback_api(built, fake_kaggle, monkeypatch, capsys):
    monkeypatch.setenv("KAGGLE_API_TOKEN", "tok-123")
    assert kk.main(["push", "--out", str(built)]) == 1  # the rembert kernel is refused by the API
    out = capsys.readouterr()
    assert "tester/chaii-recipes-03-rembert-fold0: push FAILED" in out.err
    assert "Dataset not found: nbroad/rembert" in out.err
    got = fake_kaggle.received
    assert got[0]["method"] == "IntrospectToken" and got[0]["body"]["token"] == "tok-123"
    assert all(r["path"].startswith("/api/v1/") for r in got)
    saves = [r for r in got if r["method"] == "SaveKernel"]
    assert [s["body"]["slug"] for s in saves] == [f"{USER}/{slug}" for slug in json.loads(
        (built / "kernels.json").read_text())["order"]]
    assert all(s["auth"] == "Bearer tok-123" for s in saves)
    first = saves[0]["body"]
    assert (first["language"], first["kernelType"], first["isPrivate"], first["enableGpu"],
            first["enableInternet"]) == ("python", "notebook", True, True, False)
    assert first["datasetDataSources"] == ["nbroad/muril-large-cased", f"{USER}/{kk.WHEELS_SLUG}"]
    assert first["competitionDataSources"] == [COMPETITION]
    submit = saves[-1]["body"]
    assert submit["kernelDataSources"] == [f"{USER}/{TRAIN_SLUG}"] and submit["enableInternet"] is False
    source = json.loads(submit["text"])
    cells = "\n".join(c["source"] for c in source["cells"])
    assert "%%writefile src/train.py" in cells and "def train_fold(" in cells
    assert "%%writefile src/submission.py" in cells and 'model_dirs = "../input/' in cells

    # status polls the same API through the CLI; a failed kernel makes the exit non-zero
    assert kk.main(["status", "--out", str(built)]) == 1
    printed = capsys.readouterr().out
    assert f"{USER}/{TRAIN_SLUG}: complete" in printed and f"{USER}/chaii-recipes-03-rembert-fold0: error" in printed
