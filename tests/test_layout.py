"""`src/` is the library the notebooks and kernels need; the research harness lives beside it and imports it."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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
