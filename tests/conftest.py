import os
import tempfile
from pathlib import Path

import pytest

from src.common.paths import REPO_ROOT
from src.train.stand_ins import ensure_tiny

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# session-wide too: fixtures of wider scope (and the subprocesses they start) run before the per-test one below
os.environ["CHAII_EXPERIMENT_LOG"] = str(Path(tempfile.mkdtemp(prefix="chaii-explog-")) / "experiments.jsonl")
MODELS_DIR = Path(os.environ.get("CHAII_MODELS", REPO_ROOT / ".cache" / "backbones"))


def pytest_configure(config):
    config.addinivalue_line("markers", "wheels: the wheels dataset installed offline into a clean venv (pip, minutes)")


@pytest.fixture(autouse=True)
def experiment_log(tmp_path, monkeypatch) -> Path:
    """Every test's training runs log to a temporary file, never to the committed docs/experiments.jsonl."""
    from src.train.explog import LOG_ENV
    log = tmp_path / "experiments.jsonl"
    monkeypatch.setenv(LOG_ENV, str(log))
    return log


@pytest.fixture(scope="session")
def tiny_dirs() -> dict[str, Path]:
    """The two tiny backbones (WordPiece BERT-like, Unigram XLM-R-like), built once if absent."""
    return ensure_tiny(MODELS_DIR)


@pytest.fixture(scope="session", params=["tiny-bert", "tiny-xlmr"])
def tokenizer(request, tiny_dirs):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(tiny_dirs[request.param])


@pytest.fixture(scope="session")
def qa_split():
    """48 synthetic training questions and 12 held out: the training tests' data (frames: copy before changing)."""
    from src.data.synthetic import make_synthetic_qa
    return make_synthetic_qa(48, seed=0), make_synthetic_qa(12, seed=1)
