"""Notebooks 01/02 logic: EDA tables and the tokenizer report on data whose answers we control."""
import pandas as pd
import pytest

from src.data.eda import lengths, summary
from src.train.tokenizer_report import answer_alignment, tokenizer_report


def test_answer_alignment_detects_misaligned_and_glued_edges():
    ctx = "विद्रोह (1857), राम"
    start = ctx.index("1857")
    # one token "(1857)," covering the answer plus punctuation on both sides
    glued = answer_alignment(ctx, start, "1857", [(8, 15)])
    assert glued == {"start_aligned": False, "end_aligned": False, "glued_punctuation": True}
    clean = answer_alignment(ctx, start, "1857", [(8, 9), (9, 13), (13, 15)])
    assert clean == {"start_aligned": True, "end_aligned": True, "glued_punctuation": False}
    # a word piece that ends inside the answer is misaligned but carries no punctuation
    split = answer_alignment("राम अयोध्या", 4, "अयो", [(0, 3), (4, 11)])
    assert split["start_aligned"] and not split["end_aligned"] and not split["glued_punctuation"]


def test_tokenizer_report_on_both_kinds(tokenizer):
    df = pd.DataFrame({"id": ["a", "b"], "context": ["राम का जन्म अयोध्या में हुआ। " * 40, "சென்னை நகரம்."],
                       "question": ["राम का जन्म कहाँ?", "எந்த நகரம்?"], "answer_text": ["अयोध्या", "சென்னை"],
                       "answer_start": [12, 0], "language": ["hindi", "tamil"]})
    r = tokenizer_report(df, tokenizer, max_length=64, doc_stride=16)
    assert r["tokens_per_word"] >= 1.0
    assert r["windows_per_context_max"] > 1 and r["windows_per_context_mean"] > 1
    assert 0 <= r["answers_both_aligned"] <= 1 and 0 <= r["answers_glued_punctuation"] <= 1


def test_eda_tables():
    df = pd.DataFrame({"id": ["a", "b", "c"], "context": ["x y z w", "x y", "x y"], "question": ["q", "q r", "q"],
                       "answer_text": ["z", "x", "y"], "answer_start": [4, 0, 2],
                       "language": ["hindi", "tamil", "tamil"]})
    L = lengths(df)
    assert L["context_words"].tolist() == [4, 2, 2] and L["answer_position"].tolist() == [4 / 7, 0.0, 2 / 3]
    s = summary(df)
    assert s.loc["tamil", "rows"] == 2 and s.loc["tamil", "contexts"] == 1 and s.loc["hindi", "context_chars_max"] == 7


def _tiny_notebook(path, body: str):
    import nbformat

    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python",
                                                          "display_name": "Python 3"}})
    nb.cells = [nbformat.v4.new_markdown_cell("# tiny report"),
                nbformat.v4.new_code_cell("n = 3", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(body)]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def test_executed_notebooks_become_self_contained_reports_and_an_index(tmp_path):
    """Two runs of a batch folder, one with a plot and metrics.json, one failing: each gets an HTML report with its
    image embedded and nothing loaded from the web; index.html links both with status and key metric."""
    import json
    import re

    import papermill as pm

    from src.notebooks.report import INDEX, report_run_folder
    from src.notebooks.run import run_notebook

    src = tmp_path / "src"
    _tiny_notebook(src / "plot.ipynb", "import matplotlib.pyplot as plt\nplt.plot(range(n))\nplt.show()\n"
                                       "print('marker-' + str(n))")
    _tiny_notebook(src / "boom.ipynb", "raise ValueError('boom at ' + str(n))")
    runs = tmp_path / "runs"
    good = run_notebook("plot", runs / "tiny-bert" / "fold0", {"n": 5}, progress=False, notebook_dir=src)
    (good.parent / "metrics.json").write_text(json.dumps({"metrics": {"jaccard_all": 0.61234}}))
    with pytest.raises(pm.PapermillExecutionError):
        run_notebook("boom", runs / "missing" / "fold0", {"n": 1}, progress=False, notebook_dir=src)

    index = report_run_folder(runs, metrics={"missing/fold0/boom.ipynb": "none (failed)"})
    report = (runs / "tiny-bert" / "fold0" / "plot.html").read_text(encoding="utf-8")
    assert "marker-5" in report and re.search(r'<img [^>]*src="data:image/png;base64,', report)
    assert "<script src=" not in report and 'href="http' not in report     # opens offline
    failed = (runs / "missing" / "fold0" / "boom.html").read_text(encoding="utf-8")
    assert "boom at 1" in failed
    page = index.read_text(encoding="utf-8")
    assert index == runs / INDEX
    rows = {r.split('href="')[1].split('"')[0]: r for r in page.split("<tr>")[2:]}
    assert set(rows) == {"tiny-bert/fold0/plot.html", "missing/fold0/boom.html"}
    assert "0.6123" in rows["tiny-bert/fold0/plot.html"] and ">ok<" in rows["tiny-bert/fold0/plot.html"]
    assert ">failed<" in rows["missing/fold0/boom.html"] and "none (failed)" in rows["missing/fold0/boom.html"]


def test_render_html_names_a_missing_notebook(tmp_path):
    from src.notebooks.report import render_html

    with pytest.raises(FileNotFoundError, match="nothing.ipynb: no executed notebook"):
        render_html(tmp_path / "nothing.ipynb")


def _audit_frame() -> pd.DataFrame:
    hi = "राम का जन्म अयोध्या में हुआ। मूल्य ₹500 था ₹ ₹ ☃"
    return pd.DataFrame({"id": ["a", "b", "c"], "context": [hi, "சென்னை நகரம்.", "சென்னை பெரிய நகரம்."],
                         "question": ["राम का जन्म कहाँ?", "எந்த நகரம்?", "எது பெரிய?"],
                         "answer_text": ["अयोध्या", "சென்னை", "பெரி"], "answer_start": [12, 0, 7],
                         "language": ["hindi", "tamil", "tamil"]})


def test_unknown_token_rate_counts_unknown_tokens(tiny_dirs):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_dirs["tiny-xlmr"])
    df = _audit_frame()
    assert tokenizer_report(df[df.language == "tamil"], tok, 64, 16)["unknown_token_rate"] == 0.0
    ids = tok(df.loc[0, "context"], add_special_tokens=False)["input_ids"]
    unknown = [t for t in tok.convert_ids_to_tokens(ids) if t == tok.unk_token]
    assert len(unknown) >= 3        # the ₹ and ☃ the tiny vocabulary lacks
    assert tokenizer_report(df.iloc[:1], tok, 64, 16)["unknown_token_rate"] == len(unknown) / len(ids)


def test_audit_plots_show_the_table(tiny_dirs):
    """Notebook 02's figure: one box per tokenizer x language of tokens per context, and bars whose heights are
    the table's misaligned-edge, glued-punctuation and unknown-token shares."""
    import matplotlib
    matplotlib.use("agg")
    from transformers import AutoTokenizer

    from src.train.tokenizer_report import AUDIT_BARS, compare_tokenizers, context_token_counts, plot_audit

    toks = {n: AutoTokenizer.from_pretrained(tiny_dirs[n]) for n in ("tiny-bert", "tiny-xlmr")}
    df = _audit_frame()
    table = compare_tokenizers(df, toks, 64, 16)
    counts = context_token_counts(df, toks)
    assert len(counts) == 2 * 3 and counts.groupby("tokenizer")["tokens"].sum().min() > 10
    fig = plot_audit(table, counts)
    box, *bars = fig.axes[:4]
    assert [t.get_text() for t in box.get_xticklabels()] == ["tiny-bert\nhindi", "tiny-bert\ntamil",
                                                              "tiny-xlmr\nhindi", "tiny-xlmr\ntamil"]
    assert [ax.get_title() for ax in bars] == [title for title, _, _ in AUDIT_BARS]
    for ax, (_, col, f) in zip(bars, AUDIT_BARS, strict=True):
        heights = sorted(round(p.get_height(), 6) for p in ax.patches)
        expected = sorted(round(float(f(table.loc[(t, lang), col])), 6)
                          for t in toks for lang in ("hindi", "tamil"))
        assert heights == expected, ax.get_title()
    # the Tamil answer "பெரி" cuts a word: some tokenizer misaligns it, so the panel is not all zeros
    assert max(p.get_height() for p in bars[0].patches) > 0
