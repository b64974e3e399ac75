"""`make e2e-real`'s pieces: its data keep the held-out articles out of training, its families plan as kernels with
their own recipes, and its scoring of the saved logits (each model, each family, the vote) is the metric's."""
import json

import numpy as np
import pandas as pd
import pytest

from research.kaggle_sim import e2e_real, e2e_scores
from src.common.paths import REPO_ROOT, SHARED_DIR
from src.infer.metric import paired_gain
from src.kaggle.plan import plan_kernels
from src.train.recipe import load_recipe

DATA = SHARED_DIR / "data"
needs_shared = pytest.mark.skipif(not (DATA / "xquad").is_dir(), reason="shared real data not present")


@needs_shared
def test_the_competition_data_never_holds_a_held_out_article_in_training():
    from research.experiments import evalsets

    data = e2e_real.competition_data(DATA, {"hindi": 30, "tamil": 20}, {"hindi": 10, "tamil": 5})
    files, held = data["files"], set(evalsets.held_out_titles(DATA))
    train, test, solution = files["train.csv"], files["test.csv"], files["solution.csv"]
    assert train["language"].value_counts().to_dict() == {"hindi": 30, "tamil": 20}
    assert list(test["id"]) == list(solution["id"]) and len(test) == 15 and "answer_text" not in test
    assert not set(train["context"]) & set(test["context"])
    assert {a["title"] for a in data["squad_dev"]["data"]}.isdisjoint(held) and len(data["squad_dev"]["data"]) == 36
    assert all(json.loads(a) for a in solution["answers"])
    assert sorted(data["tydi_dev"]) == sorted(f"{lang}_tydiqa_dev.json" for lang in e2e_real.TYDI_DEV)


def test_sampling_asks_no_more_than_there_is():
    df = pd.DataFrame({"id": list("abcde"), "language": ["hindi"] * 3 + ["tamil"] * 2})
    assert list(e2e_real.sample_train(df, {"hindi": 2, "tamil": 2})["language"]) == ["hindi", "hindi", "tamil", "tamil"]
    with pytest.raises(ValueError, match="3 tamil training questions asked, .* has 2"):
        e2e_real.sample_train(df, {"hindi": 1, "tamil": 3})


def test_the_three_families_plan_as_kernels_each_with_its_own_recipe_and_data(tmp_path):
    conf = tmp_path / "kaggle_datasets.yaml"
    conf.write_text("datasets:\n" + "".join(f'  {k}: "{v}"\n' for k, v in e2e_real.DATASETS.items()))
    plans = plan_kernels("e2e-user", {f: 2 for f in e2e_real.FAMILIES}, recipes=e2e_real.FAMILIES,
                         datasets_config=conf, train_parameters=e2e_real.TRAIN_PARAMETERS, sized=False)
    *training, submit = plans
    assert len(training) == 6 and len({p.slug for p in training}) == 6
    for p in training:
        family = p.parameters["backbone"]
        assert p.parameters["recipe"] == e2e_real.FAMILIES[family]
        assert "e2e-user/e5-small-qa" in p.metadata["dataset_sources"]
        assert {"e2e-user/tydiqa-goldp", "e2e-user/squad-dev"} <= set(p.metadata["dataset_sources"])
    assert submit.parameters["model_dirs"].count("/model") == 6
    recipes = {f: load_recipe(r) for f, r in e2e_real.FAMILIES.items()}
    assert [r.augment.negative_fraction for r in recipes.values()] == [1.0, 0.3, 1.0]
    assert not recipes["e5-small-qa@plain"].sequential and recipes["e5-small-qa@his68"].sequential
    for r in recipes.values():      # every source is one the simulation places
        for src in (s for stage in r.stages for s in stage.sources if s.kind != "chaii"):
            assert src.path.split("/")[0] in e2e_real.DATASETS, src.path


def test_the_third_family_is_his_68_type_recipe_over_e2e_reals_sources():
    """His passes (XLMR_pretraining68 cells 12, 14) as the winner grid maps them: TyDi 0.1 in both passes, chaii
    0.1 then 0.2 then every window alone, SQuAD paragraphs in pass 1 with every window; nothing else changed
    against plain: the same sources and limits, 256/96, no crop, resizing or cutout."""
    from research.experiments.ablate_winner import KEEP

    his = load_recipe(e2e_real.FAMILIES["e5-small-qa@his68"])
    plain = load_recipe(e2e_real.FAMILIES["e5-small-qa@plain"])
    assert [s.name for s in his.stages] == list(KEEP) == ["pass1", "pass2", "tail"] and his.sequential
    keep = {st.name: {s.name: s.negative_keep for s in st.sources} for st in his.stages}
    tydi = ("tydi_en_dev", "tydi_bn_dev", "tydi_te_dev")
    assert keep["pass1"] == {**dict.fromkeys(tydi, KEEP["pass1"]["tydi"]), "squad_dev": None,
                             "chaii": KEEP["pass1"]["target"]}
    assert keep["pass2"] == {**dict.fromkeys(tydi, KEEP["pass2"]["tydi"]), "chaii": KEEP["pass2"]["target"]}
    assert keep["tail"] == {"chaii": KEEP["tail"]["target"]} == {"chaii": None}
    assert his.augment.negative_fraction == 1.0    # a source without its own keep keeps every window
    a = his.augment
    assert not (a.random_crop or a.progressive or a.cutout or a.token_cutout or a.soft_label_radius)
    assert his.stage_lengths() == [plain.stage_lengths()[0]] * 3 == [(256, 96)] * 3
    sources = {s.name: s for st in plain.stages for s in st.sources}
    for st in his.stages:   # the same files, limits and fold rule as plain's: only the recipe differs
        for s in st.sources:
            assert (s.kind, s.path, s.limit, s.articles, s.folds) == (
                sources[s.name].kind, sources[s.name].path, sources[s.name].limit, "all", "train"), s.name


def test_each_built_training_kernel_inlines_its_familys_recipe(tmp_path):
    conf = tmp_path / "kaggle_datasets.yaml"
    conf.write_text("datasets:\n" + "".join(f'  {k}: "{v}"\n' for k, v in e2e_real.DATASETS.items()))
    (tmp_path / "kernels" / "stale").mkdir(parents=True)       # a previous build's folder goes
    *training, submit = e2e_real.build_kernels(tmp_path / "kernels", 2, conf, e2e_real.TRAIN_PARAMETERS)
    assert not (tmp_path / "kernels" / "stale").exists() and len(training) == 2 * len(e2e_real.FAMILIES)
    by_tag = {family.split("@")[1]: (family, recipe) for family, recipe in e2e_real.FAMILIES.items()}
    seen = []
    for folder in training:
        family, recipe = next(v for tag, v in by_tag.items() if f"-{tag}-fold" in folder.name)
        nb = json.loads(next(folder.glob("*.ipynb")).read_text(encoding="utf-8"))
        cells = ["".join(c["source"]) for c in nb["cells"]]
        configs = [c.split("\n", 1)[0] for c in cells if c.startswith("%%writefile configs/")]
        assert configs == [f"%%writefile configs/{recipe}.yaml"], (folder.name, configs)
        text = (REPO_ROOT / "configs" / f"{recipe}.yaml").read_text(encoding="utf-8")
        assert f"%%writefile configs/{recipe}.yaml\n{text}" in cells, folder.name
        assert f'backbone = "{family}"' in "".join(cells) and f'recipe = "{recipe}"' in "".join(cells)
        seen.append(recipe)
    assert sorted(seen) == sorted(2 * list(e2e_real.FAMILIES.values())) and "chaii_like_his68" in seen


def test_a_family_of_one_model_is_that_model_and_the_vote_needs_two_families(tiny_dirs):
    from src.infer.devices import predict_models

    test = pd.read_csv(REPO_ROOT / "input" / "test.csv", dtype=str, keep_default_na=False).head(8)
    bert, xlmr = str(tiny_dirs["tiny-bert"]), str(tiny_dirs["tiny-xlmr"])
    logits = predict_models([bert, xlmr, bert], test, num_processes=1)
    answers = e2e_scores.candidates(test, logits, ["a@x", "b@y", "c@z"])
    assert answers["a@x fold 0"] == answers["a@x (1 folds averaged)"]
    assert answers["a@x fold 0"] == answers["c@z fold 0"]       # the same model under two family names
    vote = answers["vote 2 of 3 families"]
    for i in test["id"]:    # a and c agree on every word: the vote is a's answer widened to whole words
        a = answers["a@x fold 0"][i]
        assert a in vote[i] and len(vote[i].split()) == len(a.split()), (a, vote[i])
    assert set(answers) >= {"char blend of 3 families, equal weights", "b@y (1 folds averaged)"}


def test_the_paired_gain_is_the_mean_difference_with_an_interval_around_it():
    rng = np.random.default_rng(0)
    b = rng.uniform(size=400)
    g, lo, hi = paired_gain(b + 0.1, b)
    assert g == pytest.approx(0.1) and lo == pytest.approx(0.1) and hi == pytest.approx(0.1)
    g, lo, hi = paired_gain(rng.uniform(size=400), b)
    assert lo < g < hi and hi - lo > 0.02


def test_per_question_takes_the_best_gold():
    sol = pd.DataFrame({"id": ["q1", "q2"], "answers": [["नई दिल्ली", "दिल्ली"], ["चेन्नई"]]})
    assert list(e2e_scores.per_question({"q1": "दिल्ली", "q2": "मदुरै"}, sol)) == [1.0, 0.0]


def test_the_table_names_the_folds_the_run_trained_and_the_gains_are_over_the_best_family():
    sol = pd.DataFrame({"id": ["q1", "q2"], "language": ["hindi", "tamil"],
                        "answers": [["नई दिल्ली"], ["சென்னை"]]})
    answers = {"a@x (2 folds averaged)": {"q1": "दिल्ली", "q2": "சென்னை"},
               "b@y (2 folds averaged)": {"q1": "", "q2": ""},
               "vote 2 of 2 families": {"q1": "नई दिल्ली", "q2": "சென்னை"}}
    scores = pd.DataFrame([{"answers": n, "all": a, "all_lo": a, "all_hi": a}
                           for n, a in zip(answers, [0.75, 0.0, 1.0], strict=True)])
    best, gains = e2e_scores.gains_over_best_family(answers, scores, sol)
    assert best == "a@x (2 folds averaged)" and {g["answers"] for g in gains} == {"vote 2 of 2 families"}
    by_lang = {g["language"]: g["gain"] for g in gains}
    assert by_lang == pytest.approx({"hindi": 0.5, "tamil": 0.0, "all": 0.25})
    info = {"train_questions": 160, "train_by_language": "hindi 96, tamil 64", "test_by_language": "hindi 2",
            "date": "2026-12-07", "cpu": "cpu", "precision": "bf16", "minutes": 1.0, "train_minutes": 0.5,
            "submit_minutes": 0.5, "git_commit": "0" * 40, "blend": "vote over 2", "folds": 3, "families": 2}
    text = e2e_scores.markdown(scores, gains, info)
    assert "3 folds x 2 families" in text     # the run's own --folds, not the module's default of 2
    assert "| vote 2 of 2 families | a@x (2 folds averaged) | hindi | +0.500 [" in text
