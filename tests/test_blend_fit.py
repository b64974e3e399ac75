"""Fitting the blend on out-of-fold predictions: folds merged per backbone, weights cross-fitted, blend.json read
back and used by notebook 05. Run folders are synthetic (a 'model' defined on characters, projected onto the tiny
tokenizers' real windows), so no training is needed."""
import json

import numpy as np
import pandas as pd
import pytest
from test_blend import char_model, long_examples, project

from src.blend import fit as blend_fit
from src.blend.combine import BlendConfig, ensemble_spans
from src.blend.fit import cross_fitted_spans, fit_blend
from src.blend.settings import BlendFileError, check_settings, load_blend_json
from src.common.io import write_json
from src.infer.span_text import span_texts


@pytest.fixture(scope="module")
def toks(tiny_dirs):
    from transformers import AutoTokenizer
    return {n: AutoTokenizer.from_pretrained(tiny_dirs[n]) for n in ("tiny-bert", "tiny-xlmr")}


def next_word(df):
    """Per row, the (start, end) of the word after the gold answer: a model pointing there is wrong."""
    out = []
    for c, s, a in zip(df["context"], df["answer_start"], df["answer_text"], strict=True):
        nxt = c.index(" ", s + len(a)) + 1
        out.append((nxt, c.find(" ", nxt) if c.find(" ", nxt) > 0 else len(c)))
    return out


def write_run(root, backbone, fold, n_folds, rows, tokenizer, seed, right=True):
    """A training run folder as train_fold writes it: held-out logits + metrics.json naming backbone and fold."""
    d = root / backbone / f"fold{fold}"
    answers = None if right else next_word(rows)
    project(rows, char_model(rows, seed, answers=answers), tokenizer).save(d / "oof_logits.npz")
    write_json({"config": {"backbone": backbone, "fold": fold, "n_folds": n_folds, "seed": 42}, "metrics": {}},
               d / "metrics.json")
    return str(d)


def split(df, n):
    """n folds of pairs of rows (the synthetic rows alternate hindi/tamil: every fold holds both languages)."""
    return [df[(df.index // 2) % n == k] for k in range(n)]


def test_notebook_04_blends_two_folds(tmp_path, toks):
    """Issue 10.1: two folds of each backbone hold disjoint rows; the table used to be all NaN and tuning raised
    in scipy. Now every row is scored once per backbone and the tuned blend is cross-fitted over the folds."""
    from src.notebooks.run import run_notebook

    df = long_examples(12)
    data = tmp_path / "data"
    data.mkdir()
    df.drop(columns="source").to_csv(data / "train.csv", index=False)
    runs = [write_run(tmp_path / "runs", b, k, 2, rows, toks[b], seed=10 * i + k)
            for i, b in enumerate(("tiny-bert", "tiny-xlmr")) for k, rows in enumerate(split(df, 2))]
    out = tmp_path / "blend"
    run_notebook("04_blend", out, dict(data_dir=str(data), run_dirs=",".join(runs), out_dir=str(out)),
                 progress=False)
    table = pd.read_csv(out / "blend_table.csv").set_index("prediction")
    assert not table[["jaccard_all", "jaccard_hindi", "jaccard_tamil"]].isna().any().any()
    assert {"tiny-bert/fold0", "tiny-bert/fold1", "tiny-bert, 2 runs merged", "vote 2 of 2",
            "char blend, equal weights", "char blend, tuned weights (cross-fitted)"} <= set(table.index)
    assert table.loc["tiny-bert/fold0", "rows"] == 6 and table.loc["vote 2 of 2", "rows"] == 12
    oof = pd.read_csv(out / "oof_blend.csv", dtype={"id": str})
    assert sorted(oof["id"]) == sorted(df["id"]) and set(oof["fold"]) == {0, 1}
    assert list(oof.columns[:5]) == ["id", "fold", "language", "answer_text", "prediction"]
    blend = load_blend_json(out / "blend.json")
    assert blend.runs == {"tiny-bert": ["tiny-bert/fold0", "tiny-bert/fold1"],
                          "tiny-xlmr": ["tiny-xlmr/fold0", "tiny-xlmr/fold1"]}
    assert blend.cv["cross_fitted_over"] == "training folds of tiny-bert"
    assert (out / "blend.png").exists()


def test_cross_fitted_weights_never_score_a_row_they_were_tuned_on(toks, monkeypatch):
    """Model A is right on fold 0 and wrong on fold 1, model B the other way round. Weights tuned in-sample
    could pick per fold; cross-fitted, each fold gets the weights learnt on the other, which favour the model
    that is wrong here: a leak would show as a high score."""
    df = long_examples(12)
    f0 = np.arange(len(df)) % 2 == 0
    wrong = next_word(df)
    rows = list(zip(df["answer_start"], df["answer_text"], f0, wrong, strict=True))
    a_ans = [(s, s + len(t)) if f else w for s, t, f, w in rows]
    b_ans = [w if f else (s, s + len(t)) for s, t, f, w in rows]
    from src.blend.combine import char_scores
    lengths = df["context"].str.len().to_numpy()
    scores = [char_scores(df["id"].to_numpy(), lengths, project(df, char_model(df, s, answers=ans), toks[t]))
              for s, ans, t in ((1, a_ans, "tiny-bert"), (2, b_ans, "tiny-xlmr"))]
    tuned_on = []
    real = blend_fit.tune_weights
    monkeypatch.setattr(blend_fit, "tune_weights",
                        lambda ex, *a, **k: tuned_on.append(set(ex["id"])) or real(ex, *a, **k))
    groups = np.where(f0, 0, 1)
    spans, weights = cross_fitted_spans(df, scores, groups, BlendConfig())
    assert tuned_on == [set(df["id"][~f0]), set(df["id"][f0])]          # fold 0 scored with fold-1 weights
    assert weights["0"][1] > weights["0"][0] and weights["1"][0] > weights["1"][1]
    got = span_texts(df["context"], spans)
    # every row: the model that is wrong there
    assert got == [c[a:b] for c, (a, b) in zip(df["context"], wrong, strict=True)]


def test_same_fold_seeds_are_averaged_and_other_folds_concatenated(tmp_path, toks):
    df = long_examples(9)
    f = split(df, 3)
    runs = [write_run(tmp_path / "s1", "tiny-bert", 0, 3, f[0], toks["tiny-bert"], 1),
            write_run(tmp_path / "s2", "tiny-bert", 0, 3, f[0], toks["tiny-bert"], 2),
            write_run(tmp_path / "s1", "tiny-bert", 1, 3, f[1], toks["tiny-bert"], 3),
            write_run(tmp_path / "s1", "tiny-bert", 2, 3, f[2], toks["tiny-bert"], 4)]
    with pytest.raises(ValueError, match="given twice"):
        fit_blend(df, runs + runs[:1])
    fit = fit_blend(df, runs, BlendConfig(tune_weights=False))
    assert fit.table.loc["tiny-bert, 4 runs merged", "rows"] == 9
    assert fit.table.loc["s2/tiny-bert/fold0", "rows"] == len(f[0])   # the second seed keeps a distinct name
    assert fit.settings.scheme == "single" and fit.settings.backbones == ["tiny-bert"]
    assert sorted(fit.oof["id"]) == sorted(df["id"]) and fit.oof["jaccard"].mean() == 1.0
    # a run holding out some rows of another run's fold cannot be merged
    bad = write_run(tmp_path / "s3", "tiny-bert", 1, 3, df.iloc[[0, 1, 4]], toks["tiny-bert"], 5)
    with pytest.raises(ValueError, match="both hold out row"):
        fit_blend(df, [runs[0], bad])
    with pytest.raises(FileNotFoundError, match="no out-of-fold logits"):
        fit_blend(df, [str(tmp_path / "nowhere" / "fold0")])
    with pytest.raises(ValueError, match="not in train.csv"):
        fit_blend(df.iloc[1:], runs[:1])


def test_winner_three_backbones_vote_by_default(tmp_path, toks):
    """Nothing tuned, 3 backbones: the winner's 2-of-3 vote, strongest backbone first. A third backbone one word
    off is outvoted; blend.json applied to the same logits at submission gives the OOF answers."""
    df = long_examples(8)
    specs = [("muril-large", "tiny-bert", True), ("rembert", "tiny-xlmr", False),
             ("xlm-roberta-large-squad2", "tiny-xlmr", True)]
    runs = [write_run(tmp_path, b, 0, 1, df, toks[t], seed=i, right=r) for i, (b, t, r) in enumerate(specs)]
    fit = fit_blend(df, runs, BlendConfig(tune_weights=False))
    s = fit.settings
    assert s.scheme == "vote" and s.vote_k == 0 and fit.chosen == "vote 2 of 3"    # 0: a majority, 2 of 3
    assert s.backbones[-1] == "rembert" and set(s.backbones) == {b for b, _, _ in specs}
    assert fit.oof["jaccard"].mean() == 1.0 and fit.table.loc["rembert alone", "jaccard_all"] < 0.5
    assert s.cv["candidates"]["vote 2 of 3"] == 1.0
    assert "char blend, tuned weights (cross-fitted)" not in s.cv["candidates"]
    from src.infer.predict import WindowLogits
    logits = {b: WindowLogits.load(tmp_path / b / "fold0" / "oof_logits.npz") for b, _, _ in specs}
    spans = ensemble_spans(df, [logits[b] for b in s.backbones], s.backbones, cfg=s.blend_config(),
                           scheme=s.scheme, backbone_weights=s.weights)
    assert np.array_equal(spans, fit.spans[fit.chosen])
    # tuned: the scheme is the best cross-fitted candidate
    tuned = fit_blend(df, runs, BlendConfig(tune_weights=True, tune_maxiter=3))
    cands = tuned.settings.cv["candidates"]
    assert "char blend, tuned weights (cross-fitted)" in cands and cands[tuned.chosen] == max(cands.values())


def test_four_families_vote_by_majority_and_a_tie_goes_to_the_strongest(tmp_path, toks):
    """Nothing tuned, 4 families (InfoXLM the fourth): the default vote is a majority, 3 of 4. Two families point at
    the word after the answer: a 2-2 split on that word, which the strongest family (right) decides; "2 of 4"
    keeps it, the answer and that word forming one run of kept words."""
    df = long_examples(8)
    specs = [("muril-large", "tiny-bert", True), ("rembert", "tiny-xlmr", False),
             ("xlm-roberta-large-squad2", "tiny-xlmr", True), ("infoxlm-large", "tiny-xlmr", False)]
    runs = [write_run(tmp_path, b, 0, 1, df, toks[t], seed=i, right=r) for i, (b, t, r) in enumerate(specs)]
    fit = fit_blend(df, runs, BlendConfig(tune_weights=False))
    s = fit.settings
    assert s.scheme == "vote" and s.vote_k == 0 and fit.chosen == "vote 3 of 4, a tie to the strongest"
    assert s.backbones[0] == "muril-large" and set(s.backbones[2:]) == {"rembert", "infoxlm-large"}
    assert fit.oof["jaccard"].mean() == 1.0
    from src.infer.predict import WindowLogits
    logits = {b: WindowLogits.load(tmp_path / b / "fold0" / "oof_logits.npz") for b, _, _ in specs}
    spans = ensemble_spans(df, [logits[b] for b in s.backbones], s.backbones, cfg=s.blend_config(),
                           scheme=s.scheme, backbone_weights=s.weights)
    assert np.array_equal(spans, fit.spans[fit.chosen])     # blend.json gives the submission the same answers
    two = fit_blend(df, runs, BlendConfig(tune_weights=False, vote_k=2))
    assert two.chosen == "vote 2 of 4" and two.settings.vote_k == 2 and two.oof["jaccard"].mean() < 1.0


def test_blend_json_round_trip_and_clear_errors(tmp_path, toks):
    df = long_examples(6)
    runs = [write_run(tmp_path, b, 0, 1, df, toks[b], i) for i, b in enumerate(("tiny-bert", "tiny-xlmr"))]
    fit = fit_blend(df, runs, BlendConfig(tune_weights=False))
    paths = fit.save(tmp_path / "out")
    assert load_blend_json(paths["blend"]) == fit.settings
    assert fit.settings.scheme == "char" and fit.settings.weights == {"tiny-bert": 0.5, "tiny-xlmr": 0.5}
    good = json.loads(paths["blend"].read_text())
    bad_cases = [
        ({"scheme": "mean"}, "field 'scheme'"),
        ({"weights": {"tiny-bert": 1.0}}, "field 'weights': expected one weight per backbone"),
        ({"weights": {"tiny-bert": -1, "tiny-xlmr": 1}}, "tiny-bert: -1 is not a number >= 0"),
        ({"weights": {"tiny-bert": 0, "tiny-xlmr": 0}}, "all weights are 0"),
        ({"backbones": []}, "field 'backbones'"),
        ({"vote_k": -1}, "field 'vote_k': -1 is not an integer >= 0"),
        ({"scheme": "vote", "vote_k": 3}, "3 of 2 backbones"),
        ({"rules": {"strip": True}}, "field 'rules'"),
        ({"extra": 1}, "field 'extra': unknown field"),
        ({"format": 99}, "field 'format'"),
    ]
    for change, message in bad_cases:
        with pytest.raises(BlendFileError, match=message):
            check_settings({**good, **change}, "x/blend.json")
    with pytest.raises(BlendFileError, match="field 'scheme': missing"):
        check_settings({k: v for k, v in good.items() if k != "scheme"})
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(BlendFileError, match="broken.json: not valid JSON"):
        load_blend_json(tmp_path / "broken.json")
    with pytest.raises(BlendFileError, match="blend settings not found"):
        load_blend_json(tmp_path / "none.json")
