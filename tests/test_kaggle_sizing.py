"""Kaggle kernel sizing: the table's arithmetic on a small recipe, the batch fitted to a GPU's memory, a build that
does not fit refused with the numbers (and fitted by a recipe `limit:` and one epoch), the default build fitting."""
import dataclasses
import json
import math

import pytest
import yaml

from src.common.paths import REPO_ROOT
from src.kaggle import build as kb
from src.kaggle import cli as kk
from src.kaggle import plan as kp
from src.kaggle import sizing as z
from src.kaggle import sizing_facts as f
from src.kaggle import sizing_windows as zw
from src.train.recipe import Augment, Recipe, Source, Stage

USER = "tester"
FPW = zw.flops_per_window


@pytest.fixture
def toy_sources(monkeypatch):
    """Two context lengths per source, so every window count below can be done by hand."""
    toy = f.SourceSize(100, 10.0, (50, 500))
    monkeypatch.setitem(f.SOURCES, "toy.json", toy)
    monkeypatch.setitem(f.SOURCES, "train.csv", f.SourceSize(1114, 10.0, (50, 500)))
    return toy


def test_window_lengths_follow_the_tokenizers_overflow():
    # room for 128 - 10 - 4 = 114 context tokens; overlap 32 -> a step of 82
    assert zw.window_lengths(50, 10, 128, 32) == [64]
    assert zw.window_lengths(500, 10, 128, 32) == [128.0] * 5 + [10 + 4 + 500 - 5 * 82]
    assert zw.mean_overlap(128, random_crop=True) == (64 + 128) / 2 and zw.mean_overlap(128, False) == 128
    # a batch of 2 from {64, 128} equally often pads to 128 unless both are 64 (1 in 4)
    hist = zw.Histogram([64, 128], [1, 1])
    assert hist.batch_max(2) == pytest.approx((0.25 * 64 + 0.75 * 128, 0.25 * 64 ** 2 + 0.75 * 128 ** 2))
    assert hist.batch_max(1) == pytest.approx((96, (64 ** 2 + 128 ** 2) / 2))
    # 2 x (4h^2 + 2h ffn) x s per layer, + 4 s^2 h of attention
    assert FPW(2, 8, 32, 10) == 2 * (2 * 10 * (4 * 64 + 2 * 8 * 32) + 4 * 100 * 8)


def test_the_table_counts_every_stage_and_every_epoch(toy_sources):
    """Stage 2 repeats its source twice, and two epochs run both stages twice: dropping any of it changes every
    number checked here."""
    toy = Source("toy", "squad", "toy/toy.json")
    recipe = Recipe("toy", [Stage("one", [toy], 128, 32), Stage("two", [Source("toy", "squad", "toy/toy.json",
                                                                                  repeats=2)], 128, 32)],
                    Augment(random_crop=False, progressive=False))
    size = z.size_training("k", recipe, "muril-large", 2, {"epochs": 2, "batch_size": 1}, "NvidiaTeslaT4")
    # per example: 1 window (context 50) or 6 (context 500): 3.5 on average, 350 for the source's 100 questions
    assert size.stage_windows == [2 * 350, 2 * 2 * 350]
    short, long = [64], [128] * 5 + [104]
    assert size.tokens == pytest.approx(6 * 50 * (sum(short) + sum(long)))       # 6 = (1 + 2 repeats) x 2 epochs
    s = f.SHAPES["muril-large"]
    train = 3 * 6 * 50 * sum(FPW(s.layers, s.hidden, s.ffn, w, w * w) for w in short + long)
    # the held-out fold (1114 / 2 rows) scored once at the backbone's 384 / 128: 1 window or 2 (384, 14 + 500 - 242)
    valid = 1114 / 2 / 2 * sum(FPW(s.layers, s.hidden, s.ffn, w, w * w) for w in (64, 384, 272))
    assert size.flops == pytest.approx(train + valid)
    assert size.hours(f.T4) == pytest.approx(f.SETUP_HOURS + size.flops / 20e12 / 3600)
    assert size.estimate_hours == pytest.approx(f.SETUP_HOURS + size.flops / (20e12 * f.DDP_SPEEDUP) / 3600)
    assert size.hours(f.P100) == pytest.approx(f.SETUP_HOURS + size.flops / (18.7e12 * 20 / 65) / 3600)
    one_epoch = z.size_training("k", recipe, "muril-large", 2, {"epochs": 1, "batch_size": 1}, "NvidiaTeslaT4")
    assert one_epoch.flops == pytest.approx(train / 2 + valid)


def test_a_sources_negative_keep_sizes_its_windows_as_the_recipes_fraction_would(toy_sources):
    """The winner's per-source keep probability is sized like the recipe-wide fraction it stands in for."""
    def windows(src, aug):
        r = Recipe("toy", [Stage("one", [src], 128, 32)], aug)
        return z.size_training("k", r, "muril-large", 2, {"epochs": 1, "batch_size": 1}, "NvidiaTeslaT4").stage_windows

    toy = Source("toy", "squad", "toy/toy.json")
    every = windows(toy, Augment())
    assert windows(dataclasses.replace(toy, negative_keep=0.25), Augment()) == windows(toy, Augment(
        negative_fraction=0.25)) != every
    assert windows(dataclasses.replace(toy, negative_keep=1.0), Augment(negative_fraction=0.25)) == every


def test_limit_on_a_source_and_the_chaii_fold_share_size_the_questions(toy_sources):
    plain = Source("toy", "squad", "toy/toy.json")
    assert z.source_questions(plain, "r", 5)[1] == 100
    assert z.source_questions(Source("toy", "squad", "toy/toy.json", limit=40), "r", 5)[1] == 40
    assert z.source_questions(Source("c", "chaii", "comp/train.csv"), "r", 5)[1] == pytest.approx(1114 * 4 / 5)
    with pytest.raises(z.SizingError, match=r"source 'x': no size known for 'x.json': add .* SOURCES"):
        z.source_questions(Source("x", "squad", "d/x.json"), "r", 5)


def test_model_shapes_give_the_public_parameter_counts():
    # muril-large-cased ~506M, rembert (QA, no output embeddings) ~575M, xlm-roberta-large ~560M
    assert [round(f.SHAPES[n].params / 1e6) for n in ("muril-large", "rembert", "xlm-roberta-large-squad2")] == \
        [505, 575, 559]


def test_a_batch_too_large_for_the_gpu_is_halved_with_the_same_optimizer_batch():
    rembert = f.SHAPES["rembert"]
    # 512-token windows (the recipe's TyDi bn/te in stage 2), eager attention: batch 4 does not fit a T4
    assert z.training_gpu_gib(rembert, 4, 512) > f.MEMORY_MARGIN * f.T4.memory_gib
    assert z.fit_batch(rembert, 4, 4, 512, f.T4) == (2, 8)
    assert z.fit_batch(f.SHAPES["muril-large"], 4, 4, 512, f.T4) == (4, 4)
    plans = {p.slug: p for p in kp.plan_kernels(USER, {"muril-large": 2, "rembert": 2})}
    assert (plans["chaii-recipes-03-rembert-fold0"].parameters["batch_size"],
            plans["chaii-recipes-03-rembert-fold0"].parameters["grad_accum"]) == (2, 8)
    assert "batch_size" not in plans["chaii-recipes-03-muril-large-fold0"].parameters
    # a batch set on the command line is kept, and judged as it is
    forced = kp.plan_kernels(USER, {"rembert": 2}, train_parameters={"batch_size": 4})[0]
    assert forced.parameters["batch_size"] == 4 and "GPU memory" in " ".join(forced.size.problems())


def test_a_p100_build_whose_kernels_do_not_fit_is_refused_with_the_numbers(tmp_path):
    with pytest.raises(kp.PlanError) as e:
        kb.build(tmp_path / "out", USER, {"rembert": 2}, wheels=False, machine="NvidiaTeslaP100")
    message = str(e.value)
    assert "do not fit Kaggle's limits on NvidiaTeslaP100" in message
    hours = [float(h) for h in __import__("re").findall(r"rembert-fold\d: (\d+\.\d) h on one P100 > 75% of the "
                                                         r"12 h run limit", message)]
    assert len(hours) == 2 and all(h > 12 for h in hours)
    assert not (tmp_path / "out").exists()                                   # nothing written


def test_a_p100_build_fits_with_a_squad_limit_and_one_epoch(tmp_path, capsys):
    recipe = yaml.safe_load((REPO_ROOT / "configs" / "recipe_kaggle.yaml").read_text())
    for src in recipe["stages"][0]["sources"]:
        if src["name"] == "squad":
            src["limit"] = 20_000
    path = tmp_path / "recipe_p100.yaml"
    path.write_text(yaml.safe_dump(recipe))
    full = kp.plan_kernels(USER, {"muril-large": 2}, machine="NvidiaTeslaP100")[0].size
    plans = kp.plan_kernels(USER, {"muril-large": 2}, recipe=str(path), train_parameters={"epochs": 1},
                            machine="NvidiaTeslaP100")
    kp.refuse_unfit(plans)
    assert plans[0].size.estimate_hours < 0.5 * full.estimate_hours
    folders = kb.build(tmp_path / "out", USER, {"muril-large": 2}, wheels=False, recipe=str(path),
                       train_parameters={"epochs": 1}, machine="NvidiaTeslaP100")
    meta = json.loads((folders[0] / "kernel-metadata.json").read_text())
    assert meta["machine_shape"] == "NvidiaTeslaP100"
    assert "chaii-recipes-03-muril-large-fold0" in capsys.readouterr().out


def test_the_default_build_is_his_13_models_and_prints_each_with_his_lb_and_its_hours(tmp_path, capsys):
    """What `make kernels KAGGLE_USER=x` runs (without the wheels download): his 12 runs and the submit kernel."""
    assert kk.main(["build", "--user", "x", "--out", str(tmp_path / "k"), "--no-wheels"]) == 0
    out = capsys.readouterr().out
    table = out[out.index("model "):].splitlines()
    assert table[0].split()[:5] == ["model", "backbone", "fold", "kept", "his"] and "h 2xT4" in table[0]
    submit = next(i for i, line in enumerate(table) if line.startswith("submit "))
    rows = {line.split()[0]: line for line in table[2:submit]}
    assert list(rows) == ["52", "68", "71", "73", "77-final", "78-final", "79-1000", "79-final", "116", "119f1",
                          "119f2", "122f0", "126-s1"]
    assert all(line.rstrip().endswith(" yes") for line in rows.values()), "\n".join(table)
    assert " 0.790 " in rows["79-1000"] and "(run of 79-1000)" in rows["79-final"]
    assert table[submit].rstrip().endswith(" yes") and " 13 models " in table[submit]
    assert any(line.startswith("68: fp16: in his fp32, ") for line in table)      # why a kernel is not his fp32
    order = json.loads((tmp_path / "k" / "kernels.json").read_text())["order"]
    assert len(order) == 13 and order[-1] == "chaii-recipes-05-submit"
    nb = (tmp_path / "k" / "chaii-recipes-03-winner-79" / "chaii-recipes-03-winner-79.ipynb").read_text()
    assert 'export_steps = \\"1000\\"' in nb and 'split = \\"winner\\"' in nb
    assert "%%writefile configs/winner_77.yaml" in nb


def test_the_folds_plan_build_prints_the_table_and_all_14_kernels_fit(tmp_path, capsys):
    """`make kernels KAGGLE_USER=x PLAN=folds`: 3/5/5 folds of recipe_kaggle."""
    assert kk.main(["build", "--user", "x", "--plan", "folds", "--out", str(tmp_path / "k"), "--no-wheels"]) == 0
    out = capsys.readouterr().out
    table = out[out.index("kernel "):].splitlines()
    rows = [line for line in table if line.startswith("chaii-recipes-")]
    assert len(rows) == 14 and all(line.rstrip().endswith(" yes") for line in rows), "\n".join(table)
    assert any(line.startswith("total: ") and "weekly GPU quota" in line for line in table)
    order = json.loads((tmp_path / "k" / "kernels.json").read_text())["order"]
    assert len(order) == 14
    assert {json.loads((tmp_path / "k" / s / "kernel-metadata.json").read_text())["machine_shape"] for s in order} \
        == {"NvidiaTeslaT4"}


def test_a_winner_kernel_is_sized_from_his_logged_run_in_his_fp32_where_it_fits_else_fp16():
    """68: his 255,016 windows of 384 tokens, the held-out fold scored every 1,000 of his 7,969 steps and at the
    end; in fp32 it would not fit a T4 kernel, so fp16, and the note says why."""
    from src.kaggle.winner_plan import load_winner_plan

    plan = {m.experiment: m for m in load_winner_plan()}
    m = plan["68"]
    size = z.size_winner("k", [m], "NvidiaTeslaT4")
    s = f.SHAPES["xlm-roberta-large"]
    valid = zw.source_windows(f.SOURCES["train.csv"], f.CHAII_TRAIN / 3, 384, 192, False)
    mean, mean_sq = valid.batch_max(1)
    scored = (1 + 7969 // 1000) * valid.windows * FPW(s.layers, s.hidden, s.ffn, mean, mean_sq)
    assert size.flops == pytest.approx(3 * 255_016 * FPW(s.layers, s.hidden, s.ffn, 384) + scored)
    assert size.stage_windows == [255_016] and size.tokens == 255_016 * 384
    fp32 = dataclasses.replace(size, precision="fp32")
    assert fp32.hours(f.T4, 2) == pytest.approx(f.SETUP_HOURS + size.flops / (8.1e12 * 20 / 65 * 1.8) / 3600)
    assert (size.precision, size.batch_size, size.grad_accum) == ("fp16", 8, 4)
    assert size.note.startswith(f"fp16: in his fp32, {fp32.estimate_hours:.1f} h on 2 x T4 > 75% of the 12 h")
    # a run a tenth as long keeps his fp32 (at a batch the T4 holds in fp32: the same optimizer batch)
    short = z.size_winner("k", [dataclasses.replace(m, train_windows=25_000, total_steps=781)], "NvidiaTeslaT4")
    assert (short.precision, short.note, short.batch_size * short.grad_accum) == ("fp32", "", 32) and \
        not short.problems()
    assert z.training_gpu_gib(s, 8, 384, fp32=True) > z.training_gpu_gib(s, 8, 384)
    # 79's kernel scores its step-1000 checkpoint too; 126 holds nothing out and scores nothing
    rows79 = [plan["79-1000"], plan["79-final"]]
    with_export, alone = z.size_winner("k", rows79, "NvidiaTeslaT4"), z.size_winner("k", rows79[1:], "NvidiaTeslaT4")
    assert with_export.flops > alone.flops
    m126 = plan["126-s1"]
    assert z.size_winner("k", [m126], "NvidiaTeslaT4").flops == pytest.approx(
        3 * 180_397 * FPW(*[getattr(f.SHAPES["rembert"], a) for a in ("layers", "hidden", "ffn")], 384))


def test_plan_command_prints_his_13_models_by_default(capsys):
    """`python -m src.kaggle plan`: each of his models with his public LB and its kernel's hours on 2 x T4."""
    assert kk.main(["plan", "--user", "x"]) == 0
    out = capsys.readouterr().out
    assert "his LB" in out and "h 2xT4" in out and out.count(" rembert ") == 5 and "126-s1 " in out


def test_plan_command_prints_the_table_and_exits_1_when_a_kernel_does_not_fit(capsys):
    assert kk.main(["plan", "--user", "x", "--counts", "rembert=2"]) == 0
    assert "chaii-recipes-03-rembert-fold1" in capsys.readouterr().out
    assert kk.main(["plan", "--user", "x", "--counts", "rembert=2", "--machine", "NvidiaTeslaP100"]) == 1
    captured = capsys.readouterr()
    assert "NO: " in captured.out and "h on one P100 > 75% of the 12 h run limit" in captured.err


def test_make_kernels_passes_the_machine():
    import subprocess

    out = subprocess.run(["make", "-n", "kernels", "KAGGLE_USER=x", "MACHINE=NvidiaTeslaP100"], cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=60)
    assert "src.kaggle build" in out.stdout and "--machine NvidiaTeslaP100" in out.stdout, out.stdout + out.stderr


def test_submit_kernel_is_sized_against_the_competitions_rerun_limit():
    size = kp.plan_kernels(USER)[-1].size
    assert size.submit and size.limits.hours == f.SUBMIT_HOURS == 5
    per_row = sum(len(zw.window_lengths(c, 11.6, 384, 128)) for c in f.SOURCES["train.csv"].context_tokens) / 5
    assert size.stage_windows == [pytest.approx(13 * f.TEST_ROWS * per_row)]
    assert math.isclose(size.hours(f.T4, 2), f.SETUP_HOURS + size.flops / (20e12 * 1.8) / 3600)
