"""Issue 34's speed levers, each against the current default in one run: INT8 static quantisation (ONNX Runtime, QDQ,
per-channel, calibrated on training photos) of the detector, the parser and the crop backbone; ONNX Runtime's
thread settings; batching one photo's crops. Stage milliseconds and validation accuracy before/after.

    python benchmarks/speed_levers.py quantize --out build/int8      # calibrate and write the three INT8 graphs
    python benchmarks/speed_levers.py measure --int8 build/int8      # times, accuracy -> build/speed_levers.json; --record
    python benchmarks/speed_levers.py                                # print the table in build/speed_levers.json

Run `quantize` and `measure` on a quiet CPU (`flock /tmp/heavy.lock ...`): ratios come from one process, variants
interleaved round by round. Both need the `train` extra (the `onnx` package; PyTorch to export the smaller parsers).

Kept: none (2026-12-07, see the json). INT8 costs 2.9 mAP points (detector), 4.4 mIoU points (parser) and 3.5
accuracy points (classifier's backbone) against a 0.5-point bar; one intra-op thread and ORT_PARALLEL are slower
than the default; the crops already go through the backbone in one call; smaller parser inputs cost 3.7-5.6 mIoU
points.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from _shared import dataset
from PIL import Image
from record import add_flag, record

from fashionlens.holdout import holdout_part
from fashionlens.letterbox import letterbox
from fashionlens.preprocess import normalized

RESULTS = Path(__file__).resolve().parents[1] / "build" / "speed_levers.json"  # every timing; the table -> results/
# only the convolutions of the detector and the parser: quantising every op changed the detector head's shape
# arithmetic (3,074 anchors out instead of 3,202: mAP 0) and cost the parser 8 mIoU points
OP_TYPES = {"detector": ["Conv"], "parser": ["Conv"], "backbone": None}
CALIBRATION = {"detector": "colorful-fashion train part (sha1 of file name), every 25th photo: 64",
               "parser": "clothing-parsing train part (sha1 of file name), every 8th photo: 64",
               "backbone": "clothing-small train, 10 photos per class: 100"}


class _Batches:
    """ONNX Runtime's calibration reader: one {"image": batch} feed at a time."""

    def __init__(self, batches):
        self._batches = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {"image": np.ascontiguousarray(batch, dtype=np.float32)}


def quantize_graph(fp32: Path, out: Path, calibration, op_types: list[str] | None = None) -> Path:
    """`fp32` quantised to INT8 with ONNX Runtime's tool (QDQ, weights per channel, activations unsigned, ranges by
    min-max over the `calibration` batches: preprocessed images as the model sees them); needs the `onnx` package.
    `op_types`: only these (None: every op ONNX Runtime can quantise)."""
    import tempfile

    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(out), _Batches(calibration), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax, op_types_to_quantize=op_types)
    return out


def _models():
    """(detector, parser, shipped crop backbone spec, its fp32 graph, the classifier on it)."""
    from fashionlens.attributes import backbones_of, load_attribute_models
    from fashionlens.backbone_spec import backbone_onnx
    from fashionlens.cache import default_cache_dir
    from fashionlens.detect.inference import Detector
    from fashionlens.embeddings import default_embedder
    from fashionlens.parse.inference import Parser

    classifier = load_attribute_models(["default"])[0]
    backbones = backbones_of(default_embedder(), [classifier])
    assert len(backbones) == 1, "the shipped models sit on one crop backbone"
    backbone = next(iter(backbones.values()))
    return Detector(), Parser(), backbone, backbone_onnx(backbone, default_cache_dir()), classifier


def _train_photos(name: str, every: int) -> list[Path]:
    photos = sorted((dataset(name) / ("JPEGImages" if name == "colorful-fashion" else "images")).glob("*.jpg"))
    return [p for p in photos if holdout_part(p, 0.1, 0.15) == "train"][::every][:64]


def _letterboxed(paths: list[Path], model) -> np.ndarray:
    pre = model.model.preprocess
    return np.stack([normalized(letterbox(Image.open(p).convert("RGB"), model.input_size)[0], pre.mean, pre.std)
                     for p in paths])


def _backbone_batch(paths: list[Path], backbone) -> np.ndarray:
    transform = backbone.preprocess.eval_transform()
    return np.stack([transform(Image.open(p).convert("RGB")) for p in paths])


def _clothing_small(part: str, per_class: int | None = None) -> tuple[list[Path], list[str]]:
    paths, labels = [], []
    for folder in sorted(p for p in (dataset("clothing-small") / part).iterdir() if p.is_dir()):
        files = sorted(folder.glob("*.jpg"))[:per_class]
        paths += files
        labels += [folder.name] * len(files)
    return paths, labels


def quantize(out: Path) -> None:
    """Each network's INT8 graph into `out`."""
    from fashionlens.detect.inference import _onnx_for as detector_graph
    from fashionlens.parse.inference import _onnx_for as parser_graph

    detector, parser, backbone, backbone_graph, _ = _models()
    jobs = {
        "detector": (detector_graph(detector.model), _letterboxed(_train_photos("colorful-fashion", 25), detector)),
        "parser": (parser_graph(parser.model), _letterboxed(_train_photos("clothing-parsing", 8), parser)),
        "backbone": (backbone_graph, _backbone_batch(_clothing_small("train", 10)[0], backbone)),
    }
    for name, (graph, images) in jobs.items():
        start = time.perf_counter()
        path = quantize_graph(graph, out / f"{name}.int8.onnx", np.split(images, len(images) // 4), OP_TYPES[name])
        print(f"{name}: {graph.stat().st_size / 1e6:.1f} MB -> {path.stat().st_size / 1e6:.1f} MB "
              f"({len(images)} calibration images, {time.perf_counter() - start:.0f} s)")


def _session(path: Path, threads: int | None = None, parallel: bool = False) -> ort.InferenceSession:
    """As `OnnxRunner` makes it, with the thread settings under test."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    if parallel:
        options.execution_mode = ort.ExecutionMode.ORT_PARALLEL
        options.inter_op_num_threads = 2
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _median_ms(variants: dict[str, callable], rounds: int) -> dict[str, float]:
    """Each variant called once per round, in turn, so a busy spell hits them all alike."""
    times = {name: [] for name in variants}
    for name, call in variants.items():
        call(), call()  # warm-up
    for _ in range(rounds):
        for name, call in variants.items():
            start = time.perf_counter()
            call()
            times[name].append((time.perf_counter() - start) * 1000)
    return {name: round(float(np.median(t)), 1) for name, t in times.items()}


def _latency(graphs: dict[str, tuple[Path, Path]], feeds: dict[str, np.ndarray], rounds: int) -> dict[str, dict]:
    out = {}
    for stage, (fp32, int8, *_) in graphs.items():
        feed = {"image": feeds[stage]}
        sessions = {"fp32": _session(fp32), "fp32 intra_op 1": _session(fp32, 1),
                    "fp32 parallel inter_op 2": _session(fp32, None, True), "int8": _session(int8),
                    "int8 intra_op 1": _session(int8, 1)}
        if len(graphs[stage]) > 2:  # the same network with signed, symmetric activations
            sessions["int8 s8 symmetric"] = _session(graphs[stage][2])
        out[stage] = _median_ms({k: (lambda s=s: s.run(None, feed)) for k, s in sessions.items()}, rounds)
        print(stage, out[stage], flush=True)
    return out


def _crop_batching(backbone_graph: Path, crops: np.ndarray, rounds: int) -> dict[str, float]:
    session = _session(backbone_graph)
    return _median_ms({f"{len(crops)} crops in one call": lambda: session.run(None, {"image": crops}),
                       f"{len(crops)} crops one by one": lambda: [session.run(None, {"image": c[None]}) for c in crops]},
                      rounds)


class _Runner:
    """Stands in for `OnnxRunner` with another graph of the same model."""

    def __init__(self, path: Path):
        self.session = _session(path)
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, images):
        return dict(zip(self.output_names, self.session.run(None, {"image": np.ascontiguousarray(images, np.float32)}),
                        strict=True))


def _accuracy(detector, parser, backbone, classifier, graphs: dict[str, tuple[Path, Path]]) -> dict[str, dict]:
    from fashionlens.detect.formats import read_dataset
    from fashionlens.detect.train import split_dataset
    from fashionlens.parse import read_masks
    from fashionlens.parse.evaluate import evaluate_parser

    boxes = split_dataset(read_dataset(dataset("colorful-fashion")), 0.1, 0.15)["validation"]
    masks = read_masks(dataset("clothing-parsing")).part("validation")
    paths, labels = _clothing_small("validation")
    crops = _backbone_batch(paths, backbone)
    out = {"detector": {}, "parser": {}, "backbone": {}}
    for precision, index in (("fp32", 0), ("int8", 1), ("int8 s8 symmetric", 2)):
        if index >= len(graphs["backbone"]):
            break
        if index < len(graphs["detector"]):
            detector._onnx = _Runner(graphs["detector"][index])
            out["detector"][precision] = {"map50": round(detector.evaluate(boxes)[0]["map50"], 4)}
        if index < len(graphs["parser"]):
            parser._onnx = _Runner(graphs["parser"][index])
            metrics = evaluate_parser(parser, masks)[0]
            out["parser"][precision] = {"miou": round(metrics["miou"], 4), "pixel_accuracy": round(metrics["pixel_accuracy"], 4)}
        runner = _Runner(graphs["backbone"][index])
        features = np.concatenate([runner(c)["features"] for c in np.array_split(crops, len(crops) // 32)])
        mirrors = (np.concatenate([runner(c[..., ::-1])["features"] for c in np.array_split(crops, len(crops) // 32)])
                   if classifier.tta else None)
        task = classifier.tasks[0]
        predicted = np.asarray(task.classes)[classifier.probabilities_from(features, mirrors)[task.name].argmax(1)]
        out["backbone"][precision] = {"classifier_accuracy": round(float((predicted == np.asarray(labels)).mean()), 4)}
        print(precision, {k: v.get(precision) for k, v in out.items()}, flush=True)
    out["data"] = {"detector": f"colorful-fashion validation part, {len(boxes)} photos",
                   "parser": f"clothing-parsing validation part, {len(masks)} photos",
                   "backbone": f"clothing-small validation, {len(paths)} photos (garment classifier's category)"}
    return out


def _smaller_parser(parser, sizes: list[tuple[int, int]], photo: list[Path], rounds: int) -> dict:
    """The parser exported at smaller inputs than it was trained at (needs the `train` extra): its ms and its
    validation mIoU beside the trained size's."""
    import tempfile

    from fashionlens.parse import read_masks
    from fashionlens.parse.evaluate import evaluate_parser
    from fashionlens.parse.inference import OUTPUTS, _labelled, _onnx_for
    from fashionlens.runtime import export_onnx

    masks = read_masks(dataset("clothing-parsing")).part("validation")
    trained = parser.input_size
    graphs = {trained: _onnx_for(parser.model)}
    for size in sizes:
        graphs[size] = export_onnx(_labelled(parser.model.model), size, Path(tempfile.mkdtemp()) / "parser.onnx", OUTPUTS)
    calls, accuracy = {}, {}
    for size, graph in graphs.items():
        parser._onnx, parser.input_size = _Runner(graph), size
        metrics = evaluate_parser(parser, masks)[0]
        name = f"{size[0]}x{size[1]}" + (" (trained)" if size == trained else "")
        accuracy[name] = {"miou": round(metrics["miou"], 4), "pixel_accuracy": round(metrics["pixel_accuracy"], 4)}
        calls[name] = (lambda r=parser._onnx, x=_letterboxed(photo, parser): r(x))
    parser._onnx, parser.input_size = _Runner(graphs[trained]), trained
    result = {"ms": _median_ms(calls, rounds), "accuracy": accuracy}
    print("smaller parser input", result, flush=True)
    return result


def measure(int8: Path, rounds: int) -> dict:
    from fashionlens.detect.inference import _onnx_for as detector_graph
    from fashionlens.parse.inference import _onnx_for as parser_graph

    detector, parser, backbone, backbone_graph, classifier = _models()
    graphs = {"detector": (detector_graph(detector.model), int8 / "detector.int8.onnx"),
              "parser": (parser_graph(parser.model), int8 / "parser.int8.onnx"),
              "backbone": (backbone_graph, int8 / "backbone.int8.onnx")}
    if (int8 / "backbone-s8.int8.onnx").is_file():
        graphs["backbone"] += (int8 / "backbone-s8.int8.onnx",)
    photo = sorted((dataset("colorful-fashion") / "JPEGImages").glob("*.jpg"))[:1]
    crops = _backbone_batch(_clothing_small("validation", 1)[0][:4], backbone)
    feeds = {"detector": _letterboxed(photo, detector), "parser": _letterboxed(photo, parser), "backbone": crops}
    result = {"latency_ms": _latency(graphs, feeds, rounds), "crop_batching_ms": _crop_batching(backbone_graph, crops, rounds),
              "accuracy": _accuracy(detector, parser, backbone, classifier, graphs),
              "smaller_parser_input": _smaller_parser(parser, [(320, 224), (288, 192)], photo, rounds),
              "graph_mb": {k: [round(p.stat().st_size / 1e6, 1) for p in v] for k, v in graphs.items()},
              "calibration": CALIBRATION, "rounds": rounds, "onnxruntime": ort.__version__}
    return result


COMMAND = ("flock /tmp/heavy.lock python benchmarks/speed_levers.py quantize --out build/int8 && "
           "flock /tmp/heavy.lock python benchmarks/speed_levers.py measure --int8 build/int8 --rounds 40")
ACCURACY = {"detector": "map50", "parser": "miou", "backbone": "classifier_accuracy"}
STAGE_INPUT = {"detector": "1 photo 480x320", "parser": "1 photo 384x256", "backbone": "4 crops 240x240"}


def _row(lever: str, stage: str, ms: tuple[float, float], accuracy: tuple[float, float] | None, metric: str) -> dict:
    """Kept where it is 5% faster or more and loses at most 0.5 points."""
    kept = ms[1] <= 0.95 * ms[0] and (accuracy is None or accuracy[0] - accuracy[1] <= 0.005)
    return {"lever": lever, "stage": stage, "ms_before": ms[0], "ms_after": ms[1],
            "accuracy_before": accuracy[0] if accuracy else "same graph",
            "accuracy_after": accuracy[1] if accuracy else "same graph", "metric": metric, "kept": kept}


def table(results: dict) -> list[dict]:
    """One row per lever and stage, each against the default (fp32, ONNX Runtime's threads) of the same run."""
    rows = []
    latency, accuracy = results["latency_ms"], results["accuracy"]
    for stage, key in ACCURACY.items():
        ms = latency[stage]
        rows.append(_row("INT8 static (QDQ, per-channel, min-max)", f"{stage} ({STAGE_INPUT[stage]})",
                         (ms["fp32"], ms["int8"]), (accuracy[stage]["fp32"][key], accuracy[stage]["int8"][key]), key))
        rows.append(_row("intra_op threads 1 (default: 1 per core, 2)", stage, (ms["fp32"], ms["fp32 intra_op 1"]), None, key))
        rows.append(_row("ORT_PARALLEL, inter_op 2", stage, (ms["fp32"], ms["fp32 parallel inter_op 2"]), None, key))
    (_, batched), (_, one_by_one) = results["crop_batching_ms"].items()
    rows.append(_row("one call per crop (default: a photo's crops in one call)", "backbone (4 crops)",
                     (batched, one_by_one), None, "classifier_accuracy"))
    smaller = results["smaller_parser_input"]
    trained = next(name for name in smaller["ms"] if "trained" in name)
    for name, ms in smaller["ms"].items():
        if name != trained:
            rows.append(_row(f"parser input {name} (trained at {trained.split()[0]})", "parser", (smaller["ms"][trained], ms),
                             (smaller["accuracy"][trained]["miou"], smaller["accuracy"][name]["miou"]), "miou"))
    return rows


def lever_figures(results: dict) -> list[dict]:
    """The table as results figures: each lever's stage time and accuracy before and after, and whether it was kept."""
    return [{"figure": f"{r['lever']}: {r['stage']}",
             "value": f"{r['ms_before']} -> {r['ms_after']} ms; {r['metric']} {r['accuracy_before']} -> "
                      f"{r['accuracy_after']}; {'kept' if r['kept'] else 'not kept'}"} for r in results["table"]]


def show(results: dict) -> None:
    print(f"{'lever':<58}{'stage':<28}{'ms before':>10}{'after':>8}  {'accuracy before':>16}{'after':>12}  kept")
    for r in results["table"]:
        print(f"{r['lever']:<58}{r['stage']:<28}{r['ms_before']:>10}{r['ms_after']:>8}  {str(r['accuracy_before']):>16}"
              f"{str(r['accuracy_after']):>12}  {'yes' if r['kept'] else 'no'}")
    print(f"\nINT8 graph sizes (MB, fp32 -> int8): {results['graph_mb']}")
    print(f"accuracy on: {results['accuracy']['data']}")
    print(f"calibration: {results['calibration']}")
    print(f"command: {results['command']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("step", nargs="?", default="show", choices=("quantize", "measure", "show"))
    ap.add_argument("--out", type=Path, default=Path("build/int8"))
    ap.add_argument("--int8", type=Path, default=Path("build/int8"))
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--results", type=Path, default=RESULTS)
    add_flag(ap)
    args = ap.parse_args()
    if args.step == "quantize":
        quantize(args.out)
    elif args.step == "measure":
        results = measure(args.int8, args.rounds)
        results.update(table=table(results), command=COMMAND)
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(json.dumps(results, indent=1) + "\n")
        show(results)
        if args.record:
            record("speed-levers", area="Service",
                   title="Speed levers, each against the default in one run (issue 34)",
                   data="; ".join(f"{k}: {v}" for k, v in results["accuracy"]["data"].items()),
                   part="validation parts", issue=34, figures=lever_figures(results), guide="guides/service.md")
    else:
        show(json.loads(args.results.read_text()))


if __name__ == "__main__":
    main()
