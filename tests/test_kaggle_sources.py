"""Kernels that fetch their own inputs: the catalogue of where each source comes from, every source checked on
arrival (a truncated file or another layout stops with the source's name), the backbone from a loopback hub at the
registry's revision, the data kernels' jobs, and a built data kernel failing in the simulated tree on a bad source."""
import dataclasses
import gzip
import hashlib
import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from research.kaggle_sim.internet import serve_sources, squad_layout, xquad_hi
from research.kaggle_sim.loopback import Loopback, tiny_wheel
from src.data.synthetic import make_synthetic_qa
from src.kaggle import arrival, fetch
from src.kaggle import data_kernels as dk
from src.kaggle.sources import SOURCES_CONFIG, FileSpec, SourcesError, load_catalogue, recipe_routes
from src.train.recipe import Recipe


@pytest.fixture
def net(monkeypatch):
    """The loopback server, its addresses in this process's environment (as a kernel with internet gets them)."""
    import huggingface_hub.constants

    with Loopback(timeout_s=300) as server:
        for k, v in server.env().items():
            monkeypatch.setenv(k, v)
        # read once at import: a test before this one may have imported huggingface_hub with the hub offline
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
        yield server


def squad_bytes(n=6, seed=0, language="hindi") -> bytes:
    return json.dumps(squad_layout(make_synthetic_qa(n, seed=seed, languages=(language,)))).encode()


# ---------------------------------------------------------------- the catalogue
def test_the_committed_catalogue_routes_every_recipe_folder_and_refuses_mistakes_by_file_and_field(tmp_path):
    cat = load_catalogue()
    from src.train.recipe import load_recipe

    for name in ("recipe_kaggle", "winner_68", "winner_52", "winner_116", "winner_119", "winner_122", "winner_126"):
        assert recipe_routes(load_recipe(name), cat)  # every folder has a route
    # no route attaches a data set of the user's own: the kernels fetch what they need
    assert not [r for r in cat.folders.values() if "{user}" in r.dataset + r.output]
    assert cat.files["squad-v1.1-train"].sha256.startswith("35276639") and cat.files["squad-v1.1-train"].bytes

    doc = yaml.safe_load(SOURCES_CONFIG.read_text())
    cases = [
        (("folders", "xquad", {"dataset": "{user}/xquad"}), r"folders.xquad.dataset: '\{user\}/xquad': a public one"),
        (("folders", "xquad", {"dataset": "a/b", "download": ["xquad-hi"]}), "exactly one of dataset, output"),
        (("folders", "xquad", {"download": ["nope"]}), "folders.xquad.download: 'nope' is not under files:"),
        (("folders", "xquad", {"download": ["nq-simplified-train"]}), "is a competition's file, not a download"),
        (("files", "xquad-hi", {**doc["files"]["xquad-hi"], "sha256": "abc"}), "files.xquad-hi.sha256: expected 64"),
        (("files", "xquad-hi", {**doc["files"]["xquad-hi"], "kind": "parquet"}), "files.xquad-hi.kind: 'parquet'"),
        (("files", "xquad-hi", {**doc["files"]["xquad-hi"], "colour": 1}), r"unknown field\(s\) colour"),
        (("files", "xquad-hi", {**doc["files"]["xquad-hi"], "competition": "x"}), "exactly one of url"),
    ]
    for (section, key, value), message in cases:
        bad = json.loads(json.dumps(doc))
        bad[section][key] = value
        path = tmp_path / "sources.yaml"
        path.write_text(yaml.safe_dump(bad))
        with pytest.raises(SourcesError, match=message) as e:
            load_catalogue(path)
        assert str(e.value).startswith(str(path))
    recipe = Recipe.from_dict({"name": "r", "stages": [{"name": "s", "sources": [
        {"name": "mystery", "kind": "squad", "path": "mystery-qa/train.json"}]}]})
    with pytest.raises(SourcesError, match=r"reads mystery-qa \(read by mystery\), which .*kaggle_sources.yaml does "
                                           r"not say how to fetch"):
        recipe_routes(recipe, cat)


# ---------------------------------------------------------------- arrival checks
def test_a_download_arrives_checked_and_a_cut_or_other_file_is_refused_naming_its_source(net, tmp_path):
    body = xquad_hi()
    spec = FileSpec("xquad-hi", "xquad.hi.json", url="https://raw.example.org/xquad/xquad.hi.json", kind="xquad",
                    language="hindi", bytes=len(body), sha256=hashlib.sha256(body).hexdigest(),
                    records=12)
    net.add_download(spec.url, body)
    path, got = fetch.download(spec, tmp_path / "xquad")
    assert path.read_bytes() == body and got["records"] == got["rows"] == 12 and got["sha256"] == spec.sha256
    assert ("GET", "/dl/raw.example.org/xquad/xquad.hi.json") in net.requests   # through the mirror, not the host

    net.add_download(spec.url, body[: len(body) // 2])                           # cut short on the way
    with pytest.raises(fetch.SourceError, match=r"source 'xquad-hi' \(https://raw.example.org/xquad/xquad.hi.json\)"
                                                rf": cut short: {len(body) // 2:,} bytes, expected {len(body):,}"):
        fetch.download(spec, tmp_path / "cut")
    # without a published size or checksum, the loader finds the damage: cut JSON, another layout, fewer records
    loose = FileSpec("xquad-hi", "xquad.hi.json", url=spec.url, kind="xquad", language="hindi", records=12)
    with pytest.raises(fetch.SourceError, match=r"source 'xquad-hi' .*not the layout the xquad loader reads: .*(not "
                                                "UTF-8|not valid JSON)"):
        fetch.download(loose, tmp_path / "cut2")
    net.add_download(spec.url, b"id,context,question\n1,a,b\n")
    with pytest.raises(fetch.SourceError, match="source 'xquad-hi'.*xquad loader reads"):
        fetch.download(loose, tmp_path / "csv")
    net.add_download(spec.url, json.dumps({"version": "1", "rows": []}).encode())
    with pytest.raises(fetch.SourceError, match="not SQuAD layout: expected a top-level object with a 'data' list"):
        fetch.download(loose, tmp_path / "layout")
    net.add_download(spec.url, squad_bytes(5))
    with pytest.raises(fetch.SourceError, match="source 'xquad-hi'.*: 5 records, expected 12"):
        fetch.download(loose, tmp_path / "few")
    missing = FileSpec("gone", "x.json", url="https://raw.example.org/nowhere.json")
    with pytest.raises(fetch.SourceError, match=r"source 'gone' .*download from http://127.0.0.1:\d+/dl/raw.example."
                                                r"org/nowhere.json failed: HTTP Error 404"):
        fetch.download(missing, tmp_path / "gone")


def test_a_zip_member_and_gzip_json_lines_are_checked_whole(net, tmp_path):
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("MLQA_V1/dev/dev-context-hi-question-hi.json", squad_bytes(4))
        z.writestr("MLQA_V1/test/test-context-hi-question-hi.json", squad_bytes(3, seed=2))
    url = "https://dl.example.org/MLQA_V1.zip"
    net.add_download(url, buf.getvalue())
    spec = FileSpec("mlqa-hi-dev", "dev-context-hi-question-hi.json", url=url, member="dev/dev-context-hi-question-"
                    "hi.json", kind="mlqa", language="hindi", records=4)
    path, got = fetch.download(spec, tmp_path / "mlqa")
    assert got["records"] == 4 and json.loads(path.read_text())["data"]
    net.add_download(url, buf.getvalue()[:200])
    with pytest.raises(fetch.SourceError, match="source 'mlqa-hi-dev'.*not a whole zip file"):
        fetch.download(spec, tmp_path / "cutzip")

    lines = [json.dumps({"example_id": i, "question_text": "q", "document_text": "d", "annotations": []})
             for i in range(50)]
    gz = gzip.compress(("\n".join(lines) + "\n").encode())
    url = "https://storage.example.org/nq.jsonl.gz"
    spec = FileSpec("nq", "nq.jsonl.gz", url=url, kind="jsonl", records=50,
                    fields=("example_id", "question_text", "document_text", "annotations"))
    net.add_download(url, gz)
    assert fetch.download(spec, tmp_path / "nq")[1]["records"] == 50
    net.add_download(url, gz[: len(gz) - 30])
    with pytest.raises(fetch.SourceError, match="source 'nq'.*nq.jsonl.gz is cut short or not gzip"):
        fetch.download(spec, tmp_path / "nqcut")
    net.add_download(url, gzip.compress(b'{"example_id": 1, "question": "q"}\n'))
    with pytest.raises(fetch.SourceError, match="not the expected layout: record 1 lacks question_text, document_text"):
        fetch.download(spec, tmp_path / "nqlayout")
    plain = tmp_path / "plain" / "nq.jsonl"
    plain.parent.mkdir()
    plain.write_text("\n".join(lines[:3]) + "\n" + lines[3][:20])
    with pytest.raises(fetch.SourceError, match=r"source 'nq' \(competition c, nq.jsonl\): nq.jsonl: its last record "
                                                r"\(line 4\) is cut short"):
        arrival.check_file(FileSpec("nq", "nq.jsonl", competition="c", kind="jsonl"), plain)


def test_the_backbone_comes_from_the_hub_at_its_registry_revision(net, tmp_path, tiny_dirs, monkeypatch):
    from src.train import backbones

    commit = net.add_model("google/muril-large-cased", tiny_dirs["tiny-bert"])
    got = fetch.fetch_backbone("muril-large@short", tmp_path / "models")   # a family takes its base's weights
    assert got["commit"] == commit and got["hub_id"] == "google/muril-large-cased" and got["revision"] == "main"
    assert (tmp_path / "models" / "muril-large" / "config.json").is_file() and got["files"]["model.safetensors"] > 0
    assert any("/resolve/" + commit in path for _, path in net.requests)      # files fetched at the commit
    # a revision the hub does not have, and a repository it does not have, stop naming the backbone
    pinned = backbones.dataclasses.replace(backbones.REGISTRY["muril-large"], revision="f" * 40)
    monkeypatch.setitem(backbones.REGISTRY, "muril-large", pinned)
    with pytest.raises(fetch.SourceError, match=rf"backbone 'muril-large' \(google/muril-large-cased@{'f' * 40}\): "
                                                "could not be fetched: RevisionNotFoundError"):
        fetch.fetch_backbone("muril-large", tmp_path / "m2")
    with pytest.raises(fetch.SourceError, match=r"backbone 'rembert' \(google/rembert@main\): could not be fetched"):
        fetch.fetch_backbone("rembert", tmp_path / "m3")
    assert fetch.hub_files(["config.json", "pytorch_model.bin", "model.safetensors", "tf_model.h5", "onnx/model.onnx",
                            "sentencepiece.bpe.model", "tokenizer.json", "flax_model.msgpack"]) == \
        ["config.json", "model.safetensors", "sentencepiece.bpe.model", "tokenizer.json"]
    assert fetch.hub_files(["config.json", "pytorch_model.bin", "vocab.txt"]) == \
        ["config.json", "pytorch_model.bin", "vocab.txt"]


# ---------------------------------------------------------------- a training kernel's inputs, the winner's recipe
def winner_inputs(root: Path, n: int = 6) -> None:
    """Stand-ins of the winner's files where Kaggle mounts them: his data sets and the TyDi kernel's output."""
    df = make_synthetic_qa(n, seed=5, people=2)
    (root / "chaii-recipes-data-tydi-primary").mkdir(parents=True)
    df.assign(language=["bengali", "telugu"] * (n // 2))[
        ["id", "context", "question", "answer_text", "answer_start", "language"]].to_csv(
        root / "chaii-recipes-data-tydi-primary" / "tydiqa_train.csv", index=False)
    (root / "nqsmall").mkdir()
    df.rename(columns={"answer_text": "answer"})[["id", "context", "question", "answer", "answer_start"]].to_csv(
        root / "nqsmall" / "nq_small.csv", index=False)
    (root / "chaiimlqaxquad").mkdir()
    df.assign(src=["mlqa", "xquad"] * (n // 2), fold=0, language="hindi")[
        ["context", "question", "answer_text", "answer_start", "language", "src", "fold"]].to_csv(
        root / "chaiimlqaxquad" / "chaii-mlqa-xquad-5folds.csv", index=False)


def test_a_training_kernels_inputs_arrive_for_the_winners_recipe_and_a_published_check_names_its_folder(
        net, tmp_path, tiny_dirs):
    from src.kaggle.sources import routes_spec
    from src.train.recipe import load_recipe

    net.add_model("google/muril-large-cased", tiny_dirs["tiny-bert"])
    config = serve_sources(net, tmp_path / "store", tmp_path / "sources.yaml", names=["squad-v1.1-train"])
    cat = load_catalogue(config)
    inputs = tmp_path / "input"
    winner_inputs(inputs)
    routes = routes_spec(load_recipe("winner_68"), cat)
    assert {f: r["route"]["dataset"] or r["route"]["kernel"] or "download" for f, r in routes.items()} == {
        "tydi-qa-download": "tydi-primary", "squad-v1.1": "download", "chaiimlqaxquad": "zacchaeus/chaiimlqaxquad",
        "nqsmall": "thedrcat/nqsmall"}
    report = fetch.prepare_training_inputs("muril-large", "winner_68", routes, "you", inputs, tmp_path / "ext",
                                           tmp_path / "models", tmp_path)
    assert json.loads((tmp_path / "sources.json").read_text()) == json.loads(json.dumps(report, default=str))
    assert report["folders"]["nqsmall"]["from"] == "thedrcat/nqsmall"
    assert report["folders"]["tydi-qa-download"]["from"] == "you/chaii-recipes-data-tydi-primary"
    assert report["rows"]["nqsmall/nq_small.csv"]["rows"] == 6
    assert report["rows"]["chaiimlqaxquad/chaii-mlqa-xquad-5folds.csv"]["rows"] == 6   # his Hindi rows (part)
    assert report["rows"]["squad-v1.1/train-v1.1.json"]["rows"] == 40

    # the committed catalogue's published checks: his nq_small.csv has 10,658 rows, this one 6
    routes["nqsmall"]["route"]["checks"] = load_catalogue().folders["nqsmall"].checks
    with pytest.raises(fetch.SourceError, match=r"folder nqsmall/ \(from thedrcat/nqsmall\): source 'nq_small' "
                                                r".*nq_small.csv\): .*bytes \(truncated\?\)"):
        fetch.prepare_training_inputs("muril-large", "winner_68", routes, "you", inputs, tmp_path / "e2",
                                      tmp_path / "models", tmp_path)
    routes["nqsmall"]["route"]["checks"] = {}
    (inputs / "nqsmall" / "nq_small.csv").write_text("id,text\n1,x\n")            # another layout
    with pytest.raises(fetch.SourceError, match=r"source 'nq' \(nqsmall/nq_small.csv, from thedrcat/nqsmall\): not "
                                                "what the recipe's nq_documents loader reads"):
        fetch.prepare_training_inputs("muril-large", "winner_68", routes, "you", inputs, tmp_path / "e3",
                                      tmp_path / "models", tmp_path)
    (inputs / "nqsmall" / "nq_small.csv").unlink()
    (inputs / "nqsmall").rmdir()
    with pytest.raises(fetch.SourceError, match="nqsmall is not attached to this kernel"):
        fetch.prepare_training_inputs("muril-large", "winner_68", routes, "you", inputs, tmp_path / "e4",
                                      tmp_path / "models", tmp_path)


# ---------------------------------------------------------------- data kernels
def test_the_tydi_split_and_the_primary_task_rebuild(tmp_path):
    from research.kaggle_sim.internet import tydi_goldp

    (tmp_path / "goldp.json").write_bytes(tydi_goldp())
    dk.split_tydi({"tydiqa-goldp-train": tmp_path / "goldp.json"}, tmp_path, "you")
    counts = {}
    for lang in dk.TYDI_LANGUAGES:
        ids = [q["id"] for a in json.loads((tmp_path / f"{lang}_tydiqa_train.json").read_text())["data"]
               for p in a["paragraphs"] for q in p["qas"]]
        assert ids and all(i.startswith(lang + "--") for i in ids)
        counts[lang] = len(ids)
    assert counts == {"english": 40, "bengali": 12, "telugu": 12}

    doc = "রবীন্দ্রনাথ ঠাকুর বাংলা ভাষার কবি। তিনি ১৯১৩ সালে নোবেল পুরস্কার পান।"
    start = doc.encode().index("১৯১৩ সালে".encode())
    record = {"example_id": 1, "language": "bengali", "question_text": "কবে?", "document_title": "T",
              "document_plaintext": doc, "document_url": "u",
              "passage_answer_candidates": [{"plaintext_start_byte": 0, "plaintext_end_byte": len(doc.encode())}],
              "annotations": [{"annotation_id": 0, "yes_no_answer": "NONE", "passage_answer": {"candidate_index": 0},
                               "minimal_answer": {"plaintext_start_byte": start,
                                                  "plaintext_end_byte": start + len("১৯১৩ সালে".encode())}}]}
    src = tmp_path / "primary.jsonl.gz"
    src.write_bytes(gzip.compress((json.dumps(record, ensure_ascii=False) + "\n").encode()))
    dk.tydi_primary({"tydiqa-primary-train": src}, tmp_path, "you")
    out = pd.read_csv(tmp_path / "tydiqa_train.csv", dtype=str, keep_default_na=False)
    row = out.iloc[0]
    assert list(out.columns) == ["id", "context", "question", "answer_text", "answer_start", "language"]
    assert row.context[int(row.answer_start):].startswith("১৯১৩ সালে")    # a character offset, not the byte one


def test_a_data_kernel_fetches_checks_and_reads_back_its_output(net, tmp_path):
    from research.kaggle_sim.internet import nq_simplified, squad_v1, tydi_goldp

    cat = load_catalogue()
    files = {n: dict(dataclasses.asdict(cat.files[n]), check="", sha256="", bytes=None, records=None)
             for n in dk.DATA_KERNELS["nq"].inputs}
    net.add_download(files["tydiqa-goldp-train"]["url"], tydi_goldp())
    net.add_download(files["squad-v1.1-train"]["url"], squad_v1())
    comp = tmp_path / "input" / "tensorflow2-question-answering"
    comp.mkdir(parents=True)
    (comp / "simplified-nq-train.jsonl").write_bytes(nq_simplified())
    report = dk.run_data_kernel("nq", files, "you", tmp_path / "input", tmp_path / "work", tmp_path / "scratch")
    assert report["inputs"]["nq-simplified-train"]["records"] == 40
    assert report["outputs"]["nq_subset.json"]["rows"] > 0 and (tmp_path / "work" / "data-kernel.json").is_file()
    (comp / "simplified-nq-train.jsonl").write_bytes(nq_simplified()[:-50])         # the competition file cut
    with pytest.raises(fetch.SourceError, match=r"source 'nq-simplified-train' \(competition tensorflow2-question-"
                                                r"answering, simplified-nq-train.jsonl\): .*its last record "
                                                r"\(line 40\) is cut short"):
        dk.run_data_kernel("nq", files, "you", tmp_path / "input", tmp_path / "w2", tmp_path / "scratch")


def test_the_wheels_kernel_downloads_from_an_index_for_this_image(net, tmp_path):
    net.add_wheel(tiny_wheel(tmp_path / "house"))
    dest = dk.run_wheels_kernel("you", "chaii-probe==0.1", tmp_path / "out")
    assert (dest / "requirements.txt").read_text().split() == ["chaii-probe==0.1"]
    assert [p.name for p in dest.glob("*.whl")] == ["chaii_probe-0.1-py3-none-any.whl"]
    assert json.loads((dest / "image-pins.json").read_text())["torch"]["specifier"]
    assert any(path == "/simple/chaii-probe/" for _, path in net.requests)


def test_a_built_data_kernel_fails_in_the_simulated_tree_naming_a_truncated_source(net, tmp_path, monkeypatch):
    """The kernel as Kaggle runs it (papermill, the simulated /kaggle tree, the socket guard): its download arrives
    cut short and the kernel stops with the source's name."""
    from papermill.exceptions import PapermillExecutionError

    from research.kaggle_sim.internet import tydi_goldp
    from research.kaggle_sim.sim import KaggleSim, offline_env
    from src.kaggle.build import build

    sim = KaggleSim(tmp_path / "sim", internet=net.env())
    cut = tydi_goldp()[:-400]
    config = serve_sources(net, sim.store, tmp_path / "sources.yaml", names=list(dk.DATA_KERNELS["tydi"].inputs),
                           damage={"tydiqa-goldp-train": cut})
    build(tmp_path / "kernels", "you", {"muril-large": 2}, plan="folds", wheels=False, limits=False,
          sources_config=config)
    with pytest.raises(PapermillExecutionError, match=r"SourceError: source 'tydiqa-goldp-train' \(https://storage."
                                                      r"googleapis.com/tydiqa/v1.1/tydiqa-goldp-v1.1-train.json\): "
                                                      rf"cut short: {len(cut):,} bytes"):
        sim.run(tmp_path / "kernels" / "chaii-recipes-data-tydi", tmp_path / "executed",
                offline_env(tmp_path / "site"))
