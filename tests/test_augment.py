"""Each augmentation does what it claims, on windows long enough to make it fail if it did not."""
import numpy as np
import pytest
import torch

from src.train.augment import (
    QACollator,
    crop_frame,
    hard_negative_weights,
    keep_negatives,
    progressive_lengths,
    sample_negatives,
    soft_label_loss,
    soft_targets,
    token_cutout_mask,
)
from src.train.recipe import Augment, Recipe, Source, Stage
from src.train.windows import build_dataset
from tests.test_features import long_frame

OFF = Augment(random_crop=False, progressive=False, cutout=0.0, negative_fraction=1.0)


def recipe(aug: Augment, repeats: int = 2, lengths=(96,)) -> tuple[Recipe, dict]:
    src = Source("long", kind="synthetic", repeats=repeats)
    stages = [Stage(f"s{k}", [src], L, 32) for k, L in enumerate(lengths)]
    return Recipe("t", stages, aug), {src.data_key(): long_frame()}


def test_two_repeats_window_the_same_contexts_differently(tokenizer):
    r, frames = recipe(Augment(random_crop=True, progressive=False))
    ds = build_dataset(r, frames, tokenizer, seed=0).to_pandas()
    bounds = {rep: set(zip(g["example_id"], g["window_start_char"], strict=True)) for rep, g in ds.groupby("repeat")}
    assert len(bounds[0] ^ bounds[1]) > 0.5 * len(bounds[0])   # most window starts moved
    plain = build_dataset(recipe(OFF)[0], frames, tokenizer, seed=0).to_pandas()
    same = {rep: set(zip(g["example_id"], g["window_start_char"], strict=True)) for rep, g in plain.groupby("repeat")}
    assert same[0] == same[1]                                   # without crop the repeats are identical
    # cropping never loses an answer: every example still has a window with its whole answer, in original chars
    df = long_frame().set_index("id")
    pos = ds[ds["has_answer"]]
    for eid, a, b in zip(pos["example_id"], pos["window_start_char"], pos["window_end_char"], strict=True):
        s = df.loc[eid, "answer_start"]
        assert a <= s and s + len(df.loc[eid, "answer_text"]) <= b
    for rep, g in ds.groupby("repeat"):
        assert set(g[g["has_answer"]]["example_id"]) == set(df.index), rep


def test_crop_cuts_at_word_starts_before_the_answer():
    df = long_frame()
    cropped, cuts = crop_frame(df, np.random.default_rng(0), max_chars=200)
    assert (cuts > 0).sum() > len(df) // 2 and (cuts <= 200).all()
    for (_, old), (_, new), c in zip(df.iterrows(), cropped.iterrows(), cuts, strict=True):
        assert new["context"] == old["context"][c:]
        assert c == 0 or old["context"][c - 1].isspace()
        s = new["answer_start"]
        assert new["context"][s:s + len(new["answer_text"])] == new["answer_text"]


def test_progressive_length_schedule(tokenizer):
    assert progressive_lengths(3) == [256, 384, 512]
    assert progressive_lengths(2) == [256, 384] and progressive_lengths(4)[-1] == 512
    with pytest.raises(ValueError):
        progressive_lengths(2, (384, 256))
    r, frames = recipe(Augment(random_crop=False, progressive=True, lengths=(64, 96, 128)), 1, lengths=(96, 96, 96))
    assert r.stage_lengths() == [(64, 21), (96, 32), (128, 43)]
    ds = build_dataset(r, frames, tokenizer).to_pandas()
    longest = ds.groupby("stage")["input_ids"].agg(lambda s: max(map(len, s)))
    assert list(longest) == [64, 96, 128]


def test_cutout_masks_the_fraction_of_context_and_nothing_else(tokenizer):
    r, frames = recipe(OFF, 1)
    ds = build_dataset(r, frames, tokenizer).select(range(32))
    feats = [ds[i] for i in range(len(ds))]
    plain = QACollator(tokenizer)(feats)
    cut = QACollator(tokenizer, cutout=0.2, seed=1)(feats)
    mask = tokenizer.mask_token_id
    assert torch.equal(cut["start_positions"], plain["start_positions"])
    assert torch.equal(cut["end_positions"], plain["end_positions"])
    for row, f in enumerate(feats):
        changed = torch.nonzero(cut["input_ids"][row] != plain["input_ids"][row]).flatten().tolist()
        assert all(cut["input_ids"][row, i] == mask for i in changed)
        c0, c1, s, e = f["context_start"], f["context_end"], f["start_positions"], f["end_positions"]
        allowed = [i for i in range(c0, c1 + 1) if not (f["has_answer"] and s <= i <= e)]
        assert set(changed) <= set(allowed)                       # never question, special tokens or the answer
        assert len(changed) == round(0.2 * len(allowed))          # exactly the fraction (no token was already <mask>)
    again = QACollator(tokenizer, cutout=0.2, seed=1)(feats)
    assert torch.equal(again["input_ids"], cut["input_ids"])       # seeded


def test_winner_cutout_masks_non_special_tokens_question_too_and_is_redrawn_every_batch(tokenizer):
    """His `random_mask_data_collator` (kldarek/chaii XLMR_pretraining119 cell 20): a per-token draw over every
    token but the special ones, question and answer included, new for each batch; labels untouched."""
    r, frames = recipe(OFF, 1)
    ds = build_dataset(r, frames, tokenizer).select(range(32))
    feats = [ds[i] for i in range(len(ds))]
    plain = QACollator(tokenizer)(feats)
    collate = QACollator(tokenizer, token_cutout=0.3, seed=1)
    first, second = collate(feats), collate(feats)                 # the same windows in two batches
    mask, special = tokenizer.mask_token_id, set(tokenizer.all_special_ids)
    masked = {"question": 0, "answer": 0}
    for cut in (first, second):
        assert torch.equal(cut["start_positions"], plain["start_positions"])
        assert torch.equal(cut["end_positions"], plain["end_positions"])
        changed = cut["input_ids"] != plain["input_ids"]
        assert (cut["input_ids"][changed] == mask).all()
        # never a special token (CLS, SEP, padding): those positions are as they were
        is_special = torch.isin(plain["input_ids"], torch.tensor(sorted(special)))
        assert not (changed & is_special).any()
        eligible = ~is_special
        rate = changed.sum().item() / eligible.sum().item()
        assert 0.25 < rate < 0.35, rate                            # a draw per token at p = 0.3, not a fixed count
        for row, f in enumerate(feats):
            pos = torch.nonzero(changed[row]).flatten().tolist()
            masked["question"] += sum(i < f["context_start"] for i in pos)
            masked["answer"] += sum(f["has_answer"] and f["start_positions"] <= i <= f["end_positions"] for i in pos)
    assert masked["question"] > 0 and masked["answer"] > 0         # unlike the project's context-only cutout
    assert not torch.equal(first["input_ids"], second["input_ids"])  # redrawn every batch
    again = QACollator(tokenizer, token_cutout=0.3, seed=1)(feats)
    assert torch.equal(again["input_ids"], first["input_ids"])     # seeded
    assert not token_cutout_mask(plain["input_ids"], special, 0.0, np.random.default_rng(0)).any()
    with pytest.raises(ValueError, match="token_cutout"):
        QACollator(tokenizer, token_cutout=1.0)


def test_winner_negative_keep_is_a_draw_per_window():
    """His `negative_sampling(ratio)` (XLMR_pretraining68 cell 6): every positive, each negative with probability
    `ratio`, independently: the count kept varies between draws (the project's `sample_negatives` keeps exactly
    round(fraction x n))."""
    has = np.array([True] * 50 + [False] * 2000)
    draws = [keep_negatives(has, 0.1, np.random.default_rng(k)) for k in range(6)]
    assert all(d[:50].all() for d in draws)
    counts = [int(d[50:].sum()) for d in draws]
    assert all(150 < c < 250 for c in counts) and len(set(counts)) > 1, counts
    assert not np.array_equal(draws[0], draws[1])
    assert keep_negatives(has, 1.0, np.random.default_rng(0)).all()
    assert keep_negatives(has, 0.0, np.random.default_rng(0)).sum() == 50
    with pytest.raises(ValueError, match="keep probability"):
        keep_negatives(has, 1.5, np.random.default_rng(0))


def test_negative_sampling_keeps_the_fraction_and_resamples_per_repeat(tokenizer):
    has = np.array([True] * 30 + [False] * 70)
    keep = sample_negatives(has, 0.3, np.random.default_rng(0))
    assert keep[:30].all() and keep[30:].sum() == 21
    assert sample_negatives(has, 0.0, np.random.default_rng(0)).sum() == 30
    # hard negatives: the heavily weighted half is drawn far more often
    w = np.r_[np.ones(30), np.full(35, 10.0), np.full(35, 0.1)]
    hits = sum(sample_negatives(has, 0.3, np.random.default_rng(k), w)[30:65].sum() for k in range(20))
    assert hits > 0.85 * 20 * 21
    assert hard_negative_weights(__import__("pandas").DataFrame({"id": ["a", "b"], "jaccard": [1.0, 0.0]})) == \
        {"a": pytest.approx(0.05), "b": pytest.approx(1.05)}
    r, frames = recipe(Augment(random_crop=False, progressive=False, negative_fraction=0.25))
    ds = build_dataset(r, frames, tokenizer).to_pandas()
    full = build_dataset(recipe(OFF)[0], frames, tokenizer).to_pandas()
    for rep in (0, 1):
        n_neg = (~full[full["repeat"] == rep]["has_answer"]).sum()
        got = ds[ds["repeat"] == rep]
        assert got["has_answer"].sum() == full[full["repeat"] == rep]["has_answer"].sum()
        assert (~got["has_answer"]).sum() == round(0.25 * n_neg)
    neg = {rep: set(zip(g["example_id"], g["window_start_char"], strict=True))
           for rep, g in ds[~ds["has_answer"]].groupby("repeat")}
    assert neg[0] != neg[1]


def test_soft_targets_follow_span_jaccard_and_respect_the_context():
    t = torch.tensor
    ts, te = soft_targets(t([5, 0]), t([7, 0]), t([4, 3]), t([9, 9]), length=12, radius=2)
    # start 5, end 7 (3 tokens); starts 4..7 (3 is outside the context): spans 4, 3, 2, 1 tokens
    w = torch.zeros(12)
    w[4], w[5], w[6], w[7] = 3 / 4, 1, 2 / 3, 1 / 3
    assert torch.allclose(ts[0], w / w.sum())
    w = torch.zeros(12)
    w[5], w[6], w[7], w[8], w[9] = 1 / 3, 2 / 3, 1, 3 / 4, 3 / 5
    assert torch.allclose(te[0], w / w.sum())
    assert ts[1, 0] == 1 and te[1, 0] == 1                         # no answer: all mass on CLS
    loss = soft_label_loss(ts.clamp_min(1e-12).log(), te.clamp_min(1e-12).log(), t([5, 0]), t([7, 0]), t([4, 3]),
                           t([9, 9]), radius=2)
    assert loss.abs() < 1e-5                                       # KL is zero at the target
    assert soft_label_loss(torch.zeros(2, 12), torch.zeros(2, 12), t([5, 0]), t([7, 0]), t([4, 3]), t([9, 9]), 2) > 0.5
