"""Search by words on fashion-products: train-text on the products outside a held-out test part (timed with an
empty feature cache, then again warm), ingest the held-out products' images into a fresh catalogue without their
titles or attributes (their colours are named from the images, as at any ingest), and query it with gender +
colour + article type in the shop's words ("men navy blue shirts"). Scores the fraction of each query's top 10
that match all three, and each one alone.

    python benchmarks/text_search.py                  # cold and warm train-text, then the test part
    python benchmarks/text_search.py --cache DIR --no-cold  # a filled cache: warm train-text only
    python benchmarks/text_search.py --part validation --model MODEL --color-weight 0 --color-weight 1
        # choosing settings: a trained model's validation part, one score per colour weight (not recorded)

Writes build/text_search.json; --record (test part only) writes benchmarks/results/text-search.json. The test part (20% by a hash of each image's bytes) is never seen by
train-text; its validation part (15%) is what settings were chosen on.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _shared import dataset
from record import add_flag, record

COLUMNS = ["gender", "baseColour", "articleType"]
RAW = Path(__file__).resolve().parents[1] / "build" / "text_search.json"  # every figure and query


def train(root: Path, out: Path, cache: Path, test: float, extra: list[str]) -> tuple[float, dict]:
    """train-text through the CLI, as a user runs it: (seconds, its JSON)."""
    command = [sys.executable, "-m", "fashionlens", "train-text", str(root / "images"), "--labels",
               str(root / "styles.csv"), "--image-column", "id", "--text-column", "productDisplayName",
               "--out", str(out), "--test", str(test), "--json", *extra]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "FASHIONLENS_CACHE": str(cache)})
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"train-text failed: {done.stderr[-2000:]}")
    return seconds, json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cache", type=Path, default=None, help="feature cache folder (default: a fresh one)")
    parser.add_argument("--no-cold", action="store_true", help="skip the cold run (the cache is filled already)")
    parser.add_argument("--test", type=float, default=0.2)
    parser.add_argument("--min-items", type=int, default=10, help="queries: value combinations with this many items")
    parser.add_argument("--train-arg", action="append", default=[], help="passed on to train-text (repeatable)")
    parser.add_argument("--part", choices=("test", "validation"), default="test", help="the part to ingest and query")
    parser.add_argument("--model", type=Path, default=None, help="a text model trained with the same --test and "
                        "--train-arg (skips train-text, and its timing)")
    parser.add_argument("--color-weight", type=float, action="append", default=None,
                        help="search_text's colour weight (repeatable: each is scored; default the catalogue's)")
    add_flag(parser)
    args = parser.parse_args()
    if args.record and args.part != "test":
        parser.error("--record writes the test part's figures only")
    root = dataset("fashion-products")
    work = Path(tempfile.mkdtemp(prefix="text-search-"))
    cache = args.cache or work / "cache"
    os.environ["FASHIONLENS_CACHE"] = str(cache)
    result: dict = {"dataset": "fashion-products", "test_fraction": args.test, "command": " ".join(sys.argv)}
    model_folder = args.model or work / "model"
    if args.model is None:
        if not args.no_cold:
            result["train_text_cold_s"], _ = train(root, work / "cold", cache, args.test, args.train_arg)
        result["train_text_warm_s"], trained = train(root, work / "model", cache, args.test, args.train_arg)
        result["validation"] = trained["validation"]
        result["counts"] = trained["counts"]

    from fashionlens.catalog import Catalog
    from fashionlens.catalog.catalog import TEXT_COLOR_WEIGHT
    from fashionlens.data import read_table
    from fashionlens.fingerprints import sha256_file
    from fashionlens.text import load_text_model
    from fashionlens.text.evaluate import attribute_queries, match_fractions
    from fashionlens.text.train import TextTrainConfig, part_of

    config = TextTrainConfig()
    table = read_table(root / "styles.csv", image_column="id", tasks=COLUMNS, images_root=root / "images")
    held = [s for s in table.samples if part_of(sha256_file(s.path), config.validation, args.test) == args.part]
    by_source = {os.path.abspath(s.path): {c: s.labels[c] for c in COLUMNS} for s in held}
    start = time.perf_counter()
    with Catalog.open(work / "held-out.db") as catalog:
        report = catalog.ingest([s.path for s in held], classifier=None)  # no titles, no attributes
        result["ingest_s"], result["catalogue_items"] = time.perf_counter() - start, len(catalog)
        model = load_text_model(model_folder)
        items = catalog.store.items(catalog.store.ids().tolist())
        present = [by_source[i.source] for i in items.values()]
        queries = attribute_queries(present, COLUMNS, args.min_items)
        weights = args.color_weight or [TEXT_COLOR_WEIGHT]
        for weight in weights:
            latencies, found = [], []
            for query in queries:
                begin = time.perf_counter()
                hits = catalog.search_text([query.text], model, top_k=10, color_weight=weight)[0]
                latencies.append(time.perf_counter() - begin)
                found.append([by_source[h.image] for h in hits.results])
            scored = match_fractions(found, queries) | {"min_items": args.min_items, "color_weight": weight}
            print(json.dumps(scored))
    result["ingest_failed"] = len(report.failed)
    result[args.part] = scored  # the last weight's
    result["query_p50_ms"] = float(np.median(latencies) * 1000) if latencies else None
    result["queries"] = [{"text": q.text, "all": float(np.mean([all(h.get(c) == q.target[c] for c in COLUMNS)
                                                                  for h in hits])) if hits else 0.0}
                         for q, hits in zip(queries, found, strict=True)]
    raw = RAW if args.part == "test" else RAW.with_name(f"text_search_{args.part}.json")
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "queries"}, indent=2))
    print(f"wrote {raw}; work folder {work}")
    if args.record:
        record_figures(result)


def record_figures(result: dict) -> None:
    """The headline figures into benchmarks/results/text-search.json (the results page and the README's table)."""
    test = result["test"]
    figures = [{"figure": "Top 10 matching gender, colour and type (held-out products)", "value": round(test["all"], 3),
                "target": ">= 0.70", "headline": True}]
    figures += [{"figure": f"Top 10 matching {name} alone", "value": round(test[key], 3), "target": ">= 0.85"}
                for name, key in (("gender", "gender"), ("colour", "baseColour"), ("article type", "articleType"))]
    figures.append({"figure": "Text query p50", "value": round(result["query_p50_ms"], 1), "unit": "ms"})
    if result.get("train_text_warm_s"):
        figures.append({"figure": "train-text, warm cache", "value": round(result["train_text_warm_s"] / 60, 1),
                        "unit": "min", "target": "<= 3"})
    record("text-search", area="Catalogue and search", title="Search by words, learned from the shop's titles",
           data=f"fashion-products: {result['catalogue_items']} held-out products ingested without titles or "
                f"attributes, {test['queries']} gender-colour-type queries", part="test (20% by image hash)",
           issue=36, figures=figures, guide="guides/catalog.md")


if __name__ == "__main__":
    main()
