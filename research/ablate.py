"""Ablation of the data recipe and each augmentation on real data with a real pretrained backbone (`make ablate`).

Every variant trains the same backbone on the same questions with the same optimizer and schedule; only how the
data is fed changes. plain runs with three seeds so that a difference can be told from seed noise. Runs already
in the experiment log are skipped (resumable); `--variants` selects. Sized for 2 CPU cores (see `SIZES`).

    python -m research.ablate run --variants plain,cutout     # run what is missing, then write the table and plot
    python -m research.ablate report                          # table + plot from the log only
    python -m research.ablate reproduce RUN_ID                # re-run one logged run from its row
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import pandas as pd

from src import explog
from src.backbones import ensure_e5_small
from src.paths import CACHE_DIR, SHARED_DIR
from src.recipe import Augment, Recipe, Source, Stage, build_dataset, load_frames, source_frame

SHARED = SHARED_DIR
CACHE = CACHE_DIR
E5_LAYERS = 6   # the first 6 of e5-small's 12 layers: half the cost of a step
LANGS = {"hindi": "hi", "telugu": "te", "bengali": "bn"}

# The sizes (fair to shrink, stated in docs/ablation.md): ~3,600 training windows of 128 tokens per run (~230 steps
# of 16; 640 TyDi-en + 200 SQuAD + 240 XQuAD-hi questions), evaluated on 200 held-out XQuAD-hi, 200 TyDi-te and all
# 113 TyDi-bn dev questions. On 2 quiet CPU cores a step takes ~1.6 s: ~7 min a run, ~75 min for the grid. A quarter
# of this (80/30/30) stayed at the untrained-head level, where seed noise hid every difference.
SIZES = dict(tydi_en=640, squad=200, xquad_hi_train=240, eval_hi=200, eval_te=200, eval_bn=113)
LENGTH, STRIDE = 128, 48
TRAIN = dict(backbone="e5-small", learning_rate=2e-4, epochs=1, batch_size=16, grad_accum=1, max_length=LENGTH,
             doc_stride=STRIDE, warmup_ratio=0.1, freeze_word_embeddings=True, save_steps=100_000, logging_steps=10,
             eval_batch_size=64)


def train_sources() -> dict[str, Source]:
    return {
        "tydi_en": Source("tydi_en", "tydi", "tydiqa_goldp/english_tydiqa_train.json", limit=SIZES["tydi_en"]),
        "squad": Source("squad", "squad", "squad/dev-v1.1.json", limit=SIZES["squad"]),
        "xquad_hi": Source("xquad_hi", "xquad", "xquad/xquad.hi.json", language="hindi", articles="train",
                           limit=SIZES["xquad_hi_train"]),
    }


def eval_sources() -> list[Source]:
    """Held-out XQuAD-hi articles (split by title, the other side of the training split), TyDi te and bn dev."""
    return [Source("xquad_hi_test", "xquad", "xquad/xquad.hi.json", language="hindi", articles="test",
                   limit=SIZES["eval_hi"]),
            Source("tydi_te", "tydi", "tydiqa_goldp/telugu_tydiqa_dev.json", limit=SIZES["eval_te"]),
            Source("tydi_bn", "tydi", "tydiqa_goldp/bengali_tydiqa_dev.json", limit=SIZES["eval_bn"])]


OFF = Augment(random_crop=False, progressive=False, lengths=(96, LENGTH), cutout=0.0, negative_fraction=1.0,
              soft_label_radius=0)


def variant_recipe(name: str) -> Recipe:
    """plain: one shuffled pool. Every other variant: the two-stage recipe (English + Hindi, then Hindi again),
    fed in order, with one augmentation on (all: every one)."""
    s = train_sources()
    if name == "plain":
        pool = [s["tydi_en"], s["squad"], dataclasses.replace(s["xquad_hi"], repeats=2)]
        return Recipe("plain", [Stage("all", pool, LENGTH, STRIDE)], OFF, sequential=False)
    stages = [Stage("external", [s["tydi_en"], s["squad"], s["xquad_hi"]], LENGTH, STRIDE),
              Stage("target", [s["xquad_hi"]], LENGTH, STRIDE)]
    on = {"recipe": {}, "crop": dict(random_crop=True), "resize": dict(progressive=True),
          "cutout": dict(cutout=0.1), "negsamp": dict(negative_fraction=0.3), "soft": dict(soft_label_radius=3),
          "all": dict(random_crop=True, progressive=True, cutout=0.1, negative_fraction=0.3, soft_label_radius=3)}
    if name not in on:
        raise ValueError(f"unknown variant {name!r}; known: {VARIANTS}")
    return Recipe(name, stages, dataclasses.replace(OFF, **on[name]), sequential=True)


VARIANTS = ["plain", "recipe", "crop", "resize", "cutout", "negsamp", "soft", "all"]
SEEDS = {"plain": (0, 1, 2)}


def e5_dir(layers: int = E5_LAYERS) -> Path:
    """e5-small truncated to its first `layers` layers, built (once) from ../shared/tools/e5_small if absent."""
    cut = CACHE / f"e5-small-{layers}l"
    if (cut / "config.json").exists():
        return cut
    full = ensure_e5_small(CACHE / "e5-small")
    from transformers import AutoModel, AutoTokenizer
    model = AutoModel.from_pretrained(full, num_hidden_layers=layers)  # loads layers 0..layers-1, drops the rest
    model.save_pretrained(cut)
    AutoTokenizer.from_pretrained(full).save_pretrained(cut)
    return cut


def run_config(variant: str, seed: int) -> dict:
    """Everything a run depends on, JSON-able: what the log stores and `reproduce` reads back."""
    recipe = variant_recipe(variant)
    return {"variant": variant, "seed": seed, "recipe": recipe.to_dict(),
            "train": dict(TRAIN, seed=seed, soft_label_radius=recipe.augment.soft_label_radius),
            "eval": [dataclasses.asdict(s) for s in eval_sources()], "e5_layers": E5_LAYERS,
            "data_dir": "../shared/data"}


def run_id_of(config: dict) -> str:
    return f"{config['variant']}-s{config['seed']}-{explog.config_hash(config)[:6]}"


def execute(config: dict, out_dir: Path, data_dir: Path, commit: str | None = None) -> dict:
    """Train and evaluate one configuration; returns the log row (without writing it)."""
    from transformers import AutoTokenizer

    from src.augment import QACollator
    from src.predict import WindowLogits
    from src.train import TrainConfig, train_fold

    recipe = Recipe.from_dict(config["recipe"])
    model_dir = e5_dir(config["e5_layers"])
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    t0 = time.time()
    dataset = build_dataset(recipe, load_frames(recipe, data_dir), tokenizer, seed=config["seed"])
    evals = [source_frame(Source(**s), data_dir).assign(eval_set=s["name"]) for s in config["eval"]]
    valid = pd.concat(evals, ignore_index=True)
    cfg = TrainConfig(**config["train"], model_path=str(model_dir), output_dir=str(out_dir))
    collator = QACollator(tokenizer, cutout=recipe.augment.cutout, seed=config["seed"],
                          keep_context_bounds=cfg.soft_label_radius > 0)
    result = train_fold(valid, cfg, valid_df=valid, train_dataset=dataset, sequential=recipe.sequential,
                        data_collator=collator)
    import shutil
    shutil.rmtree(out_dir / "checkpoints", ignore_errors=True)  # ~0.5 GB each, only needed to resume a crashed run
    # the held-out XQuAD-hi windows alone, for blending seeds (issue 5)
    logits = WindowLogits.load(out_dir / "oof_logits.npz")
    hi_ids = set(evals[0]["id"])
    keep = np.array([i in hi_ids for i in logits.example_id])
    WindowLogits(logits.example_id[keep], logits.start[keep], logits.end[keep], logits.offsets[keep]).save(
        out_dir / "xquad_hi_logits.npz")
    from src.io import write_csv
    write_csv(evals[0][["id", "context", "question", "answer_text", "answer_start", "language", "title"]],
              out_dir / "xquad_hi_examples.csv")
    m = result.metrics
    return {"run_id": run_id_of(config), "variant": config["variant"], "seed": config["seed"],
            "git_commit": commit or explog.git_commit(), "config_hash": explog.config_hash(config), "config": config,
            "backbone": f"e5-small (first {config['e5_layers']} layers, word embeddings frozen)",
            "data": "train: TyDi-en {tydi_en} + SQuAD-dev {squad} + XQuAD-hi train articles {xquad_hi_train}; "
                    "eval: XQuAD-hi held-out articles {eval_hi}, TyDi te dev {eval_te}, bn dev {eval_bn}".format(**SIZES),
            "metrics": {LANGS.get(k.removeprefix("jaccard_"), k.removeprefix("jaccard_")): round(v, 4)
                        for k, v in m.items() if k.startswith("jaccard_")},
            "train_seconds": m["train_seconds"], "total_seconds": round(time.time() - t0, 1),
            "n_train_windows": m["n_train_windows"], "n_valid": m["n_valid"], "out_dir": str(out_dir),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def run_grid(variants: list[str], log: Path, out_root: Path, data_dir: Path,
             seeds: tuple[int, ...] | None = None) -> None:
    """Run what the log lacks: each variant with its seeds (`SEEDS`, or `seeds` for every variant)."""
    done = explog.done_run_ids(log)
    # the code is imported once, now: later edits to the checkout do not change what this grid runs
    from src import augment, predict, train  # noqa: F401
    commit = explog.git_commit()
    for v in variants:
        for seed in seeds or SEEDS.get(v, (0,)):
            config = run_config(v, seed)
            rid = run_id_of(config)
            if rid in done:
                print(f"skip {rid}: already in {log}", flush=True)
                continue
            print(f"run {rid} ...", flush=True)
            row = execute(config, out_root / rid, data_dir, commit)
            explog.append_run(log, row)
            print(f"done {rid}: {row['metrics']} in {row['train_seconds']:.0f} s", flush=True)


def summary(rows: list[dict]) -> pd.DataFrame:
    """One row per variant (grid order): mean and sd of Jaccard per language over its seeds, train time."""
    df = pd.json_normalize(rows)
    out = []
    order = [v for v in VARIANTS if v in set(df["variant"])] + sorted(set(df["variant"]) - set(VARIANTS))
    for v in order:
        g = df[df["variant"] == v]
        rec = {"variant": v, "n_seeds": len(g), "train_min": g["train_seconds"].mean() / 60,
               "windows": g["n_train_windows"].mean()}
        for lang in ("hi", "te", "bn"):
            rec[lang], rec[f"{lang}_sd"] = g[f"metrics.{lang}"].mean(), g[f"metrics.{lang}"].std(ddof=1)
        out.append(rec)
    return pd.DataFrame(out)


def markdown_table(s: pd.DataFrame) -> str:
    """One row per variant: mean Jaccard per language (numbers only), their mean, the seed sd, costs."""
    def sd(r):
        return " / ".join(f"{getattr(r, f'{x}_sd'):.3f}" for x in ("hi", "te", "bn")) if r.n_seeds > 1 else ""
    lines = ["| variant | hi | te | bn | mean | sd over seeds (hi / te / bn) | seeds | train windows | train time (min) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in s.itertuples():
        lines.append(f"| {r.variant} | {r.hi:.3f} | {r.te:.3f} | {r.bn:.3f} | {(r.hi + r.te + r.bn) / 3:.3f} | "
                     f"{sd(r)} | {r.n_seeds} | {r.windows:.0f} | {r.train_min:.1f} |")
    return "\n".join(lines) + "\n"


def plot(s: pd.DataFrame, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from src.io import atomic_path
    x = np.arange(len(s))
    fig, ax = plt.subplots(figsize=(9, 4))
    for k, lang in enumerate(("hi", "te", "bn")):
        ax.bar(x + (k - 1) * 0.27, s[lang], 0.27, yerr=s[f"{lang}_sd"].fillna(0), capsize=3, label=lang)
    ax.set_ylabel("Jaccard")
    ax.set_title("Ablation, e5-small (6 layers): mean over seeds (seeds per variant under the bars), ± sd")
    ax.set_xticks(x, [f"{v}\n({n})" for v, n in zip(s["variant"], s["n_seeds"])])
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def of_current_config(row: dict) -> bool:
    """Whether a logged run is its variant and seed under the current configuration (sizes, backbone, code
    settings): rows of other grids stay in the log but out of the table."""
    try:
        return row["run_id"] == run_id_of(run_config(row["variant"], row["seed"]))
    except ValueError:   # a variant this code no longer knows
        return False


def report(log: Path, table: Path | None, png: Path | None, all_rows: bool = False) -> str:
    """Table (and plot) of the runs of the current configuration (sizes, backbone, ...); `all_rows`: every row."""
    rows = explog.read_log(log)
    if not all_rows:
        rows = [r for r in rows if of_current_config(r)]
    if not rows:
        raise SystemExit(f"no runs of the current configuration in {log} yet")
    s = summary(rows)
    text = markdown_table(s)
    if table:
        from src.io import write_text
        write_text(text, table)
    if png:
        plot(s, png)
    return text


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=["run", "report", "reproduce"])
    ap.add_argument("run_id", nargs="?")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--seeds", default="", help="e.g. 0,1,2: run every selected variant with these seeds "
                                                "(default: plain 0,1,2, the others 0)")
    ap.add_argument("--log", type=Path, default=CACHE / "ablation" / "log.jsonl")
    ap.add_argument("--out-root", type=Path, default=CACHE / "ablation")
    ap.add_argument("--data-dir", type=Path, default=SHARED / "data")
    ap.add_argument("--table", type=Path, default=None, help="also write the markdown table here")
    ap.add_argument("--plot", type=Path, default=None, help="also save the plot here")
    ap.add_argument("--all-rows", action="store_true", help="report every logged run, whatever its sizes")
    ap.add_argument("--size", action="append", default=[], metavar="KEY=N",
                    help=f"override a size (a bigger grid gets new run ids); keys: {sorted(SIZES)}")
    a = ap.parse_args(argv)
    for kv in a.size:
        key, _, n = kv.partition("=")
        if key not in SIZES or not n.isdigit():
            raise SystemExit(f"--size wants KEY=N with KEY in {sorted(SIZES)}, got {kv!r}")
        SIZES[key] = int(n)
    if a.command == "reproduce":
        row = next((r for r in explog.read_log(a.log) if r["run_id"] == a.run_id), None)
        if row is None:
            raise SystemExit(f"run {a.run_id!r} not in {a.log}")
        new = execute(row["config"], a.out_root / f"{a.run_id}-repro", a.data_dir)
        print(f"logged {row['metrics']}\nnow    {new['metrics']}")
        return
    if a.command == "run":
        variants = [v.strip() for v in a.variants.split(",") if v.strip()]
        unknown = set(variants) - set(VARIANTS)
        if unknown:
            raise SystemExit(f"unknown variant(s) {sorted(unknown)}; known: {VARIANTS}")
        seeds = tuple(int(x) for x in a.seeds.split(",") if x.strip()) or None
        run_grid(variants, a.log, a.out_root, a.data_dir, seeds)
    print(report(a.log, a.table, a.plot, a.all_rows))


if __name__ == "__main__":
    main()
