"""How well words find images: text-to-image recall@k of each title's own image, and attribute precision of
queries made of attribute values in the shop's words ("women pink tops": gender, colour, article type)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from fashionlens.text.model import TextModel


@dataclass(frozen=True)
class AttributeQuery:
    text: str  # the values joined, lower case: "men navy blue shirts"
    target: dict[str, str]  # column -> value every hit should have


def attribute_queries(attributes: list[dict[str, str | None]], columns: list[str],
                      min_items: int = 10) -> list[AttributeQuery]:
    """One query per combination of the columns' values held by at least `min_items` items (so a perfect top
    10 exists), in the order of the columns."""
    combos = Counter(tuple(a.get(c) for c in columns) for a in attributes)
    return [AttributeQuery(" ".join(values).lower(), dict(zip(columns, values, strict=True)))
            for values, n in sorted(combos.items(), key=lambda kv: (-kv[1], kv[0]))
            if n >= min_items and all(values)]


def match_fractions(found: list[list[dict[str, str | None]]], queries: list[AttributeQuery]) -> dict:
    """Over the queries: the mean fraction of each query's hits (their attributes, best first) that match all of
    its values, and each value alone."""
    if not queries:
        return {"queries": 0}
    columns = list(queries[0].target)
    every, each = [], {c: [] for c in columns}
    for hits, query in zip(found, queries, strict=True):
        if not hits:
            every.append(0.0)
            for c in columns:
                each[c].append(0.0)
            continue
        same = np.array([[_same(h.get(c), query.target[c]) for c in columns] for h in hits])
        every.append(float(same.all(axis=1).mean()))
        for j, c in enumerate(columns):
            each[c].append(float(same[:, j].mean()))
    return {"queries": len(queries), "all": float(np.mean(every)), **{c: float(np.mean(v)) for c, v in each.items()}}


def _same(value: str | None, wanted: str) -> bool:
    return value is not None and value.strip().lower() == wanted.strip().lower()


def attribute_precision(model: TextModel, embeddings: np.ndarray, attributes: list[dict[str, str | None]],
                        columns: list[str], k: int = 10, min_items: int = 10) -> dict:
    """`match_fractions` of the top `k` items among `embeddings` for each attribute query."""
    queries = attribute_queries(attributes, columns, min_items)
    if not queries:
        return {"queries": 0}
    scores = model.image_vectors(embeddings) @ model.text_vectors([q.text for q in queries])[0].T
    top = np.argsort(-scores, axis=0, kind="stable")[:k].T
    return match_fractions([[attributes[i] for i in row] for row in top], queries)


def recall_at_k(model: TextModel, embeddings: np.ndarray, titles: list[str], sha256s: list[str], k: int = 10) -> dict:
    """Share of titles whose own image (or a byte-identical copy) is among the top `k` of `embeddings`; titles
    with no word the model knows count as misses."""
    vectors, parsed = model.text_vectors(titles)
    scores = model.image_vectors(embeddings) @ vectors.T
    top = np.argsort(-scores, axis=0, kind="stable")[:k].T
    shas = np.array(sha256s)
    hits = [bool(p.words) and sha256s[i] in set(shas[row]) for i, (row, p) in enumerate(zip(top, parsed, strict=True))]
    return {f"recall@{k}": float(np.mean(hits)) if hits else 0.0, "titles": len(titles),
            "gallery": len(embeddings), "no_known_word": sum(not p.words for p in parsed)}
