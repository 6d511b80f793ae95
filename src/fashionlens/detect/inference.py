"""Running a detector on photos: letterbox, the network on ONNX Runtime, FCOS's decoding in numpy, original pixels.

The ONNX file is the model folder's own export when it matches the weights, otherwise one made on first use
and kept in the cache, keyed by the weights hash; `runtime="torch"` is the eager reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image

from fashionlens.data.samples import SkippedInput, failure_reason
from fashionlens.decoding import ImageFileDataset, item_batches
from fashionlens.defaults import default_detector_dir
from fashionlens.detect.decoding import anchors, decode, level_shapes
from fashionlens.detect.detections import AnnotatedImage, DetectionDataset, Detections
from fashionlens.detect.model_io import LoadedDetector, load_detector
from fashionlens.letterbox import letterbox
from fashionlens.preprocess import normalized
from fashionlens.detect.operating_point import OperatingPoint, select
from fashionlens.model_folder import onnx_file_for, write_export_record
from fashionlens.progress import progress_bar
from fashionlens.runtime import OnnxRunner, export_onnx, onnx_parity

RUNTIMES = ("onnx", "torch")
OUTPUTS = ["cls_logits", "bbox_regression", "bbox_ctrness"]


@dataclass
class DetectResult:
    images: list[AnnotatedImage]  # one per readable input, in input order
    failures: list[SkippedInput] = field(default_factory=list)


def export_detector(model: LoadedDetector, onnx_file: str | Path | None = None, *, check: bool = True) -> Path:
    """Write the network (normalised images in, raw head outputs out) as ONNX and record it in the folder."""
    from fashionlens.detect.model import RawDetector

    path = Path(onnx_file) if onnx_file else model.folder / "model.onnx"
    export_onnx(RawDetector(model.model), model.config.input_size, path, OUTPUTS)
    record = {}
    if check:
        record["parity_max_abs"] = diff = parity(model, path)
        if diff > 1e-3:
            raise RuntimeError(f"{path}: ONNX output differs from PyTorch by {diff:.2e}")
    if onnx_file is None or path.resolve().parent == model.folder.resolve():
        write_export_record(model.folder, path, model.weights_sha256, record)
    return path


def parity(model: LoadedDetector, onnx_file: Path) -> float:
    """Largest absolute difference in raw outputs between ONNX Runtime and PyTorch on random inputs."""
    from fashionlens.detect.model import RawDetector

    return onnx_parity(RawDetector(model.model), onnx_file, model.config.input_size, OUTPUTS)


def _onnx_for(model: LoadedDetector) -> Path:
    return onnx_file_for(model.folder, model.weights_sha256, "detector", lambda path: export_detector(model, path, check=False))


class _Letterboxed(ImageFileDataset):
    def __init__(self, paths: list[Path], size, mean, std):
        super().__init__(paths)
        self.size, self.mean, self.std = size, mean, std

    def prepare(self, i: int, data: bytes, image):
        boxed, scale = letterbox(image, self.size)
        return normalized(boxed, self.mean, self.std), scale, image.width, image.height


class Detector:
    """A loaded detector ready to run; `Detector()` is the shipped garment detector. `threads`: ONNX Runtime's (default:
    one per core)."""

    def __init__(self, model: LoadedDetector | str | Path | None = None, runtime: str = "onnx",
                 threads: int | None = None):
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, not {runtime!r}")
        self.model = model if isinstance(model, LoadedDetector) else load_detector(model or default_detector_dir())
        self.classes = list(self.model.config.classes)
        self.input_size = tuple(self.model.config.input_size)
        self.runtime = runtime
        self._onnx = OnnxRunner(_onnx_for(self.model), threads) if runtime == "onnx" else None
        self._anchors = anchors(self.input_size, level_shapes(self.model.config))

    @property
    def operating_point(self) -> OperatingPoint:
        """The per-class thresholds and one-item-per-garment rules stored with the weights (built-in ones if none)."""
        data = self.model.manifest.get("operating_point")
        return OperatingPoint.from_json(data, "manifest") if data else OperatingPoint()

    def point_for(self, min_score: float | None) -> OperatingPoint:
        """The operating point, or every class at `min_score` with the same rules (a user's override)."""
        point = self.operating_point
        if min_score is None:
            return point
        return replace(point, thresholds={}, default_threshold=float(min_score), source="min_score")

    def shown(self, found: Detections, point: OperatingPoint) -> Detections:
        """What users see of raw detections: the operating point's thresholds, one item per garment."""
        return select(found, self.classes, point)

    def _raw(self, images: np.ndarray) -> dict[str, np.ndarray]:
        if self._onnx is not None:
            return self._onnx(images)
        import torch

        from fashionlens.detect.model import RawDetector

        with torch.inference_mode():
            out = RawDetector(self.model.model)(torch.from_numpy(images))
        return {name: value.numpy() for name, value in zip(OUTPUTS, out, strict=True)}

    def _decode(self, images: np.ndarray, scales: list[float], sizes: list[tuple[int, int]], min_score: float) -> list[Detections]:
        decoded = decode(self.model.config, self._raw(images), self._anchors)
        out = []
        for det, scale, (width, height) in zip(decoded, scales, sizes, strict=True):
            keep = det["scores"] >= min_score
            boxes = det["boxes"][keep] / scale
            boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
            boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
            out.append(Detections(boxes.astype(np.float32), det["labels"][keep].astype(np.int64), det["scores"][keep]))
        return out

    def detect_image(self, image: Image.Image, min_score: float = 0.3) -> Detections:
        """Every detection on one decoded RGB image scoring `min_score` or more, in its pixels (no selection)."""
        boxed, scale = letterbox(image, self.input_size)
        pre = self.model.preprocess
        return self._decode(normalized(boxed, pre.mean, pre.std)[None], [scale], [image.size], min_score)[0]

    def garments(self, image: Image.Image, point: OperatingPoint | None = None) -> Detections:
        """The garments shown for one photo: detections chosen by the operating point, strongest first."""
        point = point or self.operating_point
        return self.shown(self.detect_image(image, point.lowest), point)

    def detect(self, paths: list[str | Path], *, min_score: float | None = None, raw: bool = False,
               batch_size: int = 8, progress: bool = False) -> DetectResult:
        """The garments of every readable image, as `garments` chooses them (`min_score`: every class at that
        score instead of the operating point's); `raw`: every detection from `min_score` up, no selection.
        Unreadable images are listed in `failures` and skipped."""
        if raw and min_score is None:
            raise ValueError("raw detections need a min_score")
        point = None if raw else self.point_for(min_score)
        floor = min_score if raw else point.lowest
        paths = [Path(p) for p in paths]
        pre = self.model.preprocess
        dataset = _Letterboxed(paths, self.input_size, pre.mean, pre.std)
        result = DetectResult([])
        with progress_bar("detect", len(paths), progress) as advance:
            for batch in item_batches(dataset, batch_size, workers=1):
                result.failures += [SkippedInput(str(paths[i]), reason) for i, _, reason in batch if reason]
                good = [(i, item) for i, item, reason in batch if not reason]
                if good:
                    result.images += self._detect_batch(paths, good, floor, point, result.failures)
                advance(len(batch))
        return result

    def _detect_batch(self, paths: list[Path], good: list, min_score: float, point: OperatingPoint | None,
                      failures: list[SkippedInput]) -> list[AnnotatedImage]:
        """One batch's detections; where the batch fails, each image alone, so an error skips only its own image."""
        try:
            images = np.stack([item[0] for _, item in good])
            dets = self._decode(images, [item[1] for _, item in good], [(item[2], item[3]) for _, item in good], min_score)
            dets = dets if point is None else [self.shown(d, point) for d in dets]
        except Exception as exc:
            if len(good) > 1:
                return [found for one in good
                        for found in self._detect_batch(paths, [one], min_score, point, failures)]
            failures.append(SkippedInput(str(paths[good[0][0]]), failure_reason(exc, "detection")))
            return []
        return [AnnotatedImage(paths[i], item[2], item[3], d) for (i, item), d in zip(good, dets, strict=True)]

    def evaluate(self, dataset: DetectionDataset, out_dir: str | Path | None = None, *, progress: bool = False
                 ) -> tuple[dict, list[SkippedInput]]:
        """COCO metrics of this detector on annotated images (report files in `out_dir` when given)."""
        unknown = [c for c in dataset.classes if c not in self.classes]
        if unknown:
            raise ValueError(f"{dataset.source}: classes {unknown} are not among the model's {self.classes}")
        remap = np.asarray([self.classes.index(c) for c in dataset.classes], np.int64)
        truth = DetectionDataset(self.classes, [
            AnnotatedImage(im.path, im.width, im.height, Detections(im.detections.xyxy, remap[im.detections.class_id]))
            for im in dataset.images], dataset.source)
        from fashionlens.detect.evaluate import evaluate_detections  # matplotlib and pycocotools: only to evaluate

        result = self.detect([im.path for im in truth.images], min_score=0.05, raw=True, progress=progress)
        found = {im.path: im.detections for im in result.images}
        predictions = [found.get(im.path, Detections.empty(with_confidence=True)) for im in truth.images]
        return evaluate_detections(truth, predictions, out_dir), result.failures
