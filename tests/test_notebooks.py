"""The five notebooks run end to end with papermill (reduced parameters) and write a valid submission."""
import json

import pandas as pd

from src.notebooks import NOTEBOOK_DIR, NOTEBOOKS, run_demo
from src.paths import REPO_ROOT
from src.submission import check_submission


def test_notebooks_are_thin_and_clean():
    for name in NOTEBOOKS:
        nb = json.loads((NOTEBOOK_DIR / f"{name}.ipynb").read_text(encoding="utf-8"))
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, f"{name}: needs exactly one cell tagged 'parameters'"
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), f"{name} has outputs"
        body = "".join("".join(c["source"]) for c in code)
        assert "def " not in body and "class " not in body, f"{name}: logic belongs in src/"


def test_demo_pipeline_writes_a_valid_submission(tmp_path, tiny_dirs):
    path = run_demo(tmp_path, tiny_dirs["tiny-bert"].parent, epochs=1)
    test = pd.read_csv(REPO_ROOT / "input" / "test.csv", dtype=str, keep_default_na=False)
    sub = pd.read_csv(path, dtype=str, keep_default_na=False)
    check_submission(sub, test["id"])
    for name in NOTEBOOKS:
        if name == "03_recipe_training":   # run once per backbone, beside each fold's model
            for backbone in ("tiny-bert", "tiny-xlmr"):
                assert (tmp_path / backbone / "fold0" / f"{name}.ipynb").exists()
        else:
            assert (tmp_path / f"{name}.ipynb").exists()
    for backbone in ("tiny-bert", "tiny-xlmr"):
        metrics = json.loads((tmp_path / backbone / "fold0" / "metrics.json").read_text())["metrics"]
        assert {"jaccard_all", "jaccard_hindi", "jaccard_tamil"} <= set(metrics)
    assert (tmp_path / "eda.png").exists()
    # 04 compared both single models, their character-level blend and the vote, per language; 05 read blend.json
    blend = pd.read_csv(tmp_path / "blend_table.csv")
    assert {"tiny-bert/fold0", "tiny-xlmr/fold0", "char blend, equal weights", "vote 2 of 2"} <= set(blend["prediction"])
    assert {"jaccard_all", "jaccard_hindi", "jaccard_tamil"} <= set(blend.columns)
    assert (tmp_path / "blend.png").exists() and (tmp_path / "oof_blend.csv").exists()
    assert "blend.json" in (tmp_path / "05_submit.ipynb").read_text()


def test_papermill_sees_every_parameter():
    """A parameter papermill cannot parse (e.g. '=' in its comment) is silently not overridable."""
    import re

    import papermill as pm

    for name in NOTEBOOKS:
        nb = json.loads((NOTEBOOK_DIR / f"{name}.ipynb").read_text(encoding="utf-8"))
        cell = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
        assigned = re.findall(r"^(\w+)\s*=", "".join(cell["source"]), flags=re.M)
        assert list(pm.inspect_notebook(str(NOTEBOOK_DIR / f"{name}.ipynb"))) == assigned, name
