"""The kernels that prepare what the training kernels read, on Kaggle, with internet and no GPU: each writes its
output in /kaggle/working, which Kaggle keeps and mounts for every kernel that attaches it.

- `tydi`: TyDi QA GoldP train, downloaded and split per language (the ids start with the language):
  `english_tydiqa_train.json`, `bengali_tydiqa_train.json`, `telugu_tydiqa_train.json`, the `tydiqa-goldp` folder.
- `nq`: the NQ subset: Natural Questions as the `tensorflow2-question-answering` competition publishes it
  (`simplified-nq-train.jsonl`, attached: its rules must be accepted once on the competition's page), the
  similarity classifier of `src.data.nq` fitted on TyDi GoldP English questions (target) against SQuAD v1.1
  questions (other), and the kept questions written as `nq_subset.json`, the `nq-subset` folder.
- `tydi-primary`: the winner's `tydiqa_train.csv` (his kernel thedrcat/tydi-qa-download's output) rebuilt from the
  TyDi QA primary task (`src.data.tydi_primary`: Bengali, Telugu, English questions beside their whole article).
- the wheels kernel (`chaii-recipes-wheels`): `pip download` of the pinned Hugging Face stack on Kaggle's own image,
  so the wheels match its Python and platform by construction; the submit kernel attaches it (`src.kaggle.wheels`).

Every input is checked on arrival (`src.kaggle.fetch`) and every output is read back with the loader the recipe
uses before the kernel ends.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from src.common.io import write_json
from src.kaggle.sources import FileSpec, data_kernel_slug
from src.kaggle.wheels import WHEELS_SLUG

TYDI_LANGUAGES = ("english", "bengali", "telugu")   # the winner's "tydi beteen" (kldarek/chaii README table)
SCRATCH = "../../tmp/chaii-data"                    # downloads: /tmp on Kaggle, never the kept /kaggle/working


# ---------------------------------------------------------------- the jobs (pure over their inputs, then files)
def tydi_language(doc: dict, language: str) -> dict:
    """The SQuAD-layout TyDi GoldP document restricted to one language's questions (ids '<language>--...')."""
    data = []
    for article in doc["data"]:
        paragraphs = [dict(p, qas=[q for q in p["qas"] if str(q["id"]).startswith(language + "-")])
                      for p in article["paragraphs"]]
        if paragraphs := [p for p in paragraphs if p["qas"]]:
            data.append(dict(article, paragraphs=paragraphs))
    return {"version": doc.get("version", "1.1"), "data": data}


def split_tydi(inputs: dict[str, Path], out: Path, user: str) -> None:
    doc = json.loads(Path(inputs["tydiqa-goldp-train"]).read_text(encoding="utf-8"))
    for lang in TYDI_LANGUAGES:
        write_json(tydi_language(doc, lang), Path(out) / f"{lang}_tydiqa_train.json")


def nq_subset(inputs: dict[str, Path], out: Path, user: str) -> None:
    """`python -m src.data.nq` as a function: target = TyDi GoldP English questions, other = SQuAD v1.1 train."""
    from src.data.external import load_squad_json, load_tydi_json
    from src.data.nq import SimilarityConfig, fit_similarity, load_nq_jsonl, select_similar, write_subset

    tydi = load_tydi_json(inputs["tydiqa-goldp-train"], on_error="drop")
    target = tydi.loc[tydi["language"] == "english", "question"].tolist()
    other = load_squad_json(inputs["squad-v1.1-train"], on_error="drop")["question"].tolist()
    print(f"similarity classifier: {len(target):,} target (TyDi English) vs {len(other):,} other (SQuAD v1.1) "
          "questions", flush=True)
    model = fit_similarity(target, other)
    nq, counts = load_nq_jsonl(inputs["nq-simplified-train"], on_error="drop")
    print(f"NQ records: {dict(counts)}", flush=True)
    kept, report = select_similar(nq, model, SimilarityConfig.keep_fraction)
    print(f"kept {report['kept']:,} of {report['n']:,} (threshold {report['threshold']:.3f})", flush=True)
    write_subset(kept, out, user)


def tydi_primary(inputs: dict[str, Path], out: Path, user: str) -> None:
    """`python -m src.data.tydi_primary` as a function: the winner's tydiqa_train.csv (Bengali, Telugu, English
    questions beside their whole article, character offsets) from the primary task's JSON lines."""
    from src.common.io import write_csv
    from src.data.tydi_primary import load_tydi_primary_jsonl
    from src.data.winner_csv import TYDI_CSV_COLUMNS

    df = load_tydi_primary_jsonl(inputs["tydiqa-primary-train"])
    print(f"TyDi primary task: {df.attrs['outcomes']}; per language: {df['language'].value_counts().to_dict()}",
          flush=True)
    write_csv(df[TYDI_CSV_COLUMNS], Path(out) / "tydiqa_train.csv")


@dataclass(frozen=True)
class DataKernel:
    name: str
    inputs: tuple[str, ...]                  # `files:` entries of configs/kaggle_sources.yaml
    job: Callable[[dict, Path, str], None]
    outputs: dict[str, str] = field(default_factory=dict)   # file -> the loader kind that must read it
    about: str = ""

    @property
    def slug(self) -> str:
        return data_kernel_slug(self.name)

    def competitions(self, files: dict[str, FileSpec]) -> list[str]:
        return list(dict.fromkeys(files[n].competition for n in self.inputs if files[n].competition))


DATA_KERNELS = {k.name: k for k in [
    DataKernel("tydi", ("tydiqa-goldp-train",), split_tydi,
               {f"{lang}_tydiqa_train.json": "tydi" for lang in TYDI_LANGUAGES},
               "TyDi QA GoldP train split per language"),
    DataKernel("nq", ("nq-simplified-train", "tydiqa-goldp-train", "squad-v1.1-train"), nq_subset,
               {"nq_subset.json": "nq"}, "the NQ subset kept by the similarity classifier"),
    DataKernel("tydi-primary", ("tydiqa-primary-train",), tydi_primary, {"tydiqa_train.csv": "tydi_primary"},
               "the winner's tydiqa_train.csv rebuilt from the TyDi QA primary task"),
]}


# ---------------------------------------------------------------- inside the kernel
def run_data_kernel(name: str, files: dict[str, dict], user: str, input_dir: str | Path = "../input",
                    work_dir: str | Path = ".", scratch: str | Path = SCRATCH) -> dict:
    """Fetch and check the kernel's inputs, run its job into `work_dir`, read every output back; returns a report
    (also written to `<work_dir>/data-kernel.json`)."""
    from src.kaggle.arrival import SourceError, check_file, loader_rows
    from src.kaggle.fetch import download, find_mount

    kernel = DATA_KERNELS[name]
    inputs, report = {}, {"kernel": kernel.slug, "inputs": {}, "outputs": {}}
    for input_name in kernel.inputs:
        spec = FileSpec(**{**files[input_name], "fields": tuple(files[input_name].get("fields") or ())})
        if spec.url:
            path, measured = download(spec, Path(scratch))
        else:
            path = find_mount(Path(input_dir), spec.competition) / spec.file
            measured = check_file(spec, path)
        inputs[input_name] = path
        report["inputs"][input_name] = measured
        print(f"{input_name}: {measured}", flush=True)
    kernel.job(inputs, Path(work_dir), user)
    for file, kind in kernel.outputs.items():
        path = Path(work_dir) / file
        if not path.is_file():
            raise SourceError(f"data kernel {kernel.slug}: wrote no {file}")
        rows, dropped = loader_rows(kind, path, None, f"data kernel {kernel.slug}, output {file}")
        report["outputs"][file] = {"rows": rows, "dropped": dropped, "bytes": path.stat().st_size}
        print(f"{file}: {rows:,} rows ({dropped} dropped)", flush=True)
    write_json(report, Path(work_dir) / "data-kernel.json")
    return report


def run_wheels_kernel(user: str, requirements: str = "", out: str | Path = ".") -> Path:
    """The wheels dataset built on the image this kernel runs on: its Python and manylinux platform. `requirements`
    (comma-separated) replaces the pinned Hugging Face stack of requirements.txt (a test's tiny package)."""
    from src.kaggle.wheels import build_wheels, local_target

    python_version, platform = local_target()
    reqs = [r.strip() for r in requirements.split(",") if r.strip()] or None
    dest = build_wheels(Path(out), user, reqs, python_version=python_version, platform=platform, slug=WHEELS_SLUG)
    from packaging.utils import parse_wheel_filename

    from src.kaggle.wheels import canonical

    shipped = (dest / "requirements.txt").read_text(encoding="utf-8").split()
    have = {canonical(parse_wheel_filename(p.name)[0]) for p in dest.glob("*.whl")}
    missing = [r for r in shipped if canonical(r.split("==")[0]) not in have]
    if missing or not (dest / "image-pins.json").is_file():
        raise RuntimeError(f"wheels kernel: no wheel for {', '.join(missing) or '-'} or no image-pins.json in {dest}")
    print(f"wheels for CPython {python_version} on {platform}: {', '.join(shipped)}", flush=True)
    return dest


# ---------------------------------------------------------------- the cells a built kernel runs
def data_kernel_source(name: str, files: dict[str, FileSpec], user: str) -> str:
    """The code cell of data kernel `name`: its inputs' specs embedded (the kernel reads no YAML)."""
    import dataclasses

    kernel = DATA_KERNELS[name]
    specs = {n: dataclasses.asdict(files[n]) for n in kernel.inputs}
    return ("import json\n\nfrom src.kaggle.data_kernels import run_data_kernel\n\n"
            f"# {kernel.about}: inputs fetched and checked, output written to /kaggle/working and read back\n"
            f"report = run_data_kernel({name!r}, json.loads({json.dumps(specs, ensure_ascii=False)!r}), "
            f"user={user!r})")


def wheels_kernel_source(user: str) -> str:
    return ("from src.kaggle.data_kernels import run_wheels_kernel\n\n"
            "# pip resolves and downloads the pinned stack for this very image into /kaggle/working\n"
            f"run_wheels_kernel({user!r}, requirements)")
