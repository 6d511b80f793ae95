"""Running the parser on photos: letterbox, the network on ONNX Runtime (class and confidence per pixel come out
of the graph), and the unpadded part kept at the parser's own grid: garment masks are worked out there (a few
hundred pixels a side, whatever the photo's size) and only their results are brought to the photo's pixels.

The ONNX graph takes any height and width (a multiple of 32): a photo of one garment is parsed at a smaller size
for its colours (`whole_garment_pixels`). It is the folder's own export when it matches the weights and sizes,
otherwise one made on first use and kept in the cache, keyed by the weights hash; `runtime="torch"` is the eager
reference.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from fashionlens.defaults import default_parser_dir
from fashionlens.letterbox import letterbox
from fashionlens.model_folder import onnx_file_for, write_export_record
from fashionlens.parse.labels import NOT_GARMENT
from fashionlens.parse.model_io import LoadedParser, load_parser
from fashionlens.preprocess import normalized
from fashionlens.runtime import OnnxRunner, export_onnx

RUNTIMES = ("onnx", "torch")
OUTPUTS = ["labels", "confidence"]
ANY_SIZE = {"any_size": True}  # what the export record of a graph that takes any height and width says


@dataclass
class ParsedImage:
    """One photo parsed: a class index per cell of the parser's grid (the photo scaled to fit its input), the
    parser's confidence in it (0..1), and the photo's own size to bring grid masks back to."""

    labels: np.ndarray  # uint8 [h, w], index into `classes`
    confidence: np.ndarray  # float32 [h, w]
    classes: list[str]
    size: tuple[int, int] | None = None  # the photo's (width, height); None: the grid is the photo

    @property
    def photo_size(self) -> tuple[int, int]:
        return tuple(self.size) if self.size else (self.labels.shape[1], self.labels.shape[0])

    @property
    def scale(self) -> tuple[float, float]:
        """Grid cells per photo pixel, (x, y)."""
        width, height = self.photo_size
        return self.labels.shape[1] / width, self.labels.shape[0] / height

    def mask_of(self, names) -> np.ndarray:
        """Grid cells whose class is one of `names`."""
        return np.isin(self.labels, [self.classes.index(n) for n in names if n in self.classes])

    def to_photo(self, grid: np.ndarray) -> np.ndarray:
        """A grid array (labels or a bool mask) at the photo's pixels, by nearest neighbour."""
        if self.photo_size == (grid.shape[1], grid.shape[0]):
            return grid
        out = Image.fromarray(grid.astype(np.uint8)).resize(self.photo_size, Image.Resampling.NEAREST)
        return np.asarray(out).astype(grid.dtype, copy=False)

    def photo_labels(self) -> np.ndarray:
        """A class index per pixel of the photo."""
        return self.to_photo(self.labels)


def _labelled(model):
    """The parser with its argmax and softmax confidence inside the graph: far less to copy out than logits."""
    import torch

    class Labelled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, images):
            confidence, labels = self.model(images).softmax(1).max(1)
            return labels.to(torch.uint8), confidence

    return Labelled().eval()


def export_parser(model: LoadedParser, onnx_file: str | Path | None = None, *, check: bool = True) -> Path:
    path = Path(onnx_file) if onnx_file else model.folder / "model.onnx"
    export_onnx(_labelled(model.model), model.config.input_size, path, OUTPUTS, any_size=True)
    record = dict(ANY_SIZE)
    if check:
        agreement = {size: parity(model, path, size)
                     for size in (tuple(model.config.input_size), whole_photo_size(model.config.input_size))}
        for (height, width), share in agreement.items():
            if share < 0.999:
                raise RuntimeError(f"{path}: ONNX labels agree with PyTorch on only {share:.4%} of pixels at "
                                   f"{height}x{width}")
        record["parity_pixel_agreement"] = min(agreement.values())
    if onnx_file is None or path.resolve().parent == model.folder.resolve():
        write_export_record(model.folder, path, model.weights_sha256, record)
    return path


def parity(model: LoadedParser, onnx_file: Path, size: tuple[int, int] | None = None, seed: int = 0) -> float:
    """Share of pixels on which ONNX Runtime and PyTorch give the same class, on random images of `size` (default:
    the parser's input size)."""
    import torch

    images = torch.randn(2, 3, *(size or model.config.input_size), generator=torch.Generator().manual_seed(seed))
    with torch.inference_mode():
        reference = _labelled(model.model)(images)[0].numpy()
    return float((OnnxRunner(onnx_file)(images.numpy())["labels"] == reference).mean())


def _onnx_for(model: LoadedParser) -> Path:
    return onnx_file_for(model.folder, model.weights_sha256, "parser", lambda path: export_parser(model, path, check=False),
                         needs=ANY_SIZE)


def whole_photo_size(input_size) -> tuple[int, int]:
    """The size a photo of one garment is parsed at for its colours: two thirds of the parser's own input, in
    multiples of 32. Telling garment from background needs less detail than telling garments apart: on CCP's
    held-out photos cropped to their largest garment, the first colour named from these pixels is that named from
    the true garment pixels within about one photo in a hundred of the full size, at about 0.4 of the cost
    (benchmarks/parse_size_colours.py: a one-pixel change of the crops moves either figure by as much)."""
    return tuple(max(32, int(side * 2 / 3) // 32 * 32) for side in input_size)


class Parser:
    """A loaded garment parser ready to run; `Parser()` is the shipped one. `threads`: ONNX Runtime's (default:
    one per core). `parse_image` letterboxes to the size it was trained at, or to another in multiples of 32."""

    def __init__(self, model: LoadedParser | str | Path | None = None, runtime: str = "onnx",
                 threads: int | None = None):
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, not {runtime!r}")
        self.model = model if isinstance(model, LoadedParser) else load_parser(model or default_parser_dir())
        self.classes = list(self.model.config.classes)
        self.input_size = tuple(self.model.config.input_size)
        self._onnx = OnnxRunner(_onnx_for(self.model), threads) if runtime == "onnx" else None

    def _run(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._onnx is not None:
            out = self._onnx(images)
            return out["labels"], out["confidence"]
        import torch

        with torch.inference_mode():
            labels, confidence = _labelled(self.model.model)(torch.from_numpy(images))
        return labels.numpy(), confidence.numpy()

    def parse_image(self, image: Image.Image, size: tuple[int, int] | None = None) -> ParsedImage:
        """Class and confidence on the parser's grid for one decoded RGB photo (`photo_labels()`: per pixel);
        `size`: (height, width) to letterbox it to, default the parser's input size."""
        if size is not None and any(side % 32 for side in size):
            raise ValueError(f"the parser's size must be multiples of 32 (its coarsest grid), not {size[0]}x{size[1]}")
        boxed, scale = letterbox(image, size or self.input_size)
        pre = self.model.preprocess
        labels, confidence = self._run(normalized(boxed, pre.mean, pre.std)[None])
        h, w = max(1, round(image.height * scale)), max(1, round(image.width * scale))
        return ParsedImage(np.ascontiguousarray(labels[0, :h, :w]), np.ascontiguousarray(confidence[0, :h, :w]),
                           self.classes, image.size)


def person_shares(parsed: ParsedImage) -> tuple[float, float]:
    """(skin and hair as a share of all the parser sees in front of the background, hair as a share of the photo):
    a product shot has next to none of either, whatever the frame holds; a whole person, even small in a street
    photo, is 7% or more of the first, and shows hair."""
    seen = parsed.labels != parsed.classes.index("null") if "null" in parsed.classes else np.ones_like(parsed.labels, bool)
    person = parsed.mask_of(("skin", "hair")).sum() / max(int(seen.sum()), 1)
    return float(person), float(parsed.mask_of(("hair",)).mean())


def garment_pixels(parsed: ParsedImage) -> np.ndarray | None:
    """A photo of one garment: every pixel the parser does not call background, skin or hair, where that is at
    least 5% of the photo (a backdrop, a floor or a hanger is then left out of its colours)."""
    pixels = ~parsed.mask_of(NOT_GARMENT)
    return parsed.to_photo(pixels) if pixels.mean() >= 0.05 else None


def whole_garment_pixels(parser: Parser, image: Image.Image) -> np.ndarray | None:
    """The garment pixels of a photo of one garment, as every entry point names its colours: parsed at
    `whole_photo_size`."""
    return garment_pixels(parser.parse_image(image, whole_photo_size(parser.input_size)))


@functools.cache
def shared_parser(folder: str) -> Parser:
    """One parser per folder and process, loaded when first needed: the ingest's decode threads (and each Ray
    worker's) share it, each running it on one core (two decode threads keep both busy)."""
    return Parser(folder, threads=1)
