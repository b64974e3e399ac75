"""`make reproduce`: the chain of kernels that fetch their own inputs, pushed in dependency order, polled, resumed
(a rerun pushes nothing that finished), kept to the weekly GPU quota, and its dry run, which touches no network.
The push order and the resume run against an in-memory Kaggle and against the real kaggle CLI talking to a loopback
fake of the Kaggle API (as tests/test_kaggle_kernels.py's push tests)."""
import json
import shutil
import socket
from datetime import timedelta
from pathlib import Path

import pytest

from src.kaggle import reproduce as rp
from src.kaggle.build import build
from src.kaggle.chain import order
from src.kaggle.sources import SOURCES_CONFIG
from src.kaggle.wheels import WHEELS_SLUG
from tests.fake_http import KaggleAPIHandler, guard_child_processes, saved, serve_kaggle_api

USER = "tester"
TRAIN = ["chaii-recipes-03-muril-large-fold0", "chaii-recipes-03-muril-large-fold1"]
DATA = ["chaii-recipes-data-tydi", "chaii-recipes-data-nq"]
SUBMIT = "chaii-recipes-05-submit"


@pytest.fixture(scope="module")
def chain_dir(tmp_path_factory) -> Path:
    """The built chain of the folds plan, muril-large x 2 (unsized: no GPU-hour estimates)."""
    out = tmp_path_factory.mktemp("chain")
    build(out, USER, {"muril-large": 2}, plan="folds", wheels=False, limits=False, sources_config=SOURCES_CONFIG)
    return out


def fresh(chain_dir: Path, tmp_path: Path) -> Path:
    out = tmp_path / "kernels"
    shutil.copytree(chain_dir, out)
    return out


class FakeClient:
    """Kaggle in memory: a pushed kernel is running at its first poll, then complete (or ends in `fail`)."""

    def __init__(self, fail=()):
        self.pushed, self.polls, self.complete, self.fail = [], {}, set(), set(fail)
        self.needs_at_push = {}

    def push(self, folder: Path, machine):
        self.pushed.append(folder.name)
        self.needs_at_push[folder.name] = set(self.complete)
        self.polls[folder.name] = 0
        return True, "Kernel version 1 successfully pushed.  Please check progress at https://www.kaggle.com/..."

    def status(self, kernel_id: str) -> str:
        slug = kernel_id.split("/")[-1]
        self.polls[slug] = self.polls.get(slug, 0) + 1     # a kernel an earlier run pushed is polled too
        if self.polls[slug] == 1:
            return "running"
        if slug in self.fail:
            return "error"
        self.complete.add(slug)
        return "complete"


def run(out: Path, client, **kw) -> int:
    return rp.run(out, USER, client, interval_s=0, sleep=lambda s: None, **kw)


# ---------------------------------------------------------------- the chain itself
def test_the_chain_submit_kernel_is_offline_over_outputs_and_no_kernel_attaches_a_data_set_of_the_users(chain_dir):
    index = json.loads((chain_dir / "kernels.json").read_text())
    assert index["order"] == [WHEELS_SLUG, *DATA, *TRAIN, SUBMIT]
    metas = {s: json.loads((chain_dir / s / "kernel-metadata.json").read_text()) for s in index["order"]}
    submit = metas[SUBMIT]
    assert submit["enable_internet"] is False and submit["dataset_sources"] == []
    assert submit["kernel_sources"] == [f"{USER}/{s}" for s in (WHEELS_SLUG, *TRAIN)]
    assert index["needs"][SUBMIT] == [WHEELS_SLUG, *TRAIN]
    for slug in TRAIN:
        m = metas[slug]
        assert m["enable_internet"] is True and m["machine_shape"] == "NvidiaTeslaT4"
        assert m["kernel_sources"] == [f"{USER}/{s}" for s in (WHEELS_SLUG, *DATA)] and m["dataset_sources"] == []
        nb = json.loads((chain_dir / slug / f"{slug}.ipynb").read_text())
        cells = ["".join(c["source"]) for c in nb["cells"]]
        fetch_at = next(i for i, c in enumerate(cells) if "prepare_training_inputs('muril-large', 'recipe_kaggle'" in c)
        assert fetch_at > max(i for i, c in enumerate(cells) if c.startswith("%%writefile"))   # after src/
        injected = next("".join(c["source"]) for c in nb["cells"]
                        if "injected-parameters" in c["metadata"].get("tags", []))
        assert 'models_dir = "../../tmp/chaii-models"' in injected and 'external_dir = "../../tmp/chaii-sources"' \
            in injected
    for slug in (WHEELS_SLUG, *DATA):   # no GPU, internet on, nothing of the user's attached
        m = metas[slug]
        assert (m["enable_gpu"], m["enable_internet"], m.get("machine_shape")) == (False, True, None)
        assert m["dataset_sources"] == [] and m["kernel_sources"] == []
    assert metas["chaii-recipes-data-nq"]["competition_sources"] == ["tensorflow2-question-answering"]
    for m in metas.values():
        assert not [d for d in m["dataset_sources"] if d.startswith(USER + "/")]


def test_the_winners_plan_chains_his_sources_and_a_backbone_without_a_hub_id_is_refused(tmp_path):
    from src.kaggle.chain import chain_plans
    from src.kaggle.plan import plan_kernels
    from src.kaggle.sources import SourcesError, load_catalogue

    plans = rp.chain(USER, None, "NvidiaTeslaT4", sized=False)
    slugs = order(plans)
    assert slugs[:2] == [WHEELS_SLUG, "chaii-recipes-data-tydi-primary"] and slugs[-1] == SUBMIT
    assert len(slugs) == 2 + 12 + 1   # his 13 models from 12 training kernels
    for p in plans[2:-1]:
        assert p.metadata["enable_internet"] and {"zacchaeus/chaiimlqaxquad", "thedrcat/nqsmall"} >= \
            set(p.metadata["dataset_sources"])
        assert p.metadata["kernel_sources"][:2] == [f"{USER}/{WHEELS_SLUG}", f"{USER}/chaii-recipes-data-tydi-primary"]
    assert plans[-1].metadata["enable_internet"] is False and plans[-1].metadata["dataset_sources"] == []
    e5 = plan_kernels(USER, {"e5-small-qa": 2}, sized=False)     # its weights are the user's own upload
    with pytest.raises(SourcesError, match="backbone 'e5-small-qa' has no hub id in the registry"):
        chain_plans(USER, e5, load_catalogue())


# ---------------------------------------------------------------- push order and resume
def test_each_kernel_is_pushed_after_what_it_reads_finished_and_a_rerun_pushes_nothing_finished(chain_dir, tmp_path,
                                                                                                capsys):
    out = fresh(chain_dir, tmp_path)
    client = FakeClient()
    assert run(out, client) == 0
    assert client.pushed == [WHEELS_SLUG, *DATA, *TRAIN, SUBMIT]
    needs = json.loads((out / "kernels.json").read_text())["needs"]
    for slug in client.pushed:
        assert set(needs[slug]) <= client.needs_at_push[slug], f"{slug} pushed before {needs[slug]} finished"
    printed = capsys.readouterr().out
    assert f"https://www.kaggle.com/code/{USER}/{SUBMIT}/output" in printed and '"Submit"' in printed

    again = FakeClient()
    assert run(out, again) == 0 and again.pushed == []
    assert f"{USER}/{WHEELS_SLUG}: finished" in capsys.readouterr().out

    # a training kernel rebuilt (its notebook changed): it runs again, and the submit kernel that reads it
    nb = out / TRAIN[1] / f"{TRAIN[1]}.ipynb"
    nb.write_text(nb.read_text().replace("fold = 1", "fold = 1\\n# edited"))
    edited = FakeClient()
    assert run(out, edited) == 0 and edited.pushed == [TRAIN[1], SUBMIT]


def test_a_failed_kernel_stops_the_chain_and_a_rerun_retries_it_then_pushes_what_depends_on_it(chain_dir, tmp_path,
                                                                                               capsys):
    out = fresh(chain_dir, tmp_path)
    failing = FakeClient(fail={TRAIN[0]})
    assert run(out, failing) == 1
    assert SUBMIT not in failing.pushed and f"{USER}/{TRAIN[0]} ended error" in capsys.readouterr().err
    retry = FakeClient()
    assert run(out, retry) == 0
    assert retry.pushed[0] == TRAIN[0] and retry.pushed[-1] == SUBMIT and WHEELS_SLUG not in retry.pushed
    state = json.loads((out / rp.STATE_FILE).read_text())["kernels"]
    assert all(k["status"] == "complete" for k in state.values()) and set(state) == set(retry.pushed) | set(
        failing.pushed)


def test_the_weekly_gpu_quota_leaves_the_rest_for_a_rerun_a_week_later(chain_dir, tmp_path, monkeypatch, capsys):
    out = fresh(chain_dir, tmp_path)
    (out / "gpu-hours.json").write_text(json.dumps({TRAIN[0]: 20.0, TRAIN[1]: 20.0, SUBMIT: 2.0}))
    client = FakeClient()
    assert run(out, client, gpu_hours=30.0) == 3
    assert client.pushed == [WHEELS_SLUG, *DATA, TRAIN[0]]
    assert "weekly GPU quota: 20.0 of 30 h" in capsys.readouterr().out
    assert run(out, FakeClient(), gpu_hours=30.0) == 3           # the same week: nothing more
    later = rp.now() + timedelta(days=8)
    monkeypatch.setattr(rp, "now", lambda: later)
    rest = FakeClient()
    assert run(out, rest, gpu_hours=30.0) == 0 and rest.pushed == [TRAIN[1], SUBMIT]


# ---------------------------------------------------------------- the real kaggle CLI against a fake API
class FakeKaggleAPI(KaggleAPIHandler):
    """The Kaggle API calls the CLI makes for push and status; a kernel runs for one poll, then completes."""
    polls: dict = {}

    def answer(self, method, body):
        if method == "IntrospectToken":
            return {"active": True, "username": USER}
        if method == "SaveKernel":
            self.polls[body["slug"].split("/")[-1]] = 0
            return saved(body["slug"])
        if method == "GetKernelSessionStatus":
            slug = body["kernelSlug"]
            self.polls[slug] = self.polls.get(slug, 0) + 1
            return {"status": "RUNNING" if self.polls[slug] == 1 else "COMPLETE"}
        return None


@pytest.fixture
def fake_api(tmp_path, monkeypatch):
    guard_child_processes(tmp_path, monkeypatch)
    FakeKaggleAPI.received, FakeKaggleAPI.polls = [], {}
    with serve_kaggle_api(FakeKaggleAPI, tmp_path, monkeypatch) as api:
        monkeypatch.setenv("KAGGLE_API_TOKEN", "tok-123")
        yield api


def test_the_real_cli_pushes_the_chain_in_order_and_a_second_reproduce_pushes_nothing(chain_dir, tmp_path, fake_api):
    out = fresh(chain_dir, tmp_path)
    assert run(out, rp.Kaggle()) == 0
    saves = [r["body"] for r in fake_api.received if r["method"] == "SaveKernel"]
    assert [s["slug"] for s in saves] == [f"{USER}/{s}" for s in (WHEELS_SLUG, *DATA, *TRAIN, SUBMIT)]
    by_slug = {s["slug"].split("/")[-1]: s for s in saves}
    assert by_slug[SUBMIT]["enableInternet"] is False and not by_slug[SUBMIT].get("datasetDataSources")
    assert by_slug[TRAIN[0]]["enableInternet"] is True and by_slug[TRAIN[0]]["machineShape"] == "NvidiaTeslaT4"
    assert by_slug["chaii-recipes-data-nq"]["competitionDataSources"] == ["tensorflow2-question-answering"]
    assert not by_slug[WHEELS_SLUG].get("machineShape") and by_slug[WHEELS_SLUG]["enableGpu"] is False
    fake_api.received.clear()
    assert run(out, rp.Kaggle()) == 0
    assert [r for r in fake_api.received if r["method"] in ("SaveKernel", "GetKernelSessionStatus")] == []


# ---------------------------------------------------------------- the dry run
@pytest.fixture
def no_network(monkeypatch):
    """Any connection from this process fails the test (the dry run must not reach Kaggle, the hub or PyPI)."""
    attempts = []

    def refuse(self, address, *a):
        attempts.append(address)
        raise OSError(f"network blocked in this test: connect to {address!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", lambda address, *a, **k: refuse(None, address))
    return attempts


def test_the_dry_run_prints_the_chain_and_touches_neither_the_network_nor_the_kernels_folder(tmp_path, no_network,
                                                                                             monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))             # no credentials: the dry run needs none
    for var in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY"):
        monkeypatch.delenv(var, raising=False)
    out = tmp_path / "kernels"
    assert rp.main(["--user", USER, "--dry-run", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    rows = [line for line in printed.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(rows) == 15 and rows[0].startswith(f"| 1 | {WHEELS_SLUG} | on | none (CPU) |")
    assert rows[-1].startswith(f"| 15 | {SUBMIT} | off | NvidiaTeslaT4 | outputs of {WHEELS_SLUG} and 12 training")
    training = [r for r in rows if "chaii-recipes-03-" in r]
    assert len(training) == 12 and all(" | on | NvidiaTeslaT4 | hub " in r for r in training)
    assert all(float(r.rsplit("|", 2)[1]) > 0 for r in training)      # each one's estimated GPU hours
    assert "GPU hours on 2 x T4" in printed and "of a 30 h weekly GPU quota" in printed
    assert "https://www.kaggle.com/c/chaii-hindi-and-tamil-question-answering/rules" in printed
    assert "Not pinned to a commit" in printed
    assert no_network == [] and not out.exists()
    assert rp.main(["--user", USER, "--dry-run", "--plan", "folds", "--counts", "muril-large=2"]) == 0
    assert "https://www.kaggle.com/c/tensorflow2-question-answering/rules" in capsys.readouterr().out
    assert no_network == []


def test_make_reproduce_passes_its_variables():
    import subprocess

    from src.common.paths import REPO_ROOT

    out = subprocess.run(["make", "-n", "--no-print-directory", "reproduce", "KAGGLE_USER=x", "DRY_RUN=1",
                          "EXTRA=infoxlm"], cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "-m src.kaggle.reproduce --out kernels --plan winner --user x" in out.stdout
    assert "--with infoxlm" in out.stdout and out.stdout.rstrip().endswith("--dry-run")


def test_without_a_user_name_nothing_is_built_and_the_error_names_the_make_variable(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("KAGGLE_USERNAME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "cfg"))
    assert rp.main(["--out", str(tmp_path / "k"), "--dry-run"]) == 2
    assert "pass --user NAME (make reproduce KAGGLE_USER=you)" in capsys.readouterr().err
    assert not (tmp_path / "k").exists()
