"""A catalogue of a million items: query latency with filters, recall@10 against exact search, index memory,
the time to add 10,000 items, and the time to rebuild the index from the store.

Vectors are synthetic but shaped like the real ones: clusters drawn in the principal-component space of the
default embedding of clothing-small (its mean and spectrum), so nearest neighbours mean what they do on real
data, and the filters (category ~10%, category+colour ~1%, a rare brand ~0.1%) are independent of the clusters,
the hard case for an IVF index. Exact top-10 per query (with its filter) is computed while generating.
The catalogue is built once under --cache (minutes) and reused; the add/remove measurement leaves it as it was.
With --text-model (a train-text folder for the default embedding), text queries (`Catalog.search_text`: the words
hashed and projected into the embedding space, then the same index and filters) are timed too.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from dataclasses import replace
from pathlib import Path

import faiss
import numpy as np

from _shared import dataset
from record import add_flag, record
from fashionlens.catalog import Catalog, IndexSettings
from fashionlens.catalog.store import NewItem
from fashionlens.data import read_folder
from fashionlens.embeddings import default_embedder, embed_paths, l2_normalize

CATEGORIES = [f"cat{i}" for i in range(10)]
COLOURS = [f"col{i}" for i in range(10)]
K = 10


def attributes_for(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return rng.integers(0, 10, n), rng.integers(0, 10, n), rng.random(n) < 0.001


class Generator:
    """Clustered vectors in the real embedding's principal-component space."""

    def __init__(self, real: np.ndarray, clusters: int, seed: int):
        self.mean = real.mean(0)
        _, s, vt = np.linalg.svd(real - self.mean, full_matrices=False)
        self.basis = (vt * (s / np.sqrt(len(real)))[:, None]).astype(np.float32)  # rows scaled by std
        rng = np.random.default_rng(seed)
        self.centres = rng.normal(size=(clusters, len(s))).astype(np.float32)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        z = self.centres[rng.integers(0, len(self.centres), n)] + 0.6 * rng.normal(size=(n, len(self.centres[0])))
        return l2_normalize(self.mean + z.astype(np.float32) @ self.basis)


def query_filters(n: int) -> list[dict]:
    kinds = [None, "category", "category+color", "brand"]
    out = []
    for i in range(n):
        kind = kinds[i % 4]
        out.append({} if kind is None else {"category": CATEGORIES[i % 10]} if kind == "category"
                   else {"category": CATEGORIES[i % 10], "color": COLOURS[(i // 4) % 10]} if kind == "category+color"
                   else {"brand": "rare"})
    return out


def matches(where: dict, cats: np.ndarray, cols: np.ndarray, rare: np.ndarray) -> np.ndarray:
    keep = np.ones(len(cats), bool)
    if "category" in where:
        keep &= cats == CATEGORIES.index(where["category"])
    if "color" in where:
        keep &= cols == COLOURS.index(where["color"])
    if "brand" in where:
        keep &= rare
    return keep


def build(folder: Path, n: int, n_queries: int, seed: int, settings: IndexSettings) -> None:
    embedder = default_embedder()
    real = embed_paths([s.path for s in read_folder(dataset("clothing-small")).only_split("train").samples],
                       embedder, progress=False).vectors
    gen = Generator(real, clusters=2000, seed=seed)
    rng = np.random.default_rng(seed + 1)
    queries = gen.sample(rng, n_queries)
    filters = query_filters(n_queries)
    best_scores = np.full((n_queries, K), -np.inf, np.float32)
    best_ids = np.full((n_queries, K), -1, np.int64)
    catalog = Catalog.open(folder / "catalog.db", settings=settings)
    start = time.perf_counter()
    chunk = 20_000
    for first in range(0, n, chunk):
        m = min(chunk, n - first)
        x = gen.sample(rng, m)
        cats, cols, rare = attributes_for(rng, m)
        items = [NewItem(f"synthetic-{first + i}", f"synthetic://{first + i}", x[i],
                         {"category": CATEGORIES[cats[i]], "color": COLOURS[cols[i]],
                          **({"brand": "rare"} if rare[i] else {})}) for i in range(m)]
        added, _, _ = catalog.store.add(items, embedder.key, embedder.dim)
        ids = np.array(list(added.values()))
        scores = queries @ x.T
        for q, where in enumerate(filters):
            keep = matches(where, cats, cols, rare)
            s = np.concatenate([best_scores[q], scores[q, keep]])
            i = np.concatenate([best_ids[q], ids[keep]])
            top = np.argsort(-s, kind="stable")[:K]
            best_scores[q], best_ids[q] = s[top], i[top]
        print(f"\rstored {first + m:,} items ({time.perf_counter() - start:.0f} s)", end="", flush=True)
    print()
    start = time.perf_counter()
    catalog.reindex(progress=True)
    print(f"index built from the store: {time.perf_counter() - start:.0f} s ({catalog._index.factory})")
    catalog.close()
    np.savez(folder / "truth.npz", queries=queries, ids=best_ids, filters=np.array([str(f) for f in filters]),
             centres=gen.centres, mean=gen.mean, basis=gen.basis)


def percentile_ms(values: list[float], p: float) -> float:
    return float(np.percentile(values, p) * 1000)


TEXT_QUERIES = ["men navy blue shirts", "women pink tops", "red dress", "white sports shoes women", "black watch",
                "blue jeans men", "women black handbags", "girls yellow tshirts", "brown belt", "green kurta"]


def text_latency(catalog: Catalog, folder: Path, filters: list[dict], kinds: list[str]) -> None:
    """`search_text`, one query at a time, end to end (words -> query vector, filter, index, item rows)."""
    from fashionlens.text import load_text_model

    model = load_text_model(folder)
    latency: dict[str, list[float]] = {k: [] for k in kinds}
    for q, where in enumerate(filters):
        t = time.perf_counter()
        catalog.search_text([TEXT_QUERIES[q % len(TEXT_QUERIES)]], model, K, where)
        latency[kinds[q % 4]].append(time.perf_counter() - t)
    print("\ntext queries (catalog.search_text), nprobe 16:")
    for kind in kinds:
        print(f"  filter {kind:<22} p50 {percentile_ms(latency[kind], 50):6.2f} ms  p95 "
              f"{percentile_ms(latency[kind], 95):6.2f} ms")
    print(f"  all: p50 {percentile_ms(sum(latency.values(), []), 50):.2f} ms")


FILTER_NAMES = {"none": "no filter", "category (10%)": "category filter", "category+color (1%)": "category + colour filter",
                "brand (0.1%)": "brand filter"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/fashionlens-bench/catalog-million"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--flat-limit", type=int, default=IndexSettings().flat_limit,
                        help="exact index up to this many items (lower it to try the IVF path on a small run)")
    parser.add_argument("--text-model", type=Path, default=None, help="also time text queries with this train-text model")
    add_flag(parser)
    args = parser.parse_args()
    os.environ.setdefault("FASHIONLENS_CACHE", str(Path.home() / ".cache" / "fashionlens"))
    settings = IndexSettings(flat_limit=args.flat_limit)
    folder = args.cache / f"n{args.items}-q{args.queries}-s{args.seed}-f{args.flat_limit}"
    if not (folder / "truth.npz").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("catalog.db*"):
            stale.unlink()
        build(folder, args.items, args.queries, args.seed, settings)
    truth = np.load(folder / "truth.npz")
    queries, true_ids = truth["queries"], truth["ids"]
    filters = query_filters(len(queries))
    kinds = ["none", "category (10%)", "category+color (1%)", "brand (0.1%)"]

    start = time.perf_counter()
    catalog = Catalog.open(folder / "catalog.db", settings=settings)
    index = catalog._ready_index()
    print(f"\n{len(index):,} items, {index.factory}; opened and index loaded in {time.perf_counter() - start:.1f} s; "
          f"index memory {index.memory_bytes() / 2**30:.2f} GiB; process max RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")

    first_use: dict[str, float] = {}
    for q, where in enumerate(filters[:4]):  # the first query of each filter reads its ids from the store
        t = time.perf_counter()
        catalog.search(queries[q:q + 1], K, where)
        first_use[kinds[q % 4]] = time.perf_counter() - t
    for nprobe in (8, 16, 32, index.ivf.nlist if index.ivf else 1):
        latency: dict[str, list[float]] = {k: [] for k in kinds}
        recall: dict[str, list[float]] = {k: [] for k in kinds}
        for q, where in enumerate(filters):
            t = time.perf_counter()
            hits = catalog.search(queries[q:q + 1], K, where, nprobe=nprobe)[0].results
            latency[kinds[q % 4]].append(time.perf_counter() - t)
            truth_set = {int(i) for i in true_ids[q] if i >= 0}
            recall[kinds[q % 4]].append(len({h.id for h in hits} & truth_set) / max(len(truth_set), 1))
        label = "all lists (exhaustive)" if index.ivf and nprobe == index.ivf.nlist else f"nprobe {nprobe}"
        print(f"\n{label}: catalog.search, one query at a time, end to end (filter, index, item rows)")
        for kind in kinds:
            print(f"  filter {kind:<22} p50 {percentile_ms(latency[kind], 50):6.2f} ms  p95 "
                  f"{percentile_ms(latency[kind], 95):6.2f} ms  recall@{K} {np.mean(recall[kind]):.3f}")
        if nprobe == 16:
            default_p50 = percentile_ms(sum(latency.values(), []), 50)
            default = {k: (percentile_ms(latency[k], 50), float(np.mean(recall[k]))) for k in kinds}
    print(f"\nexhaustive / nprobe 16 p50 ratio: {percentile_ms(sum(latency.values(), []), 50) / default_p50:.1f}")
    catalog.settings = replace(settings, query_threads=0)
    faiss_default: list[float] = []
    for q, where in enumerate(filters):
        t = time.perf_counter()
        catalog.search(queries[q:q + 1], K, where)
        faiss_default.append(time.perf_counter() - t)
    print(f"nprobe 16 with FAISS's default threads ({faiss.omp_get_max_threads()}): p50 "
          f"{percentile_ms(faiss_default, 50):.2f} ms, {percentile_ms(faiss_default, 50) / default_p50:.1f}x the "
          f"p50 with query_threads={settings.query_threads}")
    catalog.settings = settings
    print("first query of each filter (reads its ids from the store): "
          + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in first_use.items()))
    if args.text_model:
        text_latency(catalog, args.text_model, filters, kinds)

    rng = np.random.default_rng(args.seed + 7)
    gen_state = truth
    x = l2_normalize(gen_state["mean"] + (gen_state["centres"][rng.integers(0, 2000, 10_000)]
                                          + 0.6 * rng.normal(size=(10_000, gen_state["centres"].shape[1])))
                     .astype(np.float32) @ gen_state["basis"])
    cats, cols, _ = attributes_for(rng, 10_000)
    start = time.perf_counter()
    new = catalog.add_vectors(x, sha256s=[f"added-{i}" for i in range(10_000)],
                              sources=[f"added://{i}" for i in range(10_000)],
                              attributes=[{"category": CATEGORIES[c], "color": COLOURS[k]} for c, k in zip(cats, cols, strict=True)])
    add_s = time.perf_counter() - start
    hit = catalog.search(x[:1], 1)[0].results[0].id
    start = time.perf_counter()
    catalog.remove(new)
    remove_s = time.perf_counter() - start
    start = time.perf_counter()
    catalog._save()
    save_s = time.perf_counter() - start
    catalog.close()
    print(f"\nadd 10,000 items (store + index): {add_s:.1f} s; found the first by its vector: {hit == new[0]}; "
          f"remove them: {remove_s:.1f} s; save the index: {save_s:.1f} s")
    if args.record:
        lowest = min(kinds, key=lambda k: default[k][1])
        record("catalog-million", area="Catalogue", title="One million items",
               data=f"{len(index):,} synthetic {queries.shape[1]:,}-dimension vectors shaped like the real embeddings; "
                    f"{len(queries)} queries", part="speed", issue=None, guide="guides/catalog.md",
               figures=[{"figure": "p50 query, category filter (10% of items)",
                         "value": round(default["category (10%)"][0], 2), "unit": "ms"},
                        {"figure": f"Lowest recall@10 against exact ({FILTER_NAMES[lowest]})",
                         "value": round(default[lowest][1], 3)},
                        {"figure": "Index memory", "value": round(index.memory_bytes() / 2**30, 2), "unit": "GiB"},
                        {"figure": "Adding 10,000 items", "value": round(add_s, 1), "unit": "s"}])


if __name__ == "__main__":
    main()
