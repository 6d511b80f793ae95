"""`Analyzer`: one photo in, every garment in it described: the object the API, the CLI and batch jobs share.

Flow: decode -> detect (the detector's operating point: per-class thresholds, one item per garment) -> parse the
photo once -> each garment's own mask (its kind's parsed pixels in its box, no pixel in two masks; garments the
parser alone sees are added for the kinds validation chose) -> crop each garment -> one backbone pass per backbone over all
crops (ONNX Runtime) -> attribute heads (only labels that fit the garment's kind) and the embedding from those
same features -> colours from each garment's mask (similar catalogue items are added by the layer that holds a
catalogue: `fashionlens.catalog.similar`). A photo in
which nothing is found, or which shows no person (a product shot), is described whole, as one item of the kind
its category names.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from fashionlens.attributes import (DEFAULT_MODELS, Attributes, backbone_features, backbones_of, kinds_named,
                                    load_attribute_models, read_attributes)
from fashionlens.classify.inference import LabelScore
from fashionlens.classify.model_io import LoadedModel
from fashionlens.colors import estimate_balance, garment_colors, whole_photo_colors
from fashionlens.defaults import resolve_model
from fashionlens.detect.crop import cut_out
from fashionlens.detect.detections import Detections
from fashionlens.detect.inference import Detector
from fashionlens.detect.operating_point import OperatingPoint
from fashionlens.embeddings import Embedder, default_embedder
from fashionlens.features import backbone_key, backbone_runner
from fashionlens.fingerprints import sha256_bytes
from fashionlens.images import encode_png, load_image
from fashionlens.masks import mask_box
from fashionlens.parse.inference import Parser, garment_pixels, person_shares, whole_garment_pixels
from fashionlens.pipeline.garment_masks import MaskRules, garment_masks
from fashionlens.pipeline.result import Analysis, Garment

DEFAULT = "default"


@dataclass(frozen=True)
class PipelineConfig:
    detector: str | None = DEFAULT  # a detector folder, "default" (the shipped one) or None: whole photos only
    parser: str | None = DEFAULT  # a garment parser folder, "default" or None: colours from boxes, no masks
    # attribute models: folders, or the shipped "default" (garment category) and "types" (street-photo fine type)
    classifiers: tuple[str, ...] = DEFAULT_MODELS
    min_score: float | None = None  # every class from this score; None: the detector's per-class operating point
    operating_point: OperatingPoint | None = None  # all of it given (benchmarks compare points); overrides min_score
    max_items: int = 12  # garments described per photo, most confident first
    # a product shot shows no person: in its parse skin and hair are under `product_shot_person` of all that is not
    # background, or there is no hair (under 0.1% of the photo) and they are under `product_shot_hairless`. It is
    # described as one item whose kind the whole-photo classifier names (on clothing-small's validation photos it
    # names the kind right for 0.924 of them, the detector's strongest box for 0.370). On the validation parts
    # these take 95% of clothing-small's photos, none of colorful-fashion's and 1.5% of CCP's.
    product_shot_person: float = 0.04
    product_shot_hairless: float = 0.10
    crop_padding: float = 0.05  # each box grown by this share of its size before cropping
    crop_square: bool = True  # pad each crop to a square on white, so the centre crop keeps the whole garment
    top_k: int = 3  # labels returned per attribute task
    similar_k: int = 5  # similar catalogue items per garment (0: none), where a catalogue adds them
    similar_filter: str | None = "category"  # the attribute whose best label the similar items must share


@dataclass
class Description:
    """A crop or whole photo described: what `Garment` holds besides its box, and what a catalogue item stores."""

    attributes: dict[str, list[LabelScore]]
    colors: list
    embedding: np.ndarray
    color_source: str = "box"  # "mask" where the garment's own pixels were counted
    disputed: list = None  # Disputed: what a model said that does not fit the garment's kind
    kind: str | None = None  # the garment's kind: its detector label, or for a whole photo the classifier's

    @property
    def predicted(self) -> dict[str, dict]:
        """The best label per task, in the catalogue's `predicted` form."""
        return Attributes(self.attributes, self.kind).predicted


class Analyzer:
    """Loads the models once; `analyze` is safe to call from several threads (ONNX Runtime sessions are).
    `threads`: each ONNX Runtime session's (default: one per core; a Ray actor gives the CPUs it holds)."""

    def __init__(self, config: PipelineConfig | None = None, *, embedder: Embedder | None = None,
                 threads: int | None = None):
        self.config = config or PipelineConfig()
        # the detector and the parser run side by side on half the threads each: two one-thread sessions at
        # once take 52 ms a street photo where one after the other on two threads take 65 (2 cores)
        cores = threads or os.cpu_count() or 1
        together = cores >= 2 and bool(self.config.detector and self.config.parser)
        side = max(1, cores // 2) if together else threads
        self.detector = (Detector(resolve_model(self.config.detector, "detector"),
                                  threads=side) if self.config.detector else None)
        self.point = (self.config.operating_point or self.detector.point_for(self.config.min_score)
                      if self.detector is not None else None)
        self.parser = (Parser(resolve_model(self.config.parser, "parser"), threads=side)
                       if self.config.parser and self.detector is not None else None)
        self._beside = ThreadPoolExecutor(cores, thread_name_prefix="parse") if together else None
        self.classifiers: list[LoadedModel] = load_attribute_models(self.config.classifiers)
        self.kinds_named = kinds_named(self.classifiers)
        tasks = [t.name for m in self.classifiers for t in m.tasks]
        if len(set(tasks)) != len(tasks):
            raise ValueError(f"attribute models predict the same task twice ({tasks}); give models with distinct tasks")
        self.embedder = embedder or default_embedder()
        backbones = backbones_of(self.embedder, self.classifiers)
        self._transforms = {key: b.preprocess.eval_transform() for key, b in backbones.items()}
        self._runners = {key: backbone_runner(b, threads=threads) for key, b in backbones.items()}
        self.models = self._model_versions()
        self.models_key = hashlib.sha256(json.dumps(self.models, sort_keys=True).encode()).hexdigest()[:32]

    def _model_versions(self) -> dict[str, dict]:
        models: dict[str, dict] = {}
        if self.detector is not None:
            models["detector"] = {"name": self.detector.model.folder.name, "sha256": self.detector.model.weights_sha256,
                                  "classes": self.detector.classes}
        if self.parser is not None:
            models["parser"] = {"name": self.parser.model.folder.name, "sha256": self.parser.model.weights_sha256,
                                "classes": self.parser.classes}
        for m in self.classifiers:
            models[f"attributes:{m.folder.name}"] = {"name": m.folder.name, "sha256": m.weights_sha256,
                                                     "tasks": [t.name for t in m.tasks],
                                                     **({"tta": "flip"} if m.tta else {})}
        models["embedding"] = {"name": self.embedder.key, "dim": self.embedder.dim}
        models["pipeline"] = {"version": 4, "max_items": self.config.max_items,
                              "product_shot": [self.config.product_shot_person, self.config.product_shot_hairless],
                              "operating_point": self.point.to_json() if self.point is not None else None,
                              "crop_padding": self.config.crop_padding, "crop_square": self.config.crop_square,
                              "similar_filter": self.config.similar_filter}
        return models

    def describe(self, images: list[Image.Image]) -> list[Description]:
        """Attributes, colours and embedding of each whole photo (as a catalogue item), one backbone batch each;
        colours as `analyze` names a photo it describes whole (`whole_photo_colors`)."""
        return self._describe(images, [None] * len(images), [self._whole_colours(image) for image in images], {})

    def _whole_colours(self, image: Image.Image):
        """How a photo described whole gets its colours: the parser's garment pixels (`whole_garment_pixels`) are
        asked for only where the photo has no studio backdrop."""
        pixels = functools.partial(whole_garment_pixels, self.parser, image) if self.parser is not None else None
        return lambda: whole_photo_colors(image, pixels)

    def _describe(self, crops: list[Image.Image], kinds: list[str | None], colours: list,
                  timings: dict[str, float]) -> list[Description]:
        """`kinds`: each crop's garment label (None: a whole photo), which decides the attribute labels that fit;
        `colours`: per crop, a call that names its colours (and says from which pixels)."""
        if not crops:
            return []
        with _timer(timings, "backbone"):
            batches = {key: np.stack([t(c) for c in crops]) for key, t in self._transforms.items()}
            features, mirror_features = backbone_features(self._runners, batches, self.classifiers)
        with _timer(timings, "attributes"):
            read = read_attributes(self.classifiers, features, mirror_features, kinds, self.config.top_k)
            embeddings = self.embedder.from_features(features[backbone_key(self.embedder.backbone)])
        with _timer(timings, "colors"):
            named = [colour() for colour in colours]
        return [Description(a.labels, c, e, source, a.disputed, a.kind)
                for a, (c, source), e in zip(read, named, embeddings, strict=True)]

    def analyze(self, image: Image.Image | bytes | str | Path, *, name: str | None = None) -> Analysis:
        """Describe every garment in one photo. Bytes and paths are decoded here (an `ImageError` names `name`).

        The result's sha256 is that of the encoded file, as the service and the catalogue store it; a PIL image is
        first encoded once, losslessly (PNG), so the same PIL image always gets the same sha256 and the same
        answer as those PNG bytes."""
        timings: dict[str, float] = {}
        start = time.perf_counter()
        with _timer(timings, "decode"):
            if isinstance(image, Image.Image):
                image = encode_png(image)
            data = image if isinstance(image, bytes) else Path(image).read_bytes()
            image = load_image(data, name=name or (str(image) if not isinstance(image, bytes) else None))
            sha = sha256_bytes(data)
        parsing = self._beside.submit(self._parse, image, timings) if self._beside is not None else None
        found = self._detect(image, timings)
        product = None  # a product shot's own pixels, where the parser sees them
        if self.parser is not None:
            parsed = parsing.result() if parsing is not None else self._parse(image, timings)
            with _timer(timings, "masks"):
                rules = MaskRules(added=self.point.parser_items, split_pairs=self.point.split_pairs)
                found = garment_masks(parsed, found, self.detector.classes, rules)
                found = found[np.argsort(-found.confidence, kind="stable")]
                person, hair = person_shares(parsed)
                if person < self.config.product_shot_person or (hair < 0.001 and
                                                                person < self.config.product_shot_hairless):
                    # a product shot, one item: a bag keeps the detector's box (the classifier names no bags), any
                    # other kind is the whole-photo classifier's
                    found = found[:1]
                    found = found[[name not in self.kinds_named for name in found.data["class_name"]]]
                    product = garment_pixels(parsed)
                found = found[:self.config.max_items]
        labels = [str(name) for name in found.data["class_name"]]
        boxes = [tuple(b) for b in found.xyxy.tolist()]
        masks = list(found.mask) if found.mask is not None else [None] * len(found)
        with _timer(timings, "crop"):
            crops = [cut_out(image, b, self.config.crop_padding, square=self.config.crop_square) for b in boxes]
        whole = not crops
        if whole:  # classified whole, as the classifier was trained; the mask is the product's pixels, its
            # colours named as every entry point names a photo of one garment
            crops, masks, labels = [image], [product], [None]
            boxes = [mask_box(product) if product is not None else None]
            colours = [self._whole_colours(image)]
        else:
            with _timer(timings, "colors"):
                light = estimate_balance(image)  # once per photo, not per garment
            colours = [functools.partial(garment_colors, image, box, mask, balance=light)
                       for box, mask in zip(boxes, masks, strict=True)]
        described = self._describe(crops, labels, colours, timings)
        sources = [str(v) for v in found.data["source"]] if not whole else ["classifier"]
        scores = found.confidence.tolist() if not whole else [None]
        garments = []
        for box, label, score, mask, source, d in zip(boxes, labels, scores, masks, sources, described, strict=True):
            if whole:  # the kind its category names, with the classifier's own probability
                first = next(iter(d.attributes.values()), [LabelScore("item", 1.0)])[0]
                label, score = d.kind or first.label, first.score
                box = box or (0.0, 0.0, float(image.width), float(image.height))
            garments.append(Garment(label, float(score), tuple(float(v) for v in box), d.attributes, d.colors,
                                    d.embedding, whole_image=whole, mask=mask, source=source,
                                    color_source=d.color_source, disputed=d.disputed or []))
        timings["total"] = (time.perf_counter() - start) * 1000
        return Analysis(sha, image.width, image.height, garments, self.models, timings)

    def _parse(self, image: Image.Image, timings: dict[str, float]):
        with _timer(timings, "parse"):
            return self.parser.parse_image(image)

    def _detect(self, image: Image.Image, timings: dict[str, float]) -> Detections:
        """The garments the operating point shows, strongest first, their kinds and sources in `data`."""
        if self.detector is None:
            return Detections(np.zeros((0, 4), np.float32), [], [], data={"class_name": [], "source": []})
        with _timer(timings, "detect"):
            found = self.detector.garments(image, self.point)[:self.config.max_items]
        found.data["class_name"] = np.asarray([self.detector.classes[c] for c in found.class_id], dtype=object)
        found.data["source"] = np.asarray(["detector"] * len(found), dtype=object)
        return found

@contextlib.contextmanager
def _timer(timings: dict[str, float], stage: str):
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = timings.get(stage, 0.0) + (time.perf_counter() - start) * 1000
