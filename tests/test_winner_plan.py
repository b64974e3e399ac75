"""The winner's 13 models as a plan (configs/winner_plan.csv) held against his README table (a verbatim copy in
tests/data), the loader's errors, and the notebook-03 parameters each kernel of the plan gets."""
import dataclasses
import re
from pathlib import Path

import pytest

from src.kaggle import winner_plan as wp
from src.train.backbones import get_backbone
from src.train.fold import TrainConfig

README_TABLE = Path(__file__).parent / "data" / "kldarek_readme_table.md"
# Where his notebooks and his README disagree, the plan holds the notebook's value and says so in its note:
# REMBERT_pretraining77/78/79 cell 17 `learning_rate=9e-6`, the README's "1".
NOTEBOOK_OVER_README = {("77-final", "lr"), ("78-final", "lr"), ("79-1000", "lr"), ("79-final", "lr")}


def readme_rows() -> list[dict]:
    lines = README_TABLE.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("<!--") and "kldarek/chaii @ e0a1805" in lines[0]      # the header names its source
    table = [line for line in lines[1:] if line.startswith("|")]
    head = [c.strip() for c in table[0].strip("|").split("|")]
    return [dict(zip(head, (c.strip() for c in line.strip("|").split("|")), strict=True)) for line in table[2:]]


def readme_fold(row: dict) -> str:
    """The fold his table states: 'fold 1/3' / 'fold 0' in the data text, 'f0' in the name, 'all data' (126)."""
    m = re.search(r"fold (\d)", row["data"]) or re.search(r"f(\d)$", row["Experiment"])
    if m:
        return m.group(1)
    return "all" if "all data" in row["data"] else "none"


@pytest.fixture(scope="module")
def plan():
    return {m.experiment: m for m in wp.load_winner_plan()}


def test_the_plan_holds_his_readme_table_row_by_row(plan):
    rows = readme_rows()
    assert [r["Experiment"] for r in rows] == list(plan) and len(plan) == 13
    differ = set()
    for r in rows:
        m = plan[r["Experiment"]]
        ours = {"backbone": m.backbone, "schedule": TrainConfig().lr_scheduler, "wmup": m.warmup_ratio,
                "ep": m.epochs, "lr": m.learning_rate, "wd": m.weight_decay, "bs/ga": f"{m.batch_size}/{m.grad_accum}",
                "seqlen": m.seq_len, "LB": m.public_lb,
                "Checkpoint": m.checkpoint.replace("step", "checkpoint"), "fold": m.fold}
        his = {"backbone": r["backbone"], "schedule": r["schedule"], "wmup": float(r["wmup"]), "ep": int(r["ep"]),
               "lr": float(r["lr (e-5)"]) * 1e-5, "wd": float(r["wd"]), "bs/ga": r["bs/ga"], "seqlen": r["seqlen"],
               "LB": int(r["LB"]) / 1000, "Checkpoint": r["Checkpoint"], "fold": readme_fold(r)}
        for column, value in his.items():
            same = ours[column] == (pytest.approx(value) if isinstance(value, float) else value)
            if not same:
                differ.add((m.experiment, column))
    assert differ == NOTEBOOK_OVER_README
    for experiment, _ in NOTEBOOK_OVER_README:       # each one says so, with the notebook's cell
        assert plan[experiment].learning_rate == 9e-6
        assert "9e-6 in the notebook (cell 17), 1e-5 in the README" in plan[experiment].note
    # his table's "eval on chaii" (52) trained without chaii; "all data" (126) on every row: no out-of-fold rows
    assert (plan["52"].fold, plan["126-s1"].fold) == ("none", "all")
    assert [m.experiment for m in plan.values() if not m.held_out] == ["52", "126-s1"]


def test_every_row_cites_its_notebook_and_the_backbones_are_his_hub_models(plan):
    hub = {"xlm-roberta-large": "xlm-roberta-large",          # XLMR_pretraining68 cell 3
           "muril-large": "google/muril-large-cased",         # MURIL_pretraining71 cell 3
           "rembert": "google/rembert"}                       # REMBERT_pretraining77 cell 3
    for m in plan.values():
        assert get_backbone(m.backbone).hub_id == hub[m.backbone]
        assert m.notebook.endswith(".ipynb") and "cell" in m.cells and m.precision == "fp32"
    # 77-79 are 68's recipe with the chaii tail shuffled (REMBERT_pretraining77 cell 13): winner_77
    assert {m.recipe for m in plan.values()} == {"winner_52", "winner_68", "winner_77", "winner_116", "winner_119",
                                                 "winner_122", "winner_126"}
    # his step counts follow from his windows and batch as his Trainer computed them (load_winner_plan checks it)
    assert (plan["68"].train_windows, plan["68"].total_steps) == (255_016, 7_969)
    assert plan["52"].total_steps == 2 * (-(-138_118 // 8) // 4)


def test_79s_two_checkpoints_come_from_one_kernel_with_the_step_exported(plan):
    kernels = wp.by_kernel(list(plan.values()))
    assert len(kernels) == 12 and [m.experiment for m in kernels["79"]] == ["79-1000", "79-final"]
    params = wp.kernel_parameters(kernels["79"])
    assert params == dict(backbone="rembert", fold=2, n_folds=3, split="winner", recipe="winner_77", seed=79,
                          learning_rate=9e-6, warmup_ratio=0.1, epochs=1, weight_decay=0.01, batch_size=8,
                          grad_accum=16, max_length=384, doc_stride=192, eval_steps=200, fp16=False,
                          export_steps="1000", export_steps_of=1949)
    assert [wp.model_subdir(m) for m in kernels["79"]] == ["step1000/model", "model"]
    assert wp.kernel_parameters(kernels["71"])["export_steps"] == "7000"
    assert "export_steps" not in wp.kernel_parameters(kernels["68"])
    # 126 trained on every chaii row and 52 on none: nothing is held out, so nothing is scored during training
    for k in ("126-s1", "52"):
        assert (wp.kernel_parameters(kernels[k])["fold"], wp.kernel_parameters(kernels[k])["eval_steps"]) == (-1, 0)
    assert wp.kernel_parameters(kernels["68"], fp16=True)["fp16"] is True
    names = {f.name for f in dataclasses.fields(TrainConfig)} | {"recipe"}
    assert all(set(wp.kernel_parameters(g)) <= names for g in kernels.values())


def write_plan(tmp_path, edit) -> Path:
    text = wp.WINNER_PLAN.read_text(encoding="utf-8")
    path = tmp_path / "plan.csv"
    path.write_text(edit(text), encoding="utf-8")
    return path


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace(",winner_116,0,116,", ",winner_116,3,116,"), r"row 10 \(116\), field 'fold': '3'"),
    (lambda t: t.replace("\n68,68,xlm-roberta-large,", "\n68,68,xlm-r,"), r"row 3 \(68\), field 'backbone': 'xlm-r'"),
    (lambda t: t.replace("step 7000,1000,fp32,0.802", "step 9000,1000,fp32,0.802"),
     r"row 4 \(71\), field 'checkpoint': step 9000 is not inside the run's 7261 steps"),
    (lambda t: t.replace(",0.788,255016,7969,", ",0.788,255016,7000,"),
     r"row 3 \(68\): total_steps 7000 but train_windows 255016 at batch 8 x 4 over 1 epoch\(s\) give 7969"),
    (lambda t: t.replace(",1e-05,0.2,1,0.01,8,4,384,192,384/192,final,1000", ",1e-05,0.2,one,0.01,8,4,384,192,"
                         "384/192,final,1000", 1), r"field 'epochs': 'one' is not a whole number"),
    (lambda t: t.replace("\n73,73,", "\n71,73,"), r"experiment\(s\) \['71'\] listed twice"),
    (lambda t: t.replace("79-final,79,rembert,winner_77,2,79,9e-06", "79-final,79,rembert,winner_77,2,80,9e-06"),
     r"kernel '79' trains 79-1000 and 79-final in one run, but they differ in seed"),
])
def test_a_bad_plan_file_is_refused_naming_row_and_field(tmp_path, edit, message):
    path = write_plan(tmp_path, edit)
    assert path.read_text() != wp.WINNER_PLAN.read_text()          # the edit applied
    with pytest.raises(wp.WinnerPlanError, match=message):
        wp.load_winner_plan(path)
