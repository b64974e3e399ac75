"""The flags that pick a grid's configuration (`--size`, `--train`, `--base`) and its seeds (`--seeds`), read from
the command line of `research.experiments.ablate` and `research.experiments.seed_blend`.

Each `KEY=VALUE` is read as the type of its field's default and a bad one is named (field, expected type), so that
a typo stops the run before an hour of training rather than after it. A grid's configuration is its module's
`SIZES` and `BASE` and the fine-tune settings every grid shares (`ablate.TRAIN`); a changed one gives new run ids.
"""
from __future__ import annotations

import dataclasses

RUN_SETS = ("seed", "soft_label_radius", "model_path", "output_dir", "experiment_log")  # each run sets these itself


def parse_overrides(pairs: list[str], defaults: dict, flag: str) -> dict:
    """`KEY=VALUE` pairs as config fields, each VALUE read as the type of its field's default in `defaults`."""
    out = {}
    for kv in pairs:
        key, sep, value = kv.partition("=")
        if key not in defaults or not sep:
            raise SystemExit(f"{flag} wants KEY=VALUE with KEY in {sorted(defaults)}, got {kv!r}")
        kind = type(defaults[key])
        if kind is bool:
            if value.lower() not in ("true", "false", "1", "0"):
                raise SystemExit(f"{flag} {key} wants true or false, got {value!r}")
            out[key] = value.lower() in ("true", "1")
        else:
            try:
                out[key] = kind(value)
            except ValueError:
                raise SystemExit(f"{flag} {key} wants a {kind.__name__}, got {value!r}") from None
    return out


def parse_base_overrides(pairs: list[str]) -> dict:
    """`--base KEY=VALUE` pairs as BaseQAConfig fields, checked by BaseQAConfig itself (e.g. squad_shape's values)."""
    from research.experiments.base_qa import BaseQAConfig
    out = parse_overrides(pairs, dataclasses.asdict(BaseQAConfig()), "--base")
    try:
        BaseQAConfig(**out)
    except ValueError as e:
        raise SystemExit(f"--base: {e}") from None
    return out


def parse_train_overrides(pairs: list[str], train: dict) -> dict:
    """`--train KEY=VALUE` pairs as TrainConfig fields, typed by `train` (the grids' fine-tune settings) over
    TrainConfig's defaults."""
    from src.train.fold import TrainConfig
    defaults = {k: v for k, v in dict(dataclasses.asdict(TrainConfig()), **train).items()
                if k not in RUN_SETS and isinstance(v, (bool, int, float, str))}
    return parse_overrides(pairs, defaults, "--train")


def parse_seeds(text: str) -> tuple[int, ...] | None:
    """`--seeds` as Make passes it: "0,1,2" or "0 1 2" (SEEDS="1 2" is the natural shell spelling); None if empty."""
    parts = text.replace(",", " ").split()
    bad = [x for x in parts if not x.isdigit()]
    if bad:
        raise SystemExit(f"--seeds (SEEDS) wants whole numbers separated by commas or spaces, e.g. 0,1,2; "
                         f"got {text!r} ({bad[0]!r} is not one)")
    return tuple(int(x) for x in parts) or None


def add_config_args(ap, paragraph_sizes: dict) -> None:
    """The flags that pick another configuration of a grid (its sizes, fine-tune settings, base): new run ids."""
    ap.add_argument("--size", action="append", default=[], metavar="KEY=N",
                    help=f"override a size (a bigger grid gets new run ids); keys: {sorted(paragraph_sizes)} "
                         "(paragraph), hindi, tamil, tydi_en_dev (article; winner adds squad_articles, tydi_bn_dev, "
                         "tydi_te_dev)")
    ap.add_argument("--train", action="append", default=[], metavar="KEY=VALUE",
                    help="another fine-tune setting (src.train.fold.TrainConfig fields; new run ids), "
                         "e.g. --train group_by_length=true")
    ap.add_argument("--base", action="append", default=[], metavar="KEY=VALUE",
                    help="fine-tune another base (research.experiments.base_qa.BaseQAConfig fields; new run ids), "
                         "e.g. --base group_by_length=true --base max_windows=0 --base squad_shape=article")


def apply_config_args(g, a, train: dict) -> None:
    """Set the grid `g`'s configuration from `add_config_args`' flags in `a`; `train` (the fine-tune settings every
    grid shares) is updated in place."""
    g.BASE.update(parse_base_overrides(a.base))
    train.update(parse_train_overrides(a.train, train))
    for kv in a.size:
        key, _, n = kv.partition("=")
        if key not in g.SIZES or not n.isdigit():
            raise SystemExit(f"--size wants KEY=N with KEY in {sorted(g.SIZES)}, got {kv!r}")
        g.SIZES[key] = int(n)
