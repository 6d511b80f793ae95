"""Image-to-image search on clothing-small: train is the catalogue, validation the queries.

Prints same-class precision@10 for each embedding: Lite1 backbone features, PCA(-whitened) versions fitted on
the catalogue, the features with the shipped garment classifier's probabilities appended (several weights;
that classifier was trained on clothing-small train only), pooled multi-stage features, and the hidden layer of
an MLP-head classifier trained on the catalogue's labels; then the catalogue itself (`Catalog.ingest` +
`Catalog.search`, default embedding, predicted category and colours) end to end.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA

from _shared import dataset
from record import add_flag, record
from fashionlens.backbones import create_backbone
from fashionlens.classify import TrainConfig, load_model, train
from fashionlens.data import read_folder
from fashionlens.defaults import default_classifier_dir
from fashionlens.embeddings import Embedder, default_embedder, embed_paths, l2_normalize


def precision_at_k(catalogue: np.ndarray, cat_labels: np.ndarray, queries: np.ndarray, q_labels: np.ndarray,
                   k: int = 10) -> float:
    top = np.argsort(-(queries @ catalogue.T), axis=1)[:, :k]
    return float((cat_labels[top] == q_labels[:, None]).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--skip-catalog", action="store_true", help="only compare embeddings")
    parser.add_argument("--throughput", type=int, default=300, help="images for the add-speed comparison")
    add_flag(parser)
    args = parser.parse_args()
    data = read_folder(dataset("clothing-small"))
    cat, query = data.only_split("train"), data.only_split("validation")
    cat_paths, q_paths = [s.path for s in cat.samples], [s.path for s in query.samples]
    cat_y = np.array([s.labels["category"] for s in cat.samples])
    q_y = np.array([s.labels["category"] for s in query.samples])
    print(f"catalogue {len(cat_paths)} images, queries {len(q_paths)}")

    results: dict[str, float] = {}

    def score(name: str, c: np.ndarray, q: np.ndarray, ci: list[int], qi: list[int]) -> None:
        results[name] = precision_at_k(c, cat_y[ci], q, q_y[qi], args.k)
        print(f"{name:<44} precision@{args.k} {results[name]:.4f}  dim {c.shape[1]}", flush=True)

    base = Embedder.from_backbone("efficientnet_lite1")
    c, q = embed_paths(cat_paths, base), embed_paths(q_paths, base)
    score("lite1 features (L2)", c.vectors, q.vectors, c.indices, q.indices)
    for dims in (128, 256):
        for whiten in (False, True):
            pca = PCA(dims, whiten=whiten, random_state=0).fit(c.vectors)
            score(f"lite1 + PCA{dims}{' whitened' if whiten else ''} (fit on catalogue)",
                  l2_normalize(pca.transform(c.vectors)), l2_normalize(pca.transform(q.vectors)), c.indices, q.indices)

    shipped = load_model(default_classifier_dir())
    for weight in (0.25, 0.5, 1.0):
        e = Embedder.from_model(shipped, probability_weight=weight)
        ec, eq = embed_paths(cat_paths, e, progress=False), embed_paths(q_paths, e, progress=False)
        score(f"lite1 + {weight} x shipped classifier probs", ec.vectors, eq.vectors, ec.indices, eq.indices)
    e = default_embedder()
    ec, eq = embed_paths(cat_paths, e, progress=False), embed_paths(q_paths, e, progress=False)
    score("default_embedder()", ec.vectors, eq.vectors, ec.indices, eq.indices)

    pooled = Embedder.from_backbone(create_backbone("efficientnet_lite1", pool_stages=(2, 3)))
    pc, pq = embed_paths(cat_paths, pooled), embed_paths(q_paths, pooled)
    score("lite1 + pooled stages 2,3 (L2)", pc.vectors, pq.vectors, pc.indices, pq.indices)

    with tempfile.TemporaryDirectory() as tmp:
        for hidden in (512,):
            start = time.perf_counter()
            train(cat, Path(tmp) / f"mlp{hidden}", TrainConfig(hidden=hidden, validation=0.15, progress=False))
            mlp = Embedder.from_model(load_model(Path(tmp) / f"mlp{hidden}"))
            mc, mq = embed_paths(cat_paths, mlp, progress=False), embed_paths(q_paths, mlp, progress=False)
            score(f"MLP-head classifier hidden {hidden} (trained {time.perf_counter() - start:.0f} s)",
                  mc.vectors, mq.vectors, mc.indices, mq.indices)

    best = max(results, key=results.get)
    print(f"\nbest: {best} {results[best]:.4f}; ratio best / lite1 features: "
          f"{results[best] / results['lite1 features (L2)']:.3f}")
    if args.record:
        record("catalog-search", area="Catalogue", title="Similar-item search on clothing-small",
               data=f"catalogue = the {len(cat_paths):,} clothing-small train photos, queries = the {len(q_paths)} "
                    "validation photos", part="validation", issue=None, guide="guides/catalog.md",
               figures=[{"figure": f"Same-class precision@{args.k}, default embedding",
                         "value": round(results["default_embedder()"], 3)}])

    if args.skip_catalog:
        return
    from fashionlens.catalog import Catalog

    from fashionlens.features import extract_features

    subset = cat_paths[:args.throughput]
    backbone = default_embedder().backbone
    extract_features(backbone, subset[:8], use_cache=False, progress=False)  # ONNX session warm-up
    start = time.perf_counter()
    extract_features(backbone, subset, use_cache=False, progress=False)
    backbone_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        catalog = Catalog.open(Path(tmp) / "speed.db")
        start = time.perf_counter()
        catalog.ingest(subset)
        add_s = time.perf_counter() - start
        catalog.close()
    print(f"\n{len(subset)} images: backbone features alone {len(subset) / backbone_s:.1f} images/s, catalog add "
          f"(embedding + category + colours + store + index) {len(subset) / add_s:.1f} images/s; "
          f"ratio add / backbone time {add_s / backbone_s:.2f}")

    with tempfile.TemporaryDirectory() as tmp:
        catalog = Catalog.open(Path(tmp) / "catalog.db")
        start = time.perf_counter()
        report = catalog.ingest(cat_paths, attributes=[{"label": y} for y in cat_y], progress=True)
        add_s = time.perf_counter() - start
        start = time.perf_counter()
        hits = catalog.search(q_paths, top_k=args.k)
        search_s = time.perf_counter() - start
        precision = np.mean([[r.attributes.get("label") == y for r in h.results] for h, y in zip(hits, q_y, strict=True)])
        print(f"\ncatalog (default embedding): added {len(report.added)} in {add_s:.1f} s "
              f"({len(report.added) / add_s:.1f} images/s, with category and colours); "
              f"{len(q_paths)} queries in {search_s:.1f} s; precision@{args.k} {precision:.4f}")
        catalog.close()


if __name__ == "__main__":
    main()
