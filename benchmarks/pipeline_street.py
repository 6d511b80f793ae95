"""Street photos as a user sees them: `evaluate-pipeline` on colorful-fashion's boxes and CCP's label maps, for the
shipped operating point and the one before issue 29 (every class from 0.4, items the parser alone finds for every
kind, a box over two shoes split in two, no merging of one garment's boxes), in one run.

Tune on `--part validation`; the test part is scored once for each change kept (say so beside its figure).

    python benchmarks/pipeline_street.py --part test [--out build/pipeline-street] [--record]

--record writes the shipped point's figures to benchmarks/results/pipeline-street.json.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from _shared import dataset
from record import add_flag, record

from fashionlens.detect.formats import read_dataset
from fashionlens.detect.operating_point import OperatingPoint
from fashionlens.detect.train import split_dataset
from fashionlens.parse import read_masks
from fashionlens.pipeline import Analyzer, PipelineConfig
from fashionlens.pipeline.evaluate import evaluate_pipeline
from fashionlens.taxonomy import LABEL_OF_PARSER_CLASS

BEFORE = OperatingPoint(default_threshold=0.4, part_inside=2.0, merge_halves=(), split_pairs=True,
                        parser_items={k: (0.015, 0.6) for k in set(LABEL_OF_PARSER_CLASS.values())}, source="before")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", default="validation", choices=("train", "validation", "test"))
    ap.add_argument("--out", type=Path, default=Path("build/pipeline-street"))
    ap.add_argument("--only-shipped", action="store_true", help="skip the 'before' point")
    add_flag(ap)
    args = ap.parse_args()
    boxes = split_dataset(read_dataset(dataset("colorful-fashion")), 0.1, 0.15)[args.part]
    masks = read_masks(dataset("clothing-parsing")).part(args.part)
    results = {}
    ways = {"shipped": None} if args.only_shipped else {"before": BEFORE, "shipped": None}
    for name, point in ways.items():
        analyzer = Analyzer(replace(PipelineConfig(similar_k=0), operating_point=point))
        report = evaluate_pipeline(analyzer, boxes, masks, args.out / f"{args.part}-{name}")
        o, m = report.boxes["overall"], report.masks
        print(f"{name:>8} colorful-fashion {args.part} ({report.boxes['photos']} photos): precision "
              f"{o['precision']:.3f} recall {o['recall']:.3f} F1 {o['f1']:.3f} duplicates {o['duplicate_share']:.2%} "
              f"items/photo {o['items_per_photo']:.2f} (garments/photo {o['garments_per_photo']:.2f})")
        print(f"{'':>8} CCP {args.part} ({m['photos']} photos): found {m['found']:.3f} of {m['garments']}, mask IoU "
              f"{m['mask_iou']:.3f}, type top-1 {m['type_top1']:.3f} of {m['typed']}, colour family {m['colour']:.3f}")
        results[name] = report.to_json()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.part}.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {args.out / f'{args.part}.json'}")
    if args.record:
        record_figures(report, args.part)


def record_figures(report, part: str) -> None:
    """The shipped point's figures (the last report) into benchmarks/results/pipeline-street.json."""
    o, m = report.boxes["overall"], report.masks
    record("pipeline-street", area="Analyse (the whole pipeline)", title="What analyze shows, scored as a user sees it",
           data=f"colorful-fashion {part} ({report.boxes['photos']} photos, {o['garments']:,} garments); Clothing "
                f"Co-Parsing {part} ({m['photos']} photos, {m['garments']} garments over 2%)", part=part, issue=29,
           guide="guides/detect.md",
           figures=[{"figure": "Precision at IoU 0.5 (colorful-fashion)", "value": round(o["precision"], 3)},
                    {"figure": "Recall at IoU 0.5 (colorful-fashion)", "value": round(o["recall"], 3)},
                    {"figure": "Duplicate items (colorful-fashion)", "value": f"{o['duplicate_share']:.2%}"},
                    {"figure": "Garments found (CCP)", "value": round(m["found"], 3)},
                    {"figure": "type top-1 of garments found (CCP)", "value": round(m["type_top1"], 3)},
                    {"figure": "First colour's family equals the namer's on the true pixels (CCP)",
                     "value": round(m["colour"], 3)}])


if __name__ == "__main__":
    main()
