"""The five notebooks run end to end with papermill (reduced parameters) and write a valid submission."""
import json

import pandas as pd

from src.blend.submission import check_submission
from src.common.paths import REPO_ROOT
from src.notebooks.run import NOTEBOOK_DIR, NOTEBOOKS, run_demo


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
    compared = {"tiny-bert/fold0", "tiny-xlmr/fold0", "char blend, equal weights", "vote 2 of 2"}
    assert compared <= set(blend["prediction"])
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


def test_kernel_starts_without_the_tcp_encryption_warning(tmp_path, capfd):
    """ipykernel 7 prints "Kernel is running over TCP without encryption" at each start unless the kernel gets
    CurveZMQ keys; a newcomer reads it as an error once per notebook of `make demo`."""
    import nbformat

    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python",
                                                          "display_name": "Python 3"}})
    nb.cells = [nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("print('x is', x)")]
    src = tmp_path / "src"
    src.mkdir()
    nbformat.write(nb, src / "tiny.ipynb")
    from src.notebooks.run import run_notebook

    out = run_notebook("tiny", tmp_path / "out", {"x": 7}, progress=False, notebook_dir=src)
    captured = capfd.readouterr()
    assert "without encryption" not in captured.err + captured.out
    assert nbformat.read(out, 4).cells[-1].outputs[0]["text"] == "x is 7\n"


def test_make_clean_notebooks_clears_outputs_and_keeps_the_parameters_tag(tmp_path):
    """`make clean-notebooks` (nbconvert's ClearOutputPreprocessor) turns a notebook run in Jupyter back into the
    committed file byte for byte, and leaves every committed notebook as it is (they are already clean)."""
    import shutil
    import subprocess

    import nbformat

    committed = {name: (NOTEBOOK_DIR / f"{name}.ipynb").read_text(encoding="utf-8") for name in NOTEBOOKS}
    for name in NOTEBOOKS:
        shutil.copy(NOTEBOOK_DIR / f"{name}.ipynb", tmp_path / f"{name}.ipynb")
    # 02 as Jupyter and papermill leave it: outputs, counts, run metadata
    ran = tmp_path / "02_tokenizer.ipynb"
    nb = nbformat.read(ran, 4)
    for i, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        cell.execution_count = i + 1
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"out {i}\n")]
        cell.metadata["execution"] = {"iopub.execute_input": "2026-01-01T00:00:00Z"}
        cell.metadata["papermill"] = {"duration": 1.0, "status": "completed"}
    nb.metadata["papermill"] = {"duration": 3.0}
    nbformat.write(nb, ran)
    assert ran.read_text(encoding="utf-8") != committed["02_tokenizer"]
    mtimes = {p: p.stat().st_mtime_ns for p in tmp_path.glob("*.ipynb") if p != ran}

    # -o: the venv is there; do not let make reinstall it from a newer requirements.txt
    out = subprocess.run(["make", "-s", "-o", ".venv/.installed", "clean-notebooks",
                          f"CLEAN_NOTEBOOKS={tmp_path}/*.ipynb"], cwd=REPO_ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 of 5 notebook(s) changed" in out.stdout
    for name in NOTEBOOKS:
        assert (tmp_path / f"{name}.ipynb").read_text(encoding="utf-8") == committed[name], name
    assert all(p.stat().st_mtime_ns == t for p, t in mtimes.items()), "clean notebooks were rewritten"
    tagged = [c for c in nbformat.read(ran, 4).cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1


def test_clean_notebooks_names_a_broken_file(tmp_path):
    import pytest

    from src.notebooks.run import clear_outputs

    bad = tmp_path / "broken.ipynb"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="broken.ipynb: not a readable notebook"):
        clear_outputs([bad])
