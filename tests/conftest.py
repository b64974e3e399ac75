import os
from pathlib import Path

import pytest

from src.backbones import ensure_tiny
from src.paths import REPO_ROOT

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
MODELS_DIR = Path(os.environ.get("CHAII_MODELS", REPO_ROOT / ".cache" / "backbones"))


def pytest_configure(config):
    config.addinivalue_line("markers", "wheels: the wheels dataset installed offline into a clean venv (pip, minutes)")


@pytest.fixture(scope="session")
def tiny_dirs() -> dict[str, Path]:
    """The two tiny backbones (WordPiece BERT-like, Unigram XLM-R-like), built once if absent."""
    return ensure_tiny(MODELS_DIR)


@pytest.fixture(scope="session", params=["tiny-bert", "tiny-xlmr"])
def tokenizer(request, tiny_dirs):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(tiny_dirs[request.param])
