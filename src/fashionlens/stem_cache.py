"""The cache of frozen-stem outputs that the detector and the parser train on: each training photo's augmented
views run through the frozen stem once, in ONNX Runtime, into a float16 array on disk, with each task's targets
beside it. Filling it resumes where it stopped (`<name>.json` counts the photos done); a cache of other data or
settings (another `key`) is made again."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Generic, Iterator, Protocol, TypeVar

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

from fashionlens.atomic import write_text_atomic
from fashionlens.data.samples import SkippedInput
from fashionlens.decoding import ImageFileDataset
from fashionlens.progress import progress_bar
from fashionlens.pyramid import PyramidBackbone, StemOnly, as_channels_last
from fashionlens.runtime import OnnxRunner, export_onnx

# A task's views of one photo: (its index in the list cached, the decoded photo) -> one (normalised CHW float32
# array, target) per view. It may raise for a photo it cannot use (the photo is then skipped and reported).
ViewMaker = Callable[[int, Image.Image], list[tuple[np.ndarray, Any]]]


class ViewTargets(Protocol):
    """Where a task keeps the targets of every cached view (boxes, label maps), resumed with the stems."""

    def files(self, folder: Path, name: str) -> list[Path]:
        """The files it keeps beside the stems (a resume needs them all)."""

    def open(self, folder: Path, name: str, rows: int, meta: dict, fresh: bool) -> None:
        """Make room for `rows` views (`fresh`), or reopen what `meta` (the cache's JSON) says was done."""

    def put(self, rows: slice, targets: list | None) -> None:
        """The targets of one photo's views; None for a photo that could not be read."""

    def flush(self) -> None:
        """Everything put so far is on disk or in `meta`, before `meta` is written."""


T = TypeVar("T", bound=ViewTargets)


@dataclass
class StemCache(Generic[T]):
    stems: np.ndarray  # [n_images * views, C, h, w] float16 (memory-mapped)
    ok: np.ndarray  # bool per image: False where the image could not be used
    views: int
    targets: T


class _ViewDataset(ImageFileDataset):
    def __init__(self, paths: list[Path], make_views: ViewMaker, offset: int):
        super().__init__(paths[offset:])
        self.make_views, self.offset = make_views, offset

    def prepare(self, i: int, data: bytes, image):
        return self.make_views(self.offset + i, image)


def build_stem_cache(backbone: PyramidBackbone, paths: list[Path], make_views: ViewMaker, views: int,
                     input_size: tuple[int, int], targets: T, folder: Path, key: str, failures: list[SkippedInput],
                     progress: bool, name: str) -> StemCache[T]:
    """Compute (or resume computing) the stems and targets of `views` views of every photo in `paths`."""
    folder.mkdir(parents=True, exist_ok=True)
    meta_path, stems_path = folder / f"{name}.json", folder / f"{name}-stems.npy"
    with torch.no_grad():
        shape = tuple(backbone.stem(torch.zeros(1, 3, *input_size)).shape[1:])
    n = len(paths) * views
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    kept = [stems_path, *targets.files(folder, name)]
    fresh = meta.get("key") != key or not all(p.is_file() for p in kept)
    if fresh:
        meta = {"key": key, "done": 0, "ok": []}
        stems = np.lib.format.open_memmap(stems_path, mode="w+", dtype=np.float16, shape=(n, *shape))
    else:
        stems = np.load(stems_path, mmap_mode="r+", allow_pickle=False)
    targets.open(folder, name, n, meta, fresh)
    done = meta["done"]
    if done < len(paths):
        onnx_path = folder / f"stem-{key}.onnx"
        if not onnx_path.exists():
            export_onnx(StemOnly(backbone), input_size, onnx_path, ["stem"])
        runner = OnnxRunner(onnx_path)
        todo = len(paths) - done
        loader = DataLoader(_ViewDataset(paths, make_views, done), batch_size=None, num_workers=1 if todo > 8 else 0)
        with progress_bar(f"caching {name} views", todo, progress) as advance:
            for j, out, reason in loader:
                i = done + j
                rows = slice(i * views, (i + 1) * views)
                if out is None:
                    failures.append(SkippedInput(str(paths[i]), reason))
                    targets.put(rows, None)
                    meta["ok"].append(False)
                else:
                    stems[rows] = runner(np.stack([np.asarray(o[0]) for o in out]))["stem"]
                    targets.put(rows, [o[1] for o in out])
                    meta["ok"].append(True)
                meta["done"] = i + 1
                if meta["done"] % 50 == 0 or meta["done"] == len(paths):
                    stems.flush()
                    targets.flush()
                    write_text_atomic(meta_path, json.dumps(meta))
                advance(1)
    return StemCache(stems, np.asarray(meta["ok"], bool), views, targets)


def first_view_batches(cache: StemCache, batch_size: int = 16) -> Iterator[tuple[list[int], torch.Tensor]]:
    """View 0 (the photo itself) of every cached photo, `batch_size` at a time: (cache rows, stems)."""
    rows = list(range(0, len(cache.ok) * cache.views, cache.views))
    for start in range(0, len(rows), batch_size):
        batch = rows[start:start + batch_size]
        yield batch, as_channels_last(cache.stems[batch])
