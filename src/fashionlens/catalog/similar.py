"""Similar catalogue items for each garment of an analysis: added by the layer that holds a catalogue (the
service, `analyze --db`, the Ray batch analysis), so the pipeline itself never imports the catalogue."""

from __future__ import annotations

import contextlib
import time

import numpy as np


def add_similar(analysis, catalog, k: int, same: str | None, lock=None) -> None:
    """Fill each garment's `similar` with the top-`k` catalogue items sharing its best `same` label (one search
    per label; all items where the garment has none), and count the time as the analysis's `search` stage."""
    garments = analysis.items
    if catalog is None or not k or not garments:
        return
    start = time.perf_counter()
    groups: dict[str | None, list[int]] = {}
    for i, g in enumerate(garments):
        best = g.attributes.get(same or "", [])
        groups.setdefault(best[0].label if best else None, []).append(i)
    for value, members in groups.items():
        where = {same: value} if value is not None else None
        with lock or contextlib.nullcontext():
            results = catalog.search(np.stack([garments[i].embedding for i in members]), k, where)
        for i, result in zip(members, results, strict=True):
            garments[i].similar = result.results
    spent = (time.perf_counter() - start) * 1000
    analysis.timings_ms["search"] = spent
    analysis.timings_ms["total"] = analysis.timings_ms.get("total", 0.0) + spent
