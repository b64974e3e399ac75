"""Self-contained HTML reports of executed notebooks (nbconvert), and an index page per run folder.

    python -m src.notebooks.report runs/batch      # render every executed notebook under it, then index.html

A report sits beside its notebook (`03_recipe_training.ipynb` -> `03_recipe_training.html`): images are embedded
and no script is loaded from the web, so it opens offline and as a Kaggle output file.
"""
from __future__ import annotations

import argparse
import html
import json
import os
from collections.abc import Mapping
from pathlib import Path

from src.common.io import write_text

INDEX = "index.html"
# The lab template without its two CDN scripts: require.js (legacy JS outputs) and MathJax (our notebooks have no
# math); what is left is inline CSS and the outputs, with images as data URIs.
_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
"""


def render_html(executed_ipynb: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Render an executed notebook to one self-contained HTML file (default: beside it, `.html`); returns its path."""
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    src = Path(executed_ipynb)
    if not src.is_file():
        raise FileNotFoundError(f"{src}: no executed notebook to render")
    exporter = HTMLExporter(extra_loaders=[DictLoader({"chaii_report.html.j2": _TEMPLATE})],
                            template_file="chaii_report.html.j2", embed_images=True)
    body, _ = exporter.from_filename(str(src))
    return write_text(body, out or src.with_suffix(".html"))


def try_render(executed_ipynb: str | os.PathLike) -> Path | None:
    """`render_html`, but a report that cannot be rendered is reported, not raised: a batch of training runs must
    not fail over its HTML."""
    try:
        return render_html(executed_ipynb)
    except Exception as e:  # nbconvert raises many kinds (bad JSON, template errors, missing file)
        print(f"   report not rendered for {executed_ipynb}: {type(e).__name__}: {e}", flush=True)
        return None


def key_metric(executed_ipynb: str | os.PathLike) -> float | None:
    """Validation Jaccard of the run the notebook wrote (`metrics.json` beside it, as notebook 03 writes), else None."""
    path = Path(executed_ipynb).with_name("metrics.json")
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8")).get("metrics", {}).get("jaccard_all")


def notebook_status(executed_ipynb: str | os.PathLike) -> tuple[str, float | None]:
    """("ok" | "failed" | "not run by papermill", seconds) from the metadata papermill records in the notebook."""
    meta = json.loads(Path(executed_ipynb).read_text(encoding="utf-8")).get("metadata", {}).get("papermill")
    if not meta:
        return "not run by papermill", None
    return ("failed" if meta.get("exception") else "ok"), meta.get("duration")


def executed_notebooks(run_folder: str | os.PathLike) -> list[Path]:
    """Executed notebooks under `run_folder`, in path order (hidden folders such as checkpoints left out)."""
    root = Path(run_folder)
    return sorted(p for p in root.rglob("*.ipynb")
                  if not any(part.startswith(".") for part in p.relative_to(root).parts))


def _format(value) -> str:
    if value is None or value == "":
        return ""
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def write_index(run_folder: str | os.PathLike, metrics: Mapping | None = None, title: str | None = None) -> Path:
    """`run_folder/index.html`: one row per executed notebook under it, linking its HTML report, with its status,
    time and key metric.

    Args:
        run_folder: the folder of a batch or demo run (`runs/batch`).
        metrics: key metric per executed notebook (path, absolute or relative to `run_folder`); notebooks not in
            it show `key_metric` (metrics.json beside them).
        title: page heading; default the folder's name.
    """
    root = Path(run_folder).resolve()
    given = {(root / Path(k)).resolve(): v for k, v in (metrics or {}).items()}
    rows = []
    for nb in executed_notebooks(root):
        rel = nb.relative_to(root)
        report = nb.with_suffix(".html")
        status, seconds = notebook_status(nb)
        metric = given.get(nb.resolve(), key_metric(nb))
        link = (f'<a href="{html.escape(rel.with_suffix(".html").as_posix())}">{html.escape(rel.as_posix())}</a>'
                if report.exists() else f"{html.escape(rel.as_posix())} (no report)")
        rows.append(f"<tr><td>{link}</td><td class='{status.split()[0]}'>{html.escape(status)}</td>"
                    f"<td>{'' if seconds is None else f'{seconds:.0f}'}</td>"
                    f"<td>{html.escape(_format(metric))}</td></tr>")
    heading = html.escape(title or root.name)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{heading}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 10px;text-align:left}}.failed{{color:#b00;font-weight:bold}}</style>
</head><body><h1>{heading}</h1>
<p>{len(rows)} executed notebook(s); key metric: validation Jaccard (all languages) where the run has one.</p>
<table><tr><th>report</th><th>status</th><th>time (s)</th><th>key metric</th></tr>
{chr(10).join(rows)}
</table></body></html>
"""
    return write_text(page, root / INDEX)


def report_run_folder(run_folder: str | os.PathLike, metrics: Mapping | None = None, force: bool = False) -> Path:
    """Render every executed notebook under `run_folder` whose report is missing or older (all with `force`),
    then write its index page; returns the index path. What `make e2e` and `make batch` call for a run folder."""
    for nb in executed_notebooks(run_folder):
        report = nb.with_suffix(".html")
        if force or not report.exists() or report.stat().st_mtime < nb.stat().st_mtime:
            try_render(nb)
    return write_index(run_folder, metrics)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="HTML reports of the executed notebooks under a run folder + index.html")
    ap.add_argument("run_folder")
    ap.add_argument("--force", action="store_true", help="render every report again")
    args = ap.parse_args(argv)
    print(f"index written: {report_run_folder(args.run_folder, force=args.force)}")


if __name__ == "__main__":
    main()
