"""A data recipe: configuration (not code) for how data is fed in ONE training run.

A recipe is an ordered list of stages (the winner's "passes"); a stage is a shuffled mix of sources, each with its
own number of repeats, optionally its own window length and stride, and its own probability of keeping a window
without the answer (`negative_keep`, drawn anew each time the source is windowed). Stages are concatenated WITHOUT
shuffling and fed by a sequential sampler (`QATrainer(sequential=True)`), so one optimizer and one learning-rate
schedule run straight through the stage boundaries. `Augment` switches on the augmentations of
`src/train/augment.py`. The winner's own recipes, as his notebooks (kldarek/chaii) wrote them, are
configs/winner_*.yaml; docs/fidelity.md sets each setting beside his.

Recipes load from YAML/JSON or a dict (`Recipe.from_dict`, `load_recipe`); paths are relative to a data directory.
A recipe's windows are built by `src/train/windows.py` (`build_dataset`); `fold_dataset` feeds it one fold's rows.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from src.data.external import load_source, split_by_title
from src.train import augment
from src.train.windows import build_dataset

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"


@dataclass
class Source:
    """One data set in a stage. Its frame is loaded once per (kind, path, language, articles, limit)."""
    name: str
    kind: str = "squad"               # a loader of src/data/external.py: squad, tydi, xquad, mlqa, chaii; nq: the
                                      # subset file of `python -m src.data.nq` (src/data/nq.py)
    path: str = ""                    # relative to the data directory (or absolute)
    language: str | None = None       # None: the loader's default (TyDi: from the id prefix)
    repeats: int = 1
    limit: int | None = None          # a seeded sample of this many questions (seed 0: the same for every run)
    articles: str = "all"             # "train" / "test": one side of split_by_title(test_fraction, split_seed)
    test_fraction: float = 0.25
    split_seed: int = 0
    max_length: int | None = None     # None: the stage's
    doc_stride: int | None = None
    # The winner's per-source negative sampling (kldarek/chaii XLMR_pretraining68 cell 12): each window without the
    # answer kept with this probability, drawn anew every time the source is windowed (each stage, each repeat, each
    # epoch: his TyDi is drawn twice, once per pass). None: the recipe's `augment.negative_fraction` instead.
    negative_keep: float | None = None
    # chaii sources only: "train" = the run's training folds (the held-out fold never trains); "all" = every row,
    # the held-out fold too (his REM_pretraining126 cell 19: `chaii_train = chaii`; its held-out score is then not
    # out of fold)
    folds: str = "train"
    # The loader's part of a merged file: kind chaii_mlqa_xquad (zacchaeus/chaiimlqaxquad) "external" = his Hindi
    # MLQA + XQuAD rows (XLMR_pretraining68 cell 11: `threeds[threeds.src != 'chaii']`), "chaii", "all". "": the
    # loader's default.
    part: str = ""

    def __post_init__(self):
        if self.negative_keep is not None and not 0.0 <= self.negative_keep <= 1.0:
            raise ValueError(f"source {self.name!r}: negative_keep must be in [0, 1] or empty, "
                             f"got {self.negative_keep}")
        if self.folds not in ("train", "all"):
            raise ValueError(f"source {self.name!r}: folds must be 'train' or 'all', got {self.folds!r}")
        if self.folds == "all" and self.kind != "chaii":
            raise ValueError(f"source {self.name!r}: folds='all' is for chaii sources (the held-out fold is chaii's); "
                             f"its kind is {self.kind!r}")

    def data_key(self) -> tuple:
        return (self.kind, self.path, self.language, self.limit, self.articles, self.test_fraction, self.split_seed,
                self.folds, self.part)


@dataclass
class Stage:
    name: str
    sources: list[Source]
    max_length: int = 384
    doc_stride: int = 128
    # False: the stage's windows in source order, each source's in its rows' order (his 68's chaii tail is
    # concatenated unshuffled: XLMR_pretraining68 cell 14; REMBERT_pretraining77-79 shuffle it)
    shuffle: bool = True


@dataclass
class Augment:
    """Which augmentations are on. Defaults: off, as in the winner's notebooks (kldarek/chaii): none crops; his
    progressive resizing (116, 119, 122) is a window length per pass, written as each stage's `max_length`; his cutout
    (119, 122) is `token_cutout`; his negative sampling is per source (`Source.negative_keep`). The rest are the
    project's own augmentations."""
    random_crop: bool = False                      # the project's: another stride and offset each repeat
    progressive: bool = False                      # the project's: stage k's length = lengths[k] (stride scaled)
    lengths: tuple[int, ...] = (256, 384, 512)
    cutout: float = 0.0                            # the project's context cutout: this fraction of a window's
                                                   # context tokens (never the answer) -> the mask token
    negative_fraction: float = 1.0                 # the project's: fraction of no-answer windows kept, every source
                                                   # without its own `negative_keep`, resampled per repeat
    hard_negatives: str = ""                       # oof.csv of a previous model (under the data dir): weight
                                                   # negatives by its errors
    soft_label_radius: int = 0                     # 0: hard labels (the winner's choice)
    # The winner's cutout: each non-special token (question and answer too) -> the mask token with this probability,
    # drawn anew every batch (XLMR_pretraining119 cell 20: 0.1; MUR_pretraining122f02 cell 19: 0.03)
    token_cutout: float = 0.0


# Fields added after runs were logged: written by `to_dict` only when set, so every earlier recipe keeps its digest
# and the run ids hashed from it (docs/experiments.jsonl)
LATER_DEFAULTS = {"source": {"negative_keep": None, "folds": "train", "part": ""}, "stage": {"shuffle": True},
                  "augment": {"token_cutout": 0.0}}


@dataclass
class Recipe:
    name: str
    stages: list[Stage]
    augment: Augment = field(default_factory=Augment)
    sequential: bool = True                        # False: one shuffled pool, as in plain fine-tuning

    @classmethod
    def from_dict(cls, d: dict) -> "Recipe":
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown recipe field(s) {sorted(unknown)}")
        stages = [Stage(**{**s, "sources": [Source(**src) for src in s["sources"]]}) for s in d["stages"]]
        aug = dict(d.get("augment", {}))
        if "lengths" in aug:
            aug["lengths"] = tuple(aug["lengths"])
        return cls(d["name"], stages, Augment(**aug), d.get("sequential", True))

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)

        def trim(x: dict, part: str) -> dict:
            return {k: v for k, v in x.items() if not (k in LATER_DEFAULTS[part] and LATER_DEFAULTS[part][k] == v)}
        d["augment"] = trim(d["augment"], "augment")
        d["stages"] = [dict(trim(st, "stage"), sources=[trim(src, "source") for src in st["sources"]])
                       for st in d["stages"]]
        return d

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]

    def stage_lengths(self) -> list[tuple[int, int]]:
        """(max_length, doc_stride) per stage, after progressive resizing."""
        if not self.augment.progressive:
            return [(s.max_length, s.doc_stride) for s in self.stages]
        lengths = augment.progressive_lengths(len(self.stages), self.augment.lengths)
        return [(L, max(8, round(s.doc_stride * L / s.max_length))) for s, L in zip(self.stages, lengths, strict=True)]


def load_recipe(path_or_name: str | os.PathLike) -> Recipe:
    """A recipe from a .yaml/.json file, or by name from configs/ (`recipe_kaggle`, `recipe_local`)."""
    path = Path(path_or_name)
    if not path.exists():
        path = CONFIG_DIR / f"{path_or_name}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"recipe not found: {path_or_name} (nor {path})")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return Recipe.from_dict(json.loads(text))
    import yaml
    return Recipe.from_dict(yaml.safe_load(text))


def source_folders(recipe: Recipe) -> dict[str, list[Source]]:
    """First folder of each source path (a data set mounted under the data directory) -> the recipe's sources that
    read it, in recipe order. ValueError for a path that is not `<folder>/<file>` relative to the data directory."""
    from pathlib import PurePosixPath
    folders: dict[str, list[Source]] = {}
    for stage in recipe.stages:
        for src in stage.sources:
            path = PurePosixPath(src.path)
            if path.is_absolute() or len(path.parts) < 2:
                raise ValueError(f"recipe {recipe.name!r}, source {src.name!r}: path {src.path!r} must be "
                                 "<folder>/<file>, relative to the data directory")
            folders.setdefault(path.parts[0], []).append(src)
    return folders


def load_frames(recipe: Recipe, data_dir: str | os.PathLike) -> dict[tuple, pd.DataFrame]:
    """Every source's frame, loaded once, keyed by `Source.data_key()`."""
    frames = {}
    for stage in recipe.stages:
        for src in stage.sources:
            key = src.data_key()
            if key not in frames:
                frames[key] = source_frame(src, data_dir)
    return frames


def data_path(path: str | os.PathLike, data_dir: str | os.PathLike) -> Path:
    """A recipe path: absolute as given, relative ones under the data directory (never the current directory:
    papermill runs notebooks from notebooks/, a Kaggle kernel from /kaggle/working)."""
    return Path(path) if Path(path).is_absolute() else Path(data_dir) / path


def hard_negative_weights(recipe: Recipe, data_dir: str | os.PathLike) -> dict[str, float] | None:
    """The recipe's hard-negative weights (`augment.hard_negatives`, an oof.csv under the data dir), or None."""
    if not recipe.augment.hard_negatives:
        return None
    path = data_path(recipe.augment.hard_negatives, data_dir)
    if not path.is_file():
        raise FileNotFoundError(f"recipe {recipe.name!r}: augment.hard_negatives file not found: {path} (a relative "
                                f"path is read from the data directory {data_dir}; give an absolute path or attach it)")
    return augment.hard_negative_weights(pd.read_csv(path, keep_default_na=False))


def source_frame(src: Source, data_dir: str | os.PathLike) -> pd.DataFrame:
    path = data_path(src.path, data_dir)
    kw = {"language": src.language} if src.language else {}
    if src.part:
        kw["part"] = src.part
    if src.kind == "nq":
        from src.data.nq import load_nq_subset  # the subset `python -m src.data.nq --out-dir` wrote
        df = load_nq_subset(path)
    else:
        df = load_source(src.kind, path, **kw)
    return select_rows(df, src)


def select_rows(df: pd.DataFrame, src: Source) -> pd.DataFrame:
    """`src.articles` (one side of a split by article) then `src.limit` (a seeded sample) applied to its rows.
    chaii's train.csv has no title: each context is one whole article, so it is split by context."""
    if src.articles != "all":
        article = df["title"] if "title" in df.columns else df["context"]
        _, test = split_by_title(pd.DataFrame({"title": article.unique()}), src.test_fraction, src.split_seed)
        in_test = article.isin(test["title"])
        df = df[in_test if src.articles == "test" else ~in_test]
    if src.limit is not None and src.limit < len(df):
        df = df.sample(src.limit, random_state=0).sort_index()
    return df.reset_index(drop=True)


def fold_dataset(train_df: pd.DataFrame, cfg, recipe: Recipe, data_dir: str | os.PathLike, tokenizer,
                 epochs: int = 1):
    """(training windows, training rows, held-out rows) for fold `cfg.fold`: chaii sources use the training folds
    of `train_df` only (the held-out fold never leaks into a stage), other sources are read from `data_dir`."""
    from src.train.partition import split_rows

    train, valid = split_rows(train_df, cfg)     # the run's split (cfg.split); fold -1 holds no row out
    frames = {}
    for stage in recipe.stages:
        for src in stage.sources:
            if src.data_key() not in frames:
                # a chaii source's `articles` and `limit` act on the training folds only (every fold: `folds: all`)
                rows = train_df if src.folds == "all" else train
                frames[src.data_key()] = (select_rows(rows.reset_index(drop=True), src) if src.kind == "chaii"
                                          else source_frame(src, data_dir))
    hard = hard_negative_weights(recipe, data_dir)
    return build_dataset(recipe, frames, tokenizer, seed=cfg.seed, hard=hard, epochs=epochs), train, valid


def train_recipe_fold(train_df: pd.DataFrame, cfg, recipe: Recipe | str, data_dir: str | os.PathLike,
                      resume: bool | str = False):
    """`train.train_fold` fed by a recipe (see `fold_dataset`); the collator and the loss follow `recipe.augment`.

    `cfg.epochs` (a whole number) is how many times the whole recipe runs, each time with new crops, negatives
    and cutout (`build_dataset(epochs=...)`); the Trainer makes one pass over all of it: one optimizer, one
    learning-rate schedule from the first window of epoch 1 to the last of the final epoch.
    """
    from transformers import AutoTokenizer

    from src.train.backbones import resolve_model_path
    from src.train.fold import train_fold

    recipe = recipe if isinstance(recipe, Recipe) else load_recipe(recipe)
    cfg = dataclasses.replace(cfg.resolved(), soft_label_radius=recipe.augment.soft_label_radius)
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(cfg.model_path or cfg.backbone,
                                                                 cfg.models_dir or None))
    if cfg.epochs < 1 or int(cfg.epochs) != cfg.epochs:
        raise ValueError(f"a recipe trains a whole number of epochs (each re-draws the whole recipe), got "
                         f"epochs={cfg.epochs}; set epochs to 1, 2, ...")
    dataset, train, valid = fold_dataset(train_df, cfg, recipe, data_dir, tokenizer, epochs=int(cfg.epochs))
    # cutout is drawn per batch by the collator's own generator, so it differs between epochs too
    collator = augment.QACollator(tokenizer, cutout=recipe.augment.cutout, seed=cfg.seed,
                                  keep_context_bounds=cfg.soft_label_radius > 0,
                                  token_cutout=recipe.augment.token_cutout)
    return train_fold(train, cfg, valid_df=valid, train_dataset=dataset, sequential=recipe.sequential,
                      data_collator=collator, resume=resume, num_train_epochs=1,
                      extra_metrics={"recipe": recipe.name, "recipe_digest": recipe.digest(),
                                     "recipe_epochs": int(cfg.epochs)})
