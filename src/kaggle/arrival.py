"""What an arrived file must be: its size, checksum, the layout its loader expects and its record count, checked
against its catalogue entry (`src.kaggle.sources.FileSpec`) before a kernel reads it.

`src.kaggle.fetch` (downloads, attached data) and `src.kaggle.data_kernels` (files a data kernel wrote) call
`check_file`; anything that is not what it should be raises `SourceError` naming the source.
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path

from src.kaggle.sources import FileSpec


class SourceError(RuntimeError):
    """A source that did not arrive as it should; the message names it, where it came from and what is wrong."""


def where_from(spec: FileSpec) -> str:
    """How an error names a source: its name and where it came from."""
    return f"source {spec.name!r} ({spec.url or f'competition {spec.competition}, {spec.file}'})"


def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


def count_jsonl(path: Path, fields: tuple[str, ...], where: str) -> int:
    """Records of a JSON-lines file (gzip or plain): the first must have `fields`, the last must be whole JSON (a cut
    file ends mid-record), and a gzip stream must end properly (a cut download does not)."""
    n, last = 0, ""
    try:
        with _open_text(path) as f:
            for line in f:
                if not line.strip():
                    continue
                n += 1
                if n == 1:
                    first = json.loads(line)
                    missing = [k for k in fields if not isinstance(first, dict) or k not in first]
                    if missing:
                        keys = sorted(first)[:12] if isinstance(first, dict) else type(first).__name__
                        raise SourceError(f"{where}: not the expected layout: record 1 lacks {', '.join(missing)} "
                                          f"(has {keys})")
                last = line
    except (EOFError, gzip.BadGzipFile, OSError) as e:
        raise SourceError(f"{where}: {path.name} is cut short or not gzip ({e}) after {n:,} records") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SourceError(f"{where}: {path.name}: record {n} is not JSON ({e})") from None
    try:
        json.loads(last) if last else None
    except json.JSONDecodeError:
        raise SourceError(f"{where}: {path.name}: its last record (line {n:,}) is cut short") from None
    return n


def loader_rows(kind: str, path: Path, language: str | None, where: str) -> tuple[int, int]:
    """(rows, dropped records) as the recipe's loader reads the file; its layout errors name the source."""
    from src.data.external import load_source
    from src.data.load import DataError

    try:
        if kind == "nq":
            from src.data.nq import load_nq_subset

            df = load_nq_subset(path)
        else:
            df = load_source(kind, path, **({"language": language} if language else {}),
                             **({"on_error": "drop"} if kind != "chaii" else {}))
    except (DataError, ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise SourceError(f"{where}: not the layout the {kind} loader reads: {e}") from None
    return len(df), int(df.attrs.get("n_dropped", 0))


def check_file(spec: FileSpec, path: Path) -> dict:
    """Check an arrived file against its spec; returns what was measured. Raises `SourceError` naming the source."""
    where = where_from(spec)
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"{where}: {path} is missing")
    size = path.stat().st_size
    if spec.bytes is not None and size != spec.bytes:
        what = "cut short" if size < spec.bytes else "larger than published"
        raise SourceError(f"{where}: {what}: {size:,} bytes, expected {spec.bytes:,}")
    got = {"file": path.name, "bytes": size}
    if spec.check:  # the source's own arrival check (src.data.checks): its published size, checksum, layout, count
        from src.data.checks import SourceCheckError, check_source

        try:
            got.update({k: v for k, v in check_source(spec.check, path).items() if k not in ("path", "source")})
        except (SourceCheckError, ValueError) as e:
            raise SourceError(f"{where}: {e}") from None
    if spec.sha256:
        from src.data.checks import sha256_of

        got["sha256"] = sha256_of(path)
        if got["sha256"] != spec.sha256:
            raise SourceError(f"{where}: sha256 {got['sha256']} differs from the published {spec.sha256}")
    if spec.kind == "jsonl":
        got["records"] = count_jsonl(path, spec.fields, where)
    elif spec.kind == "csv":
        import pandas as pd

        try:
            df = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as e:
            raise SourceError(f"{where}: not CSV: {e}") from None
        missing = [c for c in spec.fields if c not in df.columns]
        if missing:
            raise SourceError(f"{where}: not the expected layout: no column(s) {', '.join(missing)} "
                              f"(has {', '.join(df.columns[:12])})")
        got["records"] = len(df)
    elif spec.kind:
        rows, dropped = loader_rows(spec.kind, path, spec.language, where)
        got.update(rows=rows, dropped=dropped, records=rows + dropped)
    if spec.records is not None and got.get("records") != spec.records:
        raise SourceError(f"{where}: {got.get('records'):,} records, expected {spec.records:,} (cut short, or "
                          "another version of the file)")
    return got
