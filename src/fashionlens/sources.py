"""Which images a command names, and reading or downloading them: folders, files, globs, URLs, `.txt` lists and
CSV/TSV tables whose other columns are attributes. Below the catalogue and the pipeline, which both read
sources (`ingest`, `analyze --engine ray`).

Sources are handled in chunks, so a 100,000-row table never has more than two chunks of files in flight: a
thread pool reads (or downloads into a temporary folder) and hashes the next chunk while the current one is
analysed.
"""

from __future__ import annotations

import csv
import os
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from fashionlens.data.folders import class_folder_labels
from fashionlens.data.samples import SkippedInput
from fashionlens.fetch import FetchError, FetchPolicy, fetch_bytes, is_url
from fashionlens.fingerprints import sha256_bytes
from fashionlens.images import find_files

CHUNK = 512  # sources read or downloaded ahead of the analysis, at most two chunks at a time
TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
LIST_SUFFIX = ".txt"


def source_name(source: str | Path) -> str:
    """What an item's `source` says: a URL as given, a file as an absolute path (so a rerun from another folder
    recognises it)."""
    text = str(source)
    return text if isinstance(source, str) and is_url(text) else os.path.abspath(text)


@dataclass
class Sources:
    """Sources in order (each once), the attributes a table gave each, rows that name no image, and arguments
    that match nothing."""

    sources: list[str] = field(default_factory=list)
    attributes: list[dict[str, str]] = field(default_factory=list)
    skipped: list[SkippedInput] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def add(self, source: str, attributes: dict[str, str], positions: dict[str, int]) -> None:
        """A source named twice (a folder and a table row) is one source with the attributes of both."""
        if source in positions:
            self.attributes[positions[source]].update(attributes)
            return
        positions[source] = len(self.sources)
        self.sources.append(source)
        self.attributes.append(dict(attributes))


def expand_sources(arguments: list[str], image_column: str = "image", folder_label: str | None = "category") -> Sources:
    """URLs; folders (recursive), image files and globs; `.txt` lists of paths or URLs, one a line; CSV/TSV
    tables whose `image_column` holds paths (absolute or relative to the table) or URLs and whose other columns
    are attributes. A folder of class folders (as `train` reads them) gives each image its folder's name as the
    attribute `folder_label` (None: not). Raises ValueError for a table without that column."""
    found, positions = Sources(), {}
    for argument in arguments:
        path = Path(argument)
        classes = class_folder_labels(path) if folder_label and path.is_dir() else None
        if classes:
            for file, name in sorted(classes.items()):
                found.add(source_name(file), {folder_label: name}, positions)
        elif is_url(argument):
            found.add(argument, {}, positions)
        elif path.is_file() and (path.suffix.lower() in TABLE_SUFFIXES or path.suffix.lower() == LIST_SUFFIX):
            rows = read_table_sources(path, image_column) if path.suffix.lower() in TABLE_SUFFIXES else read_list(path)
            for source, attributes in rows[0]:
                found.add(source, attributes, positions)
            found.skipped += rows[1]
        else:
            files, missing = find_files([argument])
            for file in files:
                found.add(source_name(file), {}, positions)
            found.missing += missing
    return found


def _listed_source(value: str, folder: Path) -> str:
    return value if is_url(value) else source_name(folder / value)  # an absolute `value` replaces `folder`


def read_table_sources(table: Path, image_column: str) -> tuple[list[tuple[str, dict[str, str]]], list[SkippedInput]]:
    """(source, {column: value} of every other non-empty cell) per row, and rows without an image."""
    rows: list[tuple[str, dict[str, str]]] = []
    skipped: list[SkippedInput] = []
    with open(table, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh, delimiter=TABLE_SUFFIXES[table.suffix.lower()])
        columns = reader.fieldnames or []
        if image_column not in columns:
            raise ValueError(f"{table}: no image column {image_column!r} (columns: {', '.join(columns) or 'none'}); "
                             f"name it with --image-column")
        for row in reader:
            value = (row.get(image_column) or "").strip()
            if not value:
                skipped.append(SkippedInput(f"{table}:{reader.line_num}", f"empty {image_column!r}"))
                continue
            attributes = {k: v.strip() for k, v in row.items()
                          if k not in (image_column, None) and isinstance(v, str) and v.strip()}
            rows.append((_listed_source(value, table.parent), attributes))
    return rows, skipped


def read_list(listing: Path) -> tuple[list[tuple[str, dict[str, str]]], list[SkippedInput]]:
    """One path (relative to the list) or URL a line; blank lines and `#` comments are ignored."""
    lines = (line.strip() for line in listing.read_text(encoding="utf-8-sig").splitlines())
    return [(_listed_source(line, listing.parent), {}) for line in lines if line and not line.startswith("#")], []


@dataclass
class PreparedChunk:
    """A chunk of sources, read or downloaded and hashed: positions index the caller's list of sources."""

    positions: list[int]  # the readable ones
    files: list[Path]  # the file itself, or its download in the temporary folder
    sha256: list[str]
    stored: dict[int, int]  # position -> item id, for sources already stored (by their exact string)
    failed: list[SkippedInput]


def read_source(source: str, spool: Path, name: str, policy: FetchPolicy | None) -> tuple[Path, str] | SkippedInput:
    """(the file, or its download into `spool` as `name`; its sha256), or why it cannot be read."""
    if is_url(source):
        try:
            data = fetch_bytes(source, policy)
        except FetchError as exc:
            return SkippedInput(source, exc.reason)
        path = spool / name
        path.write_bytes(data)
    else:
        path = Path(source)
        try:
            data = path.read_bytes()
        except OSError as exc:
            return SkippedInput(source, f"cannot read ({exc.strerror or exc})")
    return path, sha256_bytes(data)


def prepared_chunks(
    sources: list[str], known_sources: Callable[[list[str]], dict[str, int]], *, workers: int = 8,
    policy: FetchPolicy | None = None, chunk: int = CHUNK, stop: threading.Event | None = None,
) -> Iterator[PreparedChunk]:
    """Chunks of `sources` with each file read, or URL downloaded, and hashed on `workers` threads; the next
    chunk is fetched while the caller analyses this one. Sources `known_sources` finds are neither read nor
    downloaded. A chunk's downloads are deleted when the caller asks for the next chunk. Default policy:
    `FetchPolicy.from_env()`. When `stop` is set, ends without waiting for the chunk's remaining downloads."""
    policy = policy or FetchPolicy.from_env()
    with tempfile.TemporaryDirectory(prefix="fashionlens-ingest-") as spool:
        pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="fashionlens-fetch")

        def submit(start: int) -> tuple[dict[int, int], list[int], list[Future]]:
            stored_ids = known_sources(sources[start:start + chunk])
            stored = {i: stored_ids[s] for i, s in enumerate(sources[start:start + chunk], start) if s in stored_ids}
            todo = [i for i in range(start, min(start + chunk, len(sources))) if i not in stored]
            return stored, todo, [pool.submit(read_source, sources[i], Path(spool), str(i), policy) for i in todo]

        try:
            pending = submit(0) if sources else None
            for start in range(chunk, len(sources) + chunk, chunk):
                stored, todo, futures = pending
                results = []
                for future in futures:
                    while (result := _result(future, stop)) is None:
                        if stop.is_set():
                            return
                    results.append(result)
                pending = submit(start) if start < len(sources) else None
                ok = [(i, r) for i, r in zip(todo, results, strict=True) if not isinstance(r, SkippedInput)]
                yield PreparedChunk([i for i, _ in ok], [r[0] for _, r in ok], [r[1] for _, r in ok], stored,
                                    [r for r in results if isinstance(r, SkippedInput)])
                for i, (path, _) in ok:
                    if is_url(sources[i]):
                        path.unlink(missing_ok=True)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # before the folder goes: a download may be writing


def _result(future: Future, stop: threading.Event | None):
    """The future's result, or None after a quarter second when there is a `stop` to look at."""
    try:
        return future.result(timeout=None if stop is None else 0.25)
    except TimeoutError:
        return None
