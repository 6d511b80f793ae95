"""Reading and decoding image files beside the model: a few threads prepare the next batches while the caller
runs the network (Pillow's decoders and resizes, and ONNX Runtime, release the GIL). No PyTorch is needed."""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

from fashionlens.data.samples import failure_reason
from fashionlens.images import read_image_file


class ImageFileDataset:
    """Reads and decodes one file per item and hands it to `prepare`; items are (index, prepared, None), or
    (index, None, reason) for an unusable file, so a worker never raises and a batch never dies on one image."""

    def __init__(self, paths: list[Path], min_size: int | None = None):
        self.paths, self.min_size = paths, min_size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        try:
            data, image = read_image_file(self.paths[i], self.min_size)
            return i, self.prepare(i, data, image), None
        except Exception as exc:  # an unreadable file, or one `prepare` fails on
            return i, None, failure_reason(exc, "preparation")

    def prepare(self, i: int, data: bytes, image):
        raise NotImplementedError


def item_batches(dataset, batch_size: int, workers: int = 1) -> Iterator[list]:
    """The dataset's items in order, `batch_size` at a time; with `workers`, prepared by that many threads, at
    most two batches ahead (memory stays bounded however long the list). Small lists run in this thread."""
    n = len(dataset)
    if workers <= 0 or n <= 2 * batch_size:
        for start in range(0, n, batch_size):
            yield [dataset[i] for i in range(start, min(n, start + batch_size))]
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="decode") as pool:
        pending: deque = deque()
        submitted = 0
        for start in range(0, n, batch_size):
            while submitted < min(n, start + 3 * batch_size):
                pending.append(pool.submit(dataset.__getitem__, submitted))
                submitted += 1
            yield [pending.popleft().result() for _ in range(min(batch_size, n - start))]
