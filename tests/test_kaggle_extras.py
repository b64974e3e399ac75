"""A family beyond the winner's (`--with infoxlm`, `make kernels EXTRA=infoxlm`): its training kernels join any plan
and the submit kernel reads, sizes and votes over their models too."""
import json
import re
import subprocess

import pytest

from src.common.paths import REPO_ROOT
from src.kaggle import cli as kk
from src.kaggle import extras as kx
from src.kaggle import plan as kp

USER = "someone"
THREE = {"muril-large": 3, "rembert": 5, "xlm-roberta-large-squad2": 5}   # the folds plan's counts


def view(plans):
    return [(p.slug, p.notebook, p.parameters, p.metadata, p.submit, p.needs, p.recipe) for p in plans]


def test_with_infoxlm_is_the_folds_plan_with_infoxlms_five_folds_and_every_kernel_fits():
    got = kx.add_extra_kernels(kp.plan_kernels(USER, THREE), kx.parse_extras(["infoxlm"]), USER)
    assert view(got) == view(kp.plan_kernels(USER, {**THREE, "infoxlm-large": 5}))
    extra = [p for p in got if p.parameters.get("backbone") == "infoxlm-large"]
    assert [(p.parameters["fold"], p.parameters["n_folds"]) for p in extra] == [(k, 5) for k in range(5)]
    assert all(f"{USER}/infoxlm-large" in p.metadata["dataset_sources"] for p in extra)
    submit = got[-1]
    assert submit.parameters["model_dirs"].split(",")[-5:] == [
        f"../input/{p.slug}/infoxlm-large/fold{p.parameters['fold']}/model" for p in extra]
    assert submit.metadata["kernel_sources"][-5:] == [f"{USER}/{p.slug}" for p in extra]
    assert submit.size.backbone.endswith("5x infoxlm-large") and submit.size.stage_windows[0] > \
        kp.plan_kernels(USER, THREE)[-1].size.stage_windows[0]
    assert not [p.slug for p in got if p.size.problems()]


def test_on_the_winners_plan_infoxlm_trains_the_folds_of_his_split_and_the_submit_kernel_still_fits():
    """His 13 models share his 3-fold split: InfoXLM's 3 kernels hold out the rows his models held out, and the
    submit kernel over 16 models stays inside the 5 h rerun on one T4 (with 4 more it would not)."""
    from src.kaggle.winner_kernels import plan_for

    base = plan_for("winner", USER)
    got = kx.add_extra_kernels(base, kx.parse_extras(["infoxlm"]), USER)
    assert view(got[:-1][:len(base) - 1]) == view(base[:-1])
    extra = got[len(base) - 1:-1]
    assert [(p.parameters["fold"], p.parameters["n_folds"], p.parameters["split"]) for p in extra] == \
        [(k, 3, "winner") for k in range(3)]
    assert kx.plan_split(base[:-1]) == ("winner", 3) and kx.plan_split(kp.plan_kernels(USER, THREE)[:-1]) is None
    submit = got[-1]
    assert submit.parameters["blend"] == "" and len(submit.parameters["model_dirs"].split(",")) == 16
    assert not [p.slug for p in got if p.size.problems()]
    own = kx.add_extra_kernels(base, {"infoxlm-large": 4}, USER)     # not his split's count: its own 4-fold split
    assert [p.parameters.get("split") for p in own[len(base) - 1:-1]] == [None] * 4
    assert "rerun limit" in "; ".join(own[-1].size.problems())


def test_extras_join_a_plan_of_any_shape_and_a_backbone_is_never_planned_twice(tmp_path):
    """A plan with a family on its own recipe: the extra's kernels come before the submit kernel, which reads them,
    and a --recipe-for for a backbone of the base plan is not asked of the extra's plan."""
    short = tmp_path / "short.yaml"
    short.write_text((REPO_ROOT / "configs" / "recipe_kaggle.yaml").read_text())
    recipes = {"muril-large@short": str(short)}
    base = kp.plan_kernels(USER, {"muril-large": 2, "muril-large@short": 2}, recipes=recipes)
    got = kx.add_extra_kernels(base, {"infoxlm-large": 3}, USER, recipes=recipes)
    assert view(got[:4]) == view(base[:4]) and got[-1].submit and len(got) == 8
    assert [p.parameters["backbone"] for p in got[4:7]] == ["infoxlm-large"] * 3
    assert got[-1].needs == [p.slug for p in got[:7]]
    assert [kx.model_backbone_dir(d) for d in got[-1].parameters["model_dirs"].split(",")] == \
        ["muril-large"] * 2 + ["muril-large@short"] * 2 + ["infoxlm-large"] * 3
    with pytest.raises(kp.PlanError, match="infoxlm-large is in the plan already"):
        kx.add_extra_kernels(got, {"infoxlm-large": 2}, USER)
    with pytest.raises(kp.PlanError, match="is not its submit kernel"):
        kx.add_extra_kernels(got[:-1], {"infoxlm-large": 2}, USER)
    assert kx.add_extra_kernels(base, {}, USER) is base


@pytest.mark.parametrize("values, expected", [
    (["infoxlm"], {"infoxlm-large": None}),            # the plan's default (add_extra_kernels)
    (["infoxlm=3"], {"infoxlm-large": 3}),
    ([" infoxlm = 2 "], {"infoxlm-large": 2}),
    ([], {}),
])
def test_parse_extras(values, expected):
    assert kx.parse_extras(values) == expected


@pytest.mark.parametrize("value, message", [
    ("xlnet", "unknown family 'xlnet'; known: infoxlm"),
    ("infoxlm=1", "at least 2"),
    ("infoxlm=x", "at least 2"),
])
def test_parse_extras_errors_name_the_option(value, message):
    with pytest.raises(kp.PlanError, match=message):
        kx.parse_extras([value])


def test_plan_command_lists_the_extra_kernels_and_their_hours(capsys):
    assert kk.main(["plan", "--user", USER, "--counts", "rembert=2", "--with", "infoxlm=2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    head = re.split(r"\s{2,}", lines[0])
    rows = [dict(zip(head, re.split(r"\s{2,}", line), strict=True)) for line in lines
            if line.startswith("chaii-recipes-")]
    assert [r["kernel"] for r in rows] == ["chaii-recipes-03-rembert-fold0", "chaii-recipes-03-rembert-fold1",
                                           "chaii-recipes-03-infoxlm-large-fold0",
                                           "chaii-recipes-03-infoxlm-large-fold1", "chaii-recipes-05-submit"]
    assert all(r["fits"] == "yes" for r in rows)
    # InfoXLM's 3 epochs (the 4th place's) against RemBERT's registry 2, each with its hours on 2 x T4
    assert rows[2]["epochs"] == "3" and rows[0]["epochs"] == "2" and float(rows[2]["h 2xT4"]) > 0
    assert kk.main(["plan", "--user", USER, "--with", "xlnet"]) == 1
    assert "unknown family 'xlnet'" in capsys.readouterr().err


def test_build_with_infoxlm_writes_its_kernels_before_the_submit_kernel(tmp_path, capsys):
    out = tmp_path / "k"
    assert kk.main(["build", "--user", USER, "--out", str(out), "--no-wheels", "--counts", "rembert=2",
                    "--with", "infoxlm=2"]) == 0
    order = json.loads((out / "kernels.json").read_text())["order"]
    assert order[2:] == ["chaii-recipes-03-infoxlm-large-fold0", "chaii-recipes-03-infoxlm-large-fold1",
                         "chaii-recipes-05-submit"]
    meta = json.loads((out / order[-1] / "kernel-metadata.json").read_text())
    assert meta["kernel_sources"][-2:] == [f"{USER}/{s}" for s in order[2:4]]
    nb = (out / order[-1] / meta["code_file"]).read_text()
    assert "../input/chaii-recipes-03-infoxlm-large-fold1/infoxlm-large/fold1/model" in nb


def test_make_passes_extra_to_kernels_and_e2e():
    for target in ("kernels", "e2e"):
        out = subprocess.run(["make", "-n", target, "KAGGLE_USER=x", "EXTRA=infoxlm"], cwd=REPO_ROOT,
                             capture_output=True, text=True, timeout=60)
        assert "--with infoxlm" in out.stdout, out.stdout + out.stderr


def test_e2e_with_infoxlm_builds_four_families_and_mounts_tiny_xlmr_as_its_weights(tmp_path, tiny_dirs):
    """What `make e2e EXTRA=infoxlm` builds before it runs anything: 4 families x 2 folds and a submit kernel over
    the 8 models, InfoXLM's weights data set holding its stand-in (the run itself: docs/kaggle.md)."""
    from research.kaggle_sim import e2e
    from research.kaggle_sim.sim import place_weights
    from src.kaggle.build import build

    added = {b: 2 for b in kx.parse_extras(["infoxlm"])}
    place_weights(tmp_path / "store", list(added), tiny_dirs["tiny-xlmr"].parent)
    assert (tmp_path / "store" / "infoxlm-large" / "config.json").read_text() == \
        (tiny_dirs["tiny-xlmr"] / "config.json").read_text()
    folders = build(tmp_path / "k", e2e.E2E_USER, {b: 2 for b in kp.WINNER_COUNTS}, wheels=False,
                    train_parameters=e2e.TRAIN_PARAMETERS, limits=False, extras=added)
    assert [f.name for f in folders[6:]] == ["chaii-recipes-03-infoxlm-large-fold0",
                                             "chaii-recipes-03-infoxlm-large-fold1", "chaii-recipes-05-submit"]
    meta = json.loads((folders[-1] / "kernel-metadata.json").read_text())
    assert len(meta["kernel_sources"]) == 8 and meta["kernel_sources"][-1].endswith("infoxlm-large-fold1")
    with pytest.raises(SystemExit):
        e2e.main(["--with", "infoxlm", "--help"])
