"""The vector index of a catalogue (FAISS): exact inner-product search for small catalogues, PCA + IVF with
8-bit scalar quantisation above `flat_limit`, so a million 1280-d embeddings fit in a few hundred MB.

Vectors carry the store's item ids, so adds and deletes update the index in place. Attribute filters arrive as
a `Selection` (a FAISS IDSelector) and are applied while scanning; the number of IVF lists probed grows as the
filter gets more selective (all of them for a very rare value), so a filter never starves the top-k. Candidates are re-scored on the stored full vectors by `Catalog`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import numpy as np

from fashionlens.atomic import atomic_path, write_text_atomic


@dataclass(frozen=True)
class IndexSettings:
    flat_limit: int = 50_000  # up to this many items: exact search on the full vectors
    pca_dims: int = 256  # above it: PCA to this many dimensions (0: keep all) ...
    quantizer: str = "SQ8"  # ... and this FAISS encoding (SQ8: one byte per dimension; Flat: float32)
    nprobe: int = 16  # IVF lists scanned per unfiltered query
    rerank: int = 4  # approximate index: fetch this many times top_k candidates, re-scored on the stored vectors
    train_size: int = 100_000  # vectors the PCA and the IVF centroids are trained on
    query_threads: int = 1  # FAISS threads for a search of fewer than 8 queries (0: FAISS's default); one
    # query is too little work to share: on 2 cores two threads made it about 3x slower
    exact_filter_limit: int = 5_000  # approximate index: a filter matching at most this many items is scored
    # exactly on their stored vectors (kept in memory with the filter) instead of probing most of the lists

    def nlist(self, n: int) -> int:
        """About sqrt(n) lists, a power of two: ~1000 vectors per list at a million."""
        return int(2 ** round(math.log2(max(math.sqrt(n), 16))))

    def factory(self, dim: int, n: int) -> str:
        if n <= self.flat_limit:
            return "IDMap2,Flat"
        pca = f"PCA{self.pca_dims},L2norm," if self.pca_dims and self.pca_dims < dim else ""
        return f"{pca}IVF{self.nlist(n)},{self.quantizer}"


@dataclass
class Selection:
    """Item ids a filter allows, as a FAISS selector (the bitmap is kept alive here for it)."""

    ids: np.ndarray  # sorted int64
    selector: faiss.IDSelector
    bitmap: np.ndarray = field(repr=False)
    vectors: np.ndarray | None = field(default=None, repr=False)  # full vectors of `ids`, for rare filters

    @classmethod
    def of(cls, ids: np.ndarray) -> Selection:
        ids = np.asarray(ids, dtype=np.int64)
        bits = np.zeros(int(ids.max()) + 1 if len(ids) else 1, dtype=bool)
        bits[ids] = True
        bitmap = np.packbits(bits, bitorder="little")
        return cls(ids, faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap)), bitmap)


class VectorIndex:
    def __init__(self, index: faiss.Index, factory: str):
        self.index = index
        self.factory = factory

    @classmethod
    def create(cls, dim: int, n: int, settings: IndexSettings, training: np.ndarray | None = None) -> VectorIndex:
        """An empty index for about `n` vectors; IVF ones are trained on `training` first."""
        factory = settings.factory(dim, n)
        index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
        if not index.is_trained:
            if training is None or len(training) < settings.nlist(n):
                raise ValueError(f"{factory} needs at least {settings.nlist(n)} training vectors")
            index.train(np.ascontiguousarray(training, dtype=np.float32))
        return cls(index, factory)

    @property
    def exact(self) -> bool:
        return self.ivf is None

    @property
    def ivf(self) -> faiss.IndexIVF | None:
        try:
            return faiss.extract_index_ivf(self.index)
        except RuntimeError:
            return None

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def ids(self) -> np.ndarray:
        """Sorted ids of every vector in the index."""
        ivf = self.ivf
        if ivf is None:
            return np.sort(faiss.vector_to_array(faiss.downcast_index(self.index).id_map).astype(np.int64))
        lists = ivf.invlists
        parts = [faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
                 for i in range(ivf.nlist) if lists.list_size(i)]
        return np.sort(np.concatenate(parts).astype(np.int64)) if parts else np.zeros(0, np.int64)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))

    def remove(self, ids: np.ndarray) -> int:
        if not len(ids):
            return 0
        return int(self.index.remove_ids(faiss.IDSelectorBatch(np.asarray(ids, dtype=np.int64))))

    def search(self, queries: np.ndarray, k: int, selection: Selection | None = None, nprobe: int = 16,
               threads: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) [n_queries, k], best first; id -1 where fewer than k items match. `threads` > 0 caps
        FAISS's threads for this search."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if threads > 0:
            default = faiss.omp_get_max_threads()
            faiss.omp_set_num_threads(threads)
            try:
                return self.search(queries, k, selection, nprobe)
            finally:
                faiss.omp_set_num_threads(default)
        ivf = self.ivf
        sel = selection.selector if selection is not None else None
        if ivf is None:
            params = faiss.SearchParameters(sel=sel) if sel is not None else None
        else:
            probes = nprobe
            if selection is not None:  # nprobe / sqrt(share) lists (a 1% filter: 160 of 1024), and at
                # least enough that 8 x k matching vectors are expected in them
                fraction = max(len(selection.ids), 1) / max(len(self), 1)
                enough = 8 * k * ivf.nlist / max(len(selection.ids), 1)
                probes = math.ceil(max(nprobe / math.sqrt(fraction), enough))
            probes = min(ivf.nlist, probes)
            params = faiss.SearchParametersIVF(nprobe=probes, sel=sel)
            if self.index is not ivf:
                params = faiss.SearchParametersPreTransform(index_params=params)
        return self.index.search(queries, k, params=params)

    def memory_bytes(self) -> int:
        return int(faiss.serialize_index(self.index).nbytes)

    def save(self, path: Path, stamp: dict) -> None:
        """Index, then its stamp: a crash in between leaves a stamp that no longer matches, so it is rebuilt."""
        with atomic_path(path) as tmp:
            faiss.write_index(self.index, str(tmp))
        write_text_atomic(stamp_path(path), json.dumps({**stamp, "factory": self.factory, "count": len(self)}))

    @classmethod
    def load(cls, path: Path) -> tuple[VectorIndex, dict] | None:
        stamp_file = stamp_path(path)
        if not path.is_file() or not stamp_file.is_file():
            return None
        try:
            stamp = json.loads(stamp_file.read_text())
            index = faiss.read_index(str(path))
        except (ValueError, RuntimeError):
            return None
        if index.ntotal != stamp.get("count"):
            return None
        return cls(index, stamp["factory"]), stamp


def stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")
