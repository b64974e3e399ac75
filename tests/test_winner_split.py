"""His 3-fold split as an option of the folds (`make_folds(split="winner")`): the same folds as his create_folds, and
the leak it has on chaii-like data (several questions of one article), which the project's grouped split has not."""
import numpy as np
import pandas as pd
import pytest
from sklearn import model_selection

from src.train.fold import TrainConfig
from src.train.partition import make_folds, split_rows


def his_create_folds(data: pd.DataFrame, num_splits: int) -> pd.DataFrame:
    """kldarek/chaii XLMR_pretraining68.ipynb cell 5, verbatim but for the copy."""
    data = data.copy()
    data["kfold"] = -1
    kf = model_selection.StratifiedKFold(n_splits=num_splits, shuffle=True, random_state=2021)
    for fold_num, (t_, v_) in enumerate(kf.split(X=data, y=data.language.values)):  # noqa: B007 (his names)
        data.loc[v_, "kfold"] = fold_num
    return data


@pytest.fixture
def shared_articles() -> pd.DataFrame:
    """40 articles, 2-5 questions each (chaii asks several questions of many of its articles), Hindi and Tamil."""
    rng = np.random.default_rng(0)
    rows = []
    for a in range(40):
        for q in range(int(rng.integers(2, 6))):
            rows.append(dict(id=f"a{a}q{q}", context=f"article {a} text", question=f"q{q}?",
                             language="hindi" if a % 3 else "tamil"))
    return pd.DataFrame(rows)


def test_the_winner_split_is_his_create_folds(shared_articles):
    ours = make_folds(shared_articles, 3, seed=123, split="winner")        # his random_state is 2021 whatever the seed
    assert ours.tolist() == his_create_folds(shared_articles, 3)["kfold"].tolist()
    assert make_folds(shared_articles, 3, seed=7, split="winner").equals(ours)
    # stratified by language: each fold holds its share of Tamil
    tamil = shared_articles["language"] == "tamil"
    assert all(abs((ours[tamil] == k).sum() - tamil.sum() / 3) <= 1 for k in range(3))


def test_his_split_puts_an_articles_questions_on_both_sides_and_the_grouped_split_never(shared_articles):
    for split in ("winner", "grouped"):
        folds = make_folds(shared_articles, 3, split=split)
        for k in range(3):
            train, valid = split_rows(shared_articles, TrainConfig(fold=k, n_folds=3, split=split))
            assert folds[valid.index].eq(k).all() and len(train) + len(valid) == len(shared_articles)
            leaked = set(valid["context"]) & set(train["context"])
            if split == "winner":
                assert len(leaked) >= 5, "his split should leak articles on this data"
            else:
                assert not leaked
    assert TrainConfig().split == "grouped"                               # the project's own CV keeps it


def test_fold_minus_one_holds_no_row_out_and_bad_values_are_named(shared_articles):
    train, valid = split_rows(shared_articles, TrainConfig(fold=-1, n_folds=3, split="winner"))
    assert len(train) == len(shared_articles) and valid.empty
    with pytest.raises(ValueError, match=r"fold 3: expected 0..2, or -1"):
        split_rows(shared_articles, TrainConfig(fold=3, n_folds=3))
    with pytest.raises(ValueError, match=r"split 'kldarek': expected one of \('grouped', 'winner'\)"):
        make_folds(shared_articles, 3, split="kldarek")
