"""Getting images into the catalogue: which sources a command names, reading or downloading them, and everything
the catalogue stores about an image from one decode (sha256, embedding, predicted labels, colours).

Sources are handled in chunks, so a 100,000-row table never has more than two chunks of files in flight: a
thread pool reads (or downloads into a temporary folder) and hashes the next chunk while the current one is
analysed. Analysis: a worker process reads, hashes and decodes each image, preprocesses it for the backbone and
names its colours; the main process runs the backbone once per batch (ONNX Runtime) and derives both the
embedding and the classifier's labels from those same features when the classifier sits on the same backbone.
The steps are separate functions (`read_source`, `Decoder`, `Analyser.analyse`, `AnalysedBatch.items`) so the
Ray engine (`ray_ingest.py`) runs these same steps in its tasks and actors.
"""

from __future__ import annotations

import csv
import os
import signal
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader

from fashionlens.catalog.store import NewItem
from fashionlens.attributes import read_attributes
from fashionlens.classify.model import mirrored
from fashionlens.classify.model_io import LoadedModel
from fashionlens.data.folders import class_folder_labels
from fashionlens.data.samples import SkippedInput
from fashionlens.embeddings import Embedder
from fashionlens.features import ImageFileDataset, backbone_key, backbone_runner
from fashionlens.fetch import FetchError, FetchPolicy, fetch_bytes, is_url
from fashionlens.fingerprints import sha256_bytes
from fashionlens.images import find_files
from fashionlens.preprocess import PreprocessConfig

CHUNK = 512  # sources read or downloaded ahead of the analysis, at most two chunks at a time
TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
LIST_SUFFIX = ".txt"


# which sources

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


# reading and downloading

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
                ok = [(i, r) for i, r in zip(todo, results) if not isinstance(r, SkippedInput)]
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


# analysis

def image_colors(image) -> list[dict]:
    """The garment's named colours; the one call site of `fashionlens.colors`."""
    from fashionlens.colors import named_colors

    return [c.to_json() for c in named_colors(image)]


@dataclass
class AnalysedBatch:
    indices: list[int]  # positions in the list of paths given to `Analyser.run`
    sha256: list[str]
    embeddings: np.ndarray  # float32 [n, dim], unit length
    predicted: list[dict[str, dict]]  # per image: {task: {"value", "score"}}
    colors: list[list[dict]]

    def items(self, sources: list[str], attributes: list[dict[str, str]]) -> list[NewItem]:
        """What the store keeps of each image; `sources` and `attributes` are indexed like `indices`."""
        return [NewItem(sha, sources[i], vector, attributes[i], predicted, cols)
                for i, sha, vector, predicted, cols in zip(self.indices, self.sha256, self.embeddings,
                                                          self.predicted, self.colors)]


@dataclass(frozen=True)
class Decoder:
    """How each image is decoded for the analysis: configurations only, no model, so it ships to other
    processes (the DataLoader's workers, Ray's tasks) cheaply."""

    preprocess: tuple[PreprocessConfig, ...]  # one per backbone, in `Analyser.runners` order
    colors: bool

    def dataset(self, paths: list[Path]) -> _DecodeOnce:
        return _DecodeOnce(paths, [p.eval_transform() for p in self.preprocess],
                           max(p.short_side for p in self.preprocess), self.colors)


class _DecodeOnce(ImageFileDataset):
    """Everything the catalogue needs from one decode: hash, each backbone's input, colours."""

    def __init__(self, paths: list[Path], transforms: list, min_size: int, colors: bool):
        super().__init__(paths, min_size)
        self.transforms, self.colors = transforms, colors

    def prepare(self, i: int, data: bytes, image):
        return sha256_bytes(data), [t(image) for t in self.transforms], image_colors(image) if self.colors else []


def _as_list(batch):
    return batch


def _worker_init(_worker_id: int) -> None:
    """Ctrl-C is the main process's to handle (it stops after the current batch); a worker dying of it first
    would fail that batch. One BLAS thread: the worker shares the cores with the backbone's threads, and the
    colours' small matrix products cost 2.5x the CPU time when BLAS spreads them over every core."""
    from threadpoolctl import threadpool_limits

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threadpool_limits(1)


class Analyser:
    """The backbone sessions, transforms and attribute models, made once for every chunk of a run (or per Ray
    actor). `threads`: ONNX Runtime's threads (default: every core)."""

    def __init__(self, embedder: Embedder, models: list[LoadedModel] = (), *, colors: bool = True,
                 batch_size: int = 32, workers: int = 1, threads: int | None = None, top_k: int = 3):
        self.embedder, self.models = embedder, list(models)
        self.batch_size, self.workers, self.top_k = batch_size, workers, top_k
        backbones = _backbones(embedder, self.models)
        self.keys = [backbone_key(b) for b in backbones]
        self.runners = [backbone_runner(b, threads=threads) for b in backbones]
        self.mirror_keys = {backbone_key(m.classifier.backbone_info) for m in self.models if m.classifier.tta}
        self.decoder = self.decoder_for(embedder, self.models, colors)

    @staticmethod
    def decoder_for(embedder: Embedder, models: list[LoadedModel], colors: bool) -> Decoder:
        """The decoding these models need, without loading them."""
        return Decoder(tuple(b.preprocess for b in _backbones(embedder, models)), colors)

    def run(self, paths: list[Path], failures: list[SkippedInput], names: list[str] | None = None,
            advance: Callable[[int], None] = lambda n: None) -> Iterator[AnalysedBatch]:
        """Batches of analysed images; unreadable ones go to `failures` (under their `names`, default the path)
        and never stop the run. `advance(n)` after each batch, failures included."""
        names = names or [str(p) for p in paths]
        parallel = len(paths) > 2 * self.batch_size
        loader = DataLoader(self.decoder.dataset(paths), batch_size=self.batch_size, collate_fn=_as_list,
                            num_workers=self.workers if parallel else 0, worker_init_fn=_worker_init)
        for batch in loader:
            failures += [SkippedInput(names[i], reason) for i, _, reason in batch if reason is not None]
            good = [(i, item) for i, item, reason in batch if reason is None]
            if good:
                yield self.analyse([i for i, _ in good], [item for _, item in good])
            advance(len(batch))

    def analyse(self, indices: list[int], decoded: list[tuple]) -> AnalysedBatch:
        """One batch of decoded images (`Decoder`'s (sha256, inputs, colours) per image) through the backbones,
        then the attribute models as the pipeline reads them (`fashionlens.attributes`)."""
        batches = {key: torch.stack([item[1][j] for item in decoded]) for j, key in enumerate(self.keys)}
        features = {key: runner(batches[key].numpy())["features"] for key, runner in zip(self.keys, self.runners,
                                                                                          strict=True)}
        mirrors = {key: self.runners[self.keys.index(key)](mirrored(batches[key]).numpy())["features"]
                   for key in self.mirror_keys}
        read = read_attributes(self.models, features, mirrors, [None] * len(decoded), self.top_k)
        return AnalysedBatch(indices, [item[0] for item in decoded], self.embedder.from_features(features[self.keys[0]]),
                             [a.predicted for a in read], [item[2] for item in decoded])


def _backbones(embedder: Embedder, models: list[LoadedModel]) -> list:
    """The embedder's backbone first, then each other backbone the attribute models sit on."""
    backbones = {backbone_key(embedder.backbone): embedder.backbone}
    for model in models:
        backbones.setdefault(backbone_key(model.classifier.backbone_info), model.classifier.backbone_info)
    return list(backbones.values())
