"""The whole-letters measurement on a run folder: answers found again from its logits, cut letters counted."""
import json

import numpy as np
import pandas as pd

from research.experiments import whole_letters
from src.infer.predict import NO_OFFSET, WindowLogits

EXAMPLES = pd.DataFrame({"id": ["hi1", "ta1", "ta2"], "context": ["सौ लड़कियों", "அந்த பக்கம்", "அந்த பக்கம்"],
                         "language": ["hindi", "tamil", "tamil"], "answer_text": ["लड़कियों", "பக்கம்", "அந்த"],
                         "answers": [["लड़कियों"], ["பக்கம்"], ["அந்த"]]})
# the model's picks (character spans; one token per character): "ियों" alone, "பக்கம" without its final virama,
# and "அந்த" whole
PICKS = {"hi1": (7, 11), "ta1": (5, 10), "ta2": (0, 4)}


def fake_run(tmp_path):
    width = 12
    starts = np.full((3, width), -10.0, np.float16)
    ends = np.full((3, width), -10.0, np.float16)
    offsets = np.full((3, width, 2), NO_OFFSET, np.int32)
    for w, (eid, ctx) in enumerate(zip(EXAMPLES["id"], EXAMPLES["context"], strict=True)):
        n = len(ctx)
        offsets[w, :n, 0], offsets[w, :n, 1] = np.arange(n), np.arange(n) + 1
        a, b = PICKS[eid]
        starts[w, a], ends[w, b - 1] = 5.0, 5.0
    WindowLogits(np.array(EXAMPLES["id"].tolist(), dtype=str), starts, ends, offsets).save(tmp_path / "oof_logits.npz")
    oof = pd.DataFrame({"id": EXAMPLES["id"], "prediction": [c[slice(*PICKS[i])] for i, c in
                                                             zip(EXAMPLES["id"], EXAMPLES["context"], strict=True)]})
    oof.to_csv(tmp_path / "oof.csv", index=False)
    EXAMPLES.assign(answers=EXAMPLES["answers"].map(lambda a: json.dumps(a, ensure_ascii=False))).to_csv(
        tmp_path / "examples.csv", index=False)
    return tmp_path


def test_report_counts_cut_answers_and_scores_them_widened(tmp_path):
    run = fake_run(tmp_path)
    table, differ = whole_letters.report(EXAMPLES, WindowLogits.load(run / "oof_logits.npz"),
                                         oof=pd.read_csv(run / "oof.csv", dtype=str, keep_default_na=False))
    assert differ == 0                                     # the spans found again are the run's own answers
    assert table["cut_letter"].to_dict() == {"hindi": 1, "tamil": 1, "all": 2}
    # "ियों" -> "कियों" is still not the word (0 -> 0); "பக்கம" -> "பக்கம்" is the gold (0 -> 1)
    assert table.loc["tamil", "jaccard_as_is"] == 0.5 and table.loc["tamil", "jaccard_whole_letters"] == 1.0
    assert table.loc["hindi", "gain"] == 0.0


def test_cli_on_a_run_folder(tmp_path, capsys):
    run = fake_run(tmp_path)
    whole_letters.main([str(run), "--examples", str(run / "examples.csv")])
    out = capsys.readouterr().out
    assert "n_best_size 20, max_answer_length 30); 0 differ from oof.csv's predictions" in out
    assert "tamil" in out and "0.5000" in out and "1.0000" in out
