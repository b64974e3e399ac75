"""`make blend-check` picks the plain seeds of the grid from the QA base, not the superseded 6-layer grid."""
import json

from research.experiments import ablate, blend_check


def _run_dir(root, name):
    d = root / name
    d.mkdir(parents=True)
    (d / "xquad_hi_logits.npz").write_bytes(b"")
    (d / "xquad_hi_examples.csv").write_text("id\n")
    return d


def test_plain_runs_come_from_the_base_grid_log(tmp_path, monkeypatch):
    log = tmp_path / "experiments.jsonl"
    rows = [{"kind": "ablate", "variant": v, "seed": s, "run_id": ablate.run_id_of(ablate.run_config(v, s))}
            for v, s in (("plain", 0), ("plain", 1), ("cutout", 0), ("plain", 2))]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    want = [_run_dir(tmp_path / "ablation-base", r["run_id"]) for r in rows if r["variant"] == "plain"]
    _run_dir(tmp_path / "ablation-base", rows[2]["run_id"])
    for s in range(3):                                     # the old grid's runs, newer on disk
        _run_dir(tmp_path / "ablation", f"plain-s{s}-old")
    monkeypatch.setattr(blend_check, "CACHE_DIR", tmp_path)
    monkeypatch.setattr(ablate, "OUT_ROOT", tmp_path / "ablation-base")
    monkeypatch.setattr(ablate.explog, "REPO_LOG", log)
    assert blend_check.ablation_plain_runs() == want


def test_plain_runs_fall_back_to_the_old_grid(tmp_path, monkeypatch):
    log = tmp_path / "experiments.jsonl"
    log.write_text("")
    old = [_run_dir(tmp_path / "ablation", f"plain-s{s}-old") for s in range(3)]
    monkeypatch.setattr(blend_check, "CACHE_DIR", tmp_path)
    monkeypatch.setattr(ablate.explog, "REPO_LOG", log)
    assert sorted(blend_check.ablation_plain_runs()) == old


def test_given_run_folders_are_blended_from_their_saved_logits(tmp_path):
    runs = [_run_dir(tmp_path, f"plain-s{s}-925") for s in range(3)]
    assert blend_check.saved_runs([str(r) for r in runs]) == runs
    model = tmp_path / "plain-s0-925" / "model"
    model.mkdir()
    assert blend_check.saved_runs([str(model)] + [str(r) for r in runs[1:]]) == []   # model folders: run afresh
