"""`src/` is the library the notebooks and kernels need; the research harness lives beside it and imports it.
The lint guard rails (`make lint`): ruff is clean and the import contract in pyproject.toml is kept, and can break."""
import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from src.common.paths import REPO_ROOT as ROOT

# the venv's console script beside this interpreter (`make lint` runs .venv/bin/lint-imports), else the one on PATH
_VENV_TOOL = Path(sys.executable).parent / "lint-imports"
LINT_IMPORTS = str(_VENV_TOOL) if _VENV_TOOL.is_file() else shutil.which("lint-imports") or "lint-imports"


def _imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_src_never_imports_the_research_harness():
    offenders = {p.name: sorted(m for m in _imported_modules(p) if m.split(".")[0] == "research")
                 for p in (ROOT / "src").rglob("*.py")}
    assert not {k: v for k, v in offenders.items() if v}


def test_no_benchmark_code_in_src():
    assert not [p.name for p in (ROOT / "src").rglob("*.py") if p.stem in {"bench", "ablate"}]


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    """lint-imports on the project at `root`, its packages imported from there; no cache, so nothing is written."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([LINT_IMPORTS, "--no-cache", "--no-logo"], cwd=root, env=env, capture_output=True,
                          text=True, timeout=120)


def test_the_import_contract_is_kept():
    done = _lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Contracts: 2 kept, 0 broken." in done.stdout


@pytest.mark.parametrize("module, line, broken, kept", [
    # a data module reaching up to the Kaggle stage: the layers contract breaks, the other holds
    ("src/data/load.py", "from src.kaggle import plan", "src stages import downward only",
     "src never imports the research harness"),
    # the library reaching into the research harness: the forbidden contract breaks, the layers hold
    ("src/common/io.py", "import research", "src never imports the research harness",
     "src stages import downward only"),
])
def test_the_import_contract_catches_a_wrong_import(tmp_path, module, line, broken, kept):
    """A copy of the project with one wrong import fails lint-imports and names the contract it breaks (and only it),
    so a kept contract above is a real check, not a configuration that matches nothing."""
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("src", "research"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=skip)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")

    done = _lint_imports(tmp_path)
    out = done.stdout + done.stderr
    assert done.returncode != 0, out
    assert re.search(rf"^{re.escape(broken)} BROKEN$", out, re.M), out
    assert re.search(rf"^{re.escape(kept)} KEPT$", out, re.M), out
    assert "Contracts: 1 kept, 1 broken." in out
    assert module.removesuffix(".py").replace("/", ".") in out    # the importing module is named


def test_ruff_is_clean():
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_help_lists_every_phony_target():
    """`make help` reads the Makefile's top comment block: a target added to .PHONY without a line there fails."""
    phony = re.search(r"^\.PHONY:(.*)$", (ROOT / "Makefile").read_text(encoding="utf-8"), re.M).group(1).split()
    done = subprocess.run(["make", "--no-print-directory", "help"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    listed = [m.group(1) for m in re.finditer(r"^  make (\S+) +\S", done.stdout, re.M)]
    assert sorted(listed) == sorted(phony), done.stdout
    assert {"demo", "test", "lint", "e2e", "kernels", "push", "status", "batch", "bench", "bench-grouping",
            "blend-check", "base-qa", "ablate", "ablate-target", "infer-settings", "clean-notebooks", "bf16-check",
            "e5-qa"} <= set(listed)
