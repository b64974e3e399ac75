"""What the simulated Kaggle's loopback "internet" serves, and the catalogue its kernels check against.

Every file of `configs/kaggle_sources.yaml` a chain reads gets a small stand-in in the real format, written here
from the synthetic generator (`src.data.synthetic`): TyDi GoldP train (SQuAD layout, every language in one file,
ids prefixed by language; its English questions TyDi-like, so the NQ kernel's classifier has something to learn),
SQuAD v1.1 / 2.0 train (the latter with unanswerable questions), MLQA as a zip holding
`MLQA_V1/dev/dev-context-hi-question-hi.json`, XQuAD hi, TyDi's primary task (gzip JSON lines, byte offsets), and
Natural Questions' simplified JSON lines as the competition file. Downloads are served where the mirror puts their
published address; competition files go into the simulation's store. The simulation's catalogue is the real one
with each served file's own size and checksum (and without the checks of `src.data.checks`, which pin the
published files); everything else is unchanged.
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from research.kaggle_sim.loopback import Loopback
from research.kaggle_sim.sim import squad_layout
from src.common.io import write_text
from src.data.checks import sha256_of
from src.data.synthetic import make_synthetic_qa, nq_sample_records
from src.kaggle.sources import SOURCES_CONFIG


def _json(doc: dict) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode()


def _reference(style: str, n: int) -> dict:
    """The synthetic generator's TyDi-like ("target") or reading-comprehension ("other") questions, SQuAD layout."""
    import tempfile

    from src.data.synthetic import write_reference_questions

    with tempfile.TemporaryDirectory() as tmp:
        return json.loads(write_reference_questions(Path(tmp) / "q.json", style, n=n).read_text(encoding="utf-8"))


def tydi_goldp(n: int = 12) -> bytes:
    """TyDi GoldP train: English TyDi-like questions (the NQ classifier's target), Bengali and Telugu rows."""
    data = []
    for lang, seed in (("bengali", 11), ("telugu", 12)):
        df = make_synthetic_qa(n, seed=seed, people=2)
        df["id"] = [f"{lang}--{i}-0" for i in df["id"]]
        data += squad_layout(df)["data"]
    english = _reference("target", 40)
    for article in english["data"]:
        for p in article["paragraphs"]:
            for q in p["qas"]:
                q["id"] = f"english--{q['id']}"
    return _json({"version": "1.1", "data": english["data"] + data})


def squad_v1(n: int = 40) -> bytes:
    """SQuAD v1.1 train: reading-comprehension questions (the NQ classifier's other side)."""
    return _json({**_reference("other", n), "version": "1.1"})


def squad_v2(n: int = 12) -> bytes:
    return _json(squad_layout(make_synthetic_qa(n, seed=21, people=2), make_synthetic_qa(3, seed=7)))


def mlqa_zip(n: int = 12) -> bytes:
    df = make_synthetic_qa(n, seed=31, people=2, languages=("hindi",))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("MLQA_V1/dev/dev-context-hi-question-hi.json", _json(squad_layout(df)))
        z.writestr("MLQA_V1/dev/dev-context-en-question-en.json", _json(squad_layout(make_synthetic_qa(3, seed=1))))
    return buf.getvalue()


def xquad_hi(n: int = 12) -> bytes:
    return _json(squad_layout(make_synthetic_qa(n, seed=41, people=2, languages=("hindi",))))


def tydi_primary(n: int = 12) -> bytes:
    """TyDi QA primary-task train: one JSON record a line, gzip; whole documents whose minimal answers are UTF-8
    byte offsets (as google-research-datasets/tydiqa publishes them), Bengali, Telugu and English, and a record of
    another language that the rebuild drops."""
    import gzip

    lines = []
    for lang, seed in (("bengali", 51), ("telugu", 52), ("english", 53), ("arabic", 54)):
        for r in make_synthetic_qa(n // 3 if lang != "arabic" else 1, seed=seed, people=2).itertuples():
            start = len(r.context[:r.answer_start].encode())
            lines.append(json.dumps({
                "example_id": int(r.id, 16), "language": lang, "question_text": r.question, "document_title": r.id,
                "document_url": f"https://{lang[:2]}.wikipedia.org/wiki/{r.id}", "document_plaintext": r.context,
                "passage_answer_candidates": [{"plaintext_start_byte": 0,
                                               "plaintext_end_byte": len(r.context.encode())}],
                "annotations": [{"annotation_id": 0, "yes_no_answer": "NONE", "passage_answer": {"candidate_index": 0},
                                 "minimal_answer": {"plaintext_start_byte": start,
                                                    "plaintext_end_byte": start + len(r.answer_text.encode())}}]},
                ensure_ascii=False))
    return gzip.compress(("\n".join(lines) + "\n").encode())


def nq_simplified(n: int = 40) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in nq_sample_records(n)).encode()


# the stand-in of each `files:` entry, by name
STAND_INS = {"tydiqa-goldp-train": tydi_goldp, "squad-v1.1-train": squad_v1, "squad-v2.0-train": squad_v2,
             "mlqa-hi-dev": mlqa_zip, "xquad-hi": xquad_hi, "nq-simplified-train": nq_simplified,
             "tydiqa-primary-train": tydi_primary}


def serve_sources(loopback: Loopback, store: Path, out_config: Path, names: list[str] | None = None,
                  config: Path = SOURCES_CONFIG, damage: dict[str, bytes] | None = None) -> Path:
    """Serve (or, for a competition's file, store) the stand-in of every file of `config` a folder or a data kernel
    reads (or of `names`) and
    write the simulation's catalogue to `out_config`: each file's own bytes and sha256, no `check`. `damage`
    {name: body} serves another body than the catalogue describes (a truncated or re-laid-out source)."""
    import yaml

    from src.kaggle.arrival import check_file
    from src.kaggle.data_kernels import DATA_KERNELS
    from src.kaggle.sources import FileSpec

    doc = yaml.safe_load(Path(config).read_text(encoding="utf-8"))
    if names is None:  # what some folder downloads or some data kernel reads
        routes = doc["folders"].values()
        names = {n for r in routes for n in r.get("download") or []}
        names |= {n for r in routes if r.get("kernel") in DATA_KERNELS for n in DATA_KERNELS[r["kernel"]].inputs}
    for name, spec in doc["files"].items():
        if name not in names:
            continue
        if name not in STAND_INS:
            raise KeyError(f"the simulation has no stand-in for files.{name} of {config}: add one to "
                           "research/kaggle_sim/internet.py (STAND_INS)")
        body = STAND_INS[name]()
        spec.pop("check", None)
        spec.pop("records", None)
        raw = store / "_raw" / name / ("archive.zip" if spec.get("member") else spec["file"])   # .gz read by suffix
        raw.parent.mkdir(parents=True, exist_ok=True)
        raw.write_bytes(body)
        if spec.get("member"):   # the extracted member is what the catalogue describes
            with zipfile.ZipFile(raw) as z:
                member = next(m for m in z.namelist() if m.endswith(spec["member"]))
                (raw.parent / spec["file"]).write_bytes(z.read(member))
            arrived = raw.parent / spec["file"]
        else:
            arrived = raw
        spec.update(bytes=arrived.stat().st_size, sha256=sha256_of(arrived))
        plain = FileSpec(name=name, **{k: v for k, v in spec.items() if k not in ("bytes", "sha256")})
        measured = check_file(plain, arrived) if spec.get("kind") else {}
        if "records" in measured:
            spec["records"] = measured["records"]
        served = (damage or {}).get(name, body)
        if spec.get("competition"):
            (store / spec["competition"]).mkdir(parents=True, exist_ok=True)
            (store / spec["competition"] / spec["file"]).write_bytes(served)
        else:
            loopback.add_download(spec["url"], served)
    for route in doc["folders"].values():
        route.pop("records", None)   # the published row counts and checks: not the stand-ins'
        route.pop("checks", None)
    write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), out_config)
    return out_config


def serve_backbones(loopback: Loopback, backbones: list[str], models_dir: Path) -> dict[str, str]:
    """Each backbone's tiny stand-in served under its hub id at its registry revision: {hub id: commit}."""
    from src.train.backbones import STANDS_IN_FOR, family_base, get_backbone

    commits = {}
    for name in backbones:
        b = get_backbone(family_base(name))
        commits[b.hub_id] = loopback.add_model(b.hub_id, Path(models_dir) / STANDS_IN_FOR[b.name], b.revision)
    return commits
