"""Exact and near-duplicate images: byte-identical files, and copies re-encoded, resized, cropped, flipped or
recoloured.

Two near-duplicate signals, each found through an index so that 100k images need no all-pairs Python loop:
the perceptual hash (64-bit DCT hash; FAISS binary index, Hamming radius, the mirror image's hash too so that
flips match) and the backbone embedding (FAISS exact inner product; cosine of L2-normalised vectors). A pair is
a near duplicate when either signal is within its threshold. A reported group is an image with the images
linked to it directly, not the transitive closure, which a few false links chain into one huge group.
The thresholds were calibrated on real photos by benchmarks/dedup_calibrate.py, with embeddings of the
default backbone (efficientnet_lite1); another embedding space needs its own cosine threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components

from fashionlens.data.samples import SkippedInput
from fashionlens.fingerprints import flipped_perceptual_hash, hash_codes, perceptual_hash, sha256_bytes
from fashionlens.images import ImageError, is_image_file, load_image
from fashionlens.progress import progress_bar

EXACT, NEAR = "exact", "near"


@dataclass(frozen=True)
class Thresholds:
    max_hamming: int = 6
    """Perceptual-hash bits (of 64) that may differ, the flipped hash included."""
    min_cosine: float = 0.87
    """Embedding cosine at or above which two images are the same picture."""


DEFAULT_THRESHOLDS = Thresholds()


@dataclass
class Fingerprints:
    """What duplicate search needs per image, in one order; the catalogue stores sha256, phash and vectors."""

    sha256: list[str]
    phash: list[str | None]  # 16 hex digits, None where unknown
    phash_flipped: list[str | None] | None = None  # hash of the mirror image; finds flips without embeddings
    vectors: np.ndarray | None = None  # float32 [n, dim], unit length (fashionlens.embeddings)

    def __post_init__(self):
        n = len(self.sha256)
        if len(self.phash) != n or (self.phash_flipped is not None and len(self.phash_flipped) != n) or (
                self.vectors is not None and len(self.vectors) != n):
            raise ValueError(f"fingerprints disagree in length: {n} sha256 values but {len(self.phash)} hashes, "
                             f"{None if self.phash_flipped is None else len(self.phash_flipped)} flipped hashes, "
                             f"{None if self.vectors is None else len(self.vectors)} vectors")


@dataclass(frozen=True)
class DuplicateGroup:
    kind: str  # "exact": all byte-identical; "near": at least two different files of one picture
    members: list[int]  # positions in the fingerprints, ascending


@dataclass(frozen=True)
class DuplicateSet:
    kind: str
    images: list[str]


@dataclass
class DuplicateReport:
    groups: list[DuplicateSet]
    images: int  # images read
    failures: list[SkippedInput] = field(default_factory=list)


def _hash_pairs(phash: list[str | None], queries: list[str | None], max_hamming: int) -> np.ndarray:
    import faiss

    known = [i for i, h in enumerate(phash) if h]
    asked = [i for i, h in enumerate(queries) if h]
    if not known or not asked:
        return np.zeros((0, 2), dtype=np.int64)
    index = faiss.IndexBinaryFlat(64)
    index.add(hash_codes([phash[i] for i in known]))
    lims, _, found = index.range_search(hash_codes([queries[i] for i in asked]), max_hamming + 1)  # radius is exclusive
    rows = np.repeat(np.array(asked), np.diff(lims).astype(np.int64))
    return np.stack([rows, np.array(known)[found]], axis=1)


def _vector_pairs(vectors: np.ndarray, min_cosine: float) -> np.ndarray:
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    lims, _, found = index.range_search(vectors, min_cosine - 1e-6)  # keeps inner products above the radius
    rows = np.repeat(np.arange(len(vectors)), np.diff(lims).astype(np.int64))
    return np.stack([rows, found], axis=1)


def near_pairs(fingerprints: Fingerprints, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> np.ndarray:
    """Every pair (i < j) of different images linked by either signal, as int64 [m, 2]."""
    fp = fingerprints
    found = [_hash_pairs(fp.phash, fp.phash, thresholds.max_hamming)]
    if fp.phash_flipped is not None:
        found.append(_hash_pairs(fp.phash, fp.phash_flipped, thresholds.max_hamming))
    if fp.vectors is not None and len(fp.vectors):
        found.append(_vector_pairs(fp.vectors, thresholds.min_cosine))
    pairs = np.concatenate(found).astype(np.int64)
    pairs = np.sort(pairs[pairs[:, 0] != pairs[:, 1]], axis=1)
    return np.unique(pairs, axis=0) if len(pairs) else pairs.reshape(0, 2)


def _star_labels(graph: csr_matrix) -> np.ndarray:
    """Greedy star clustering: the best-connected image not yet grouped takes its ungrouped direct neighbours."""
    labels = np.full(graph.shape[0], -1, dtype=np.int64)
    for node in np.argsort(-np.diff(graph.indptr), kind="stable"):
        if labels[node] < 0:
            neighbours = graph.indices[graph.indptr[node]:graph.indptr[node + 1]]
            labels[neighbours[labels[neighbours] < 0]] = node
            labels[node] = node
    return labels


def group_labels(fingerprints: Fingerprints, thresholds: Thresholds = DEFAULT_THRESHOLDS, *,
                 transitive: bool = False) -> np.ndarray:
    """A group id per image. Byte-identical files always share one. Near duplicates: with `transitive`, whole
    connected components (splits: no chain of copies may straddle two splits); without, each group is one image
    and those linked to it directly, so that a few false links cannot chain look-alikes into one huge group."""
    _, node = np.unique(np.array(fingerprints.sha256, dtype=object), return_inverse=True)
    node = node.reshape(-1)
    pairs = node[near_pairs(fingerprints, thresholds)]
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    n = int(node.max()) + 1 if len(node) else 0
    graph = coo_matrix((np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n, n)).tocsr()
    graph = ((graph + graph.T) > 0).tocsr()
    labels = connected_components(graph, directed=False)[1] if transitive else _star_labels(graph)
    return labels[node]


def group_fingerprints(fingerprints: Fingerprints, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> list[DuplicateGroup]:
    """Groups of two or more images, each image in at most one group, largest first."""
    labels = group_labels(fingerprints, thresholds)
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    groups = []
    for members in np.split(order, bounds):
        if len(members) > 1:
            kind = EXACT if len({fingerprints.sha256[i] for i in members}) == 1 else NEAR
            groups.append(DuplicateGroup(kind, sorted(int(i) for i in members)))
    return sorted(groups, key=lambda g: (-len(g.members), g.members[0]))


def image_files(paths: list[str | Path]) -> list[Path]:
    """Files as given; folders searched recursively for image files, in sorted order."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if is_image_file(p))
        else:
            files.append(path)
    return files


def hash_images(paths: list[Path], *, progress: bool = True) -> tuple[list[int], Fingerprints, list[SkippedInput]]:
    """sha256, perceptual hash and mirrored hash of every readable image (positions in `paths`), and failures."""
    kept, sha, ph, flipped, failures = [], [], [], [], []
    with progress_bar("fingerprints", len(paths), progress) as advance:
        for i, path in enumerate(paths):
            try:
                data = path.read_bytes()
                image = load_image(data, name=str(path), min_size=64)
            except ImageError as exc:
                failures.append(SkippedInput(str(path), exc.reason))
            except OSError as exc:
                failures.append(SkippedInput(str(path), f"cannot read ({exc.strerror or exc})"))
            else:
                kept.append(i)
                sha.append(sha256_bytes(data))
                ph.append(perceptual_hash(image))
                flipped.append(flipped_perceptual_hash(image))
            advance()
    return kept, Fingerprints(sha, ph, flipped), failures


def find_duplicates(
    paths: list[str | Path],
    *,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    embeddings: bool = True,
    backbone: str = "efficientnet_lite1",
    progress: bool = True,
) -> DuplicateReport:
    """Exact and near-duplicate groups among the images in `paths` (files, or folders searched recursively).

    Unreadable files are reported in `failures` and the rest go on. `embeddings=False` uses the perceptual
    hash alone: much faster, and it misses most cropped and recoloured copies.
    """
    files = image_files(paths)
    kept, fingerprints, failures = hash_images(files, progress=progress)
    if embeddings and kept:
        from fashionlens.embeddings import embed_paths

        embedded = embed_paths([files[i] for i in kept], backbone, progress=progress)
        failures += embedded.failures  # readable for hashing but not for the backbone
        keep = embedded.indices
        kept = [kept[i] for i in keep]
        fingerprints = Fingerprints([fingerprints.sha256[i] for i in keep], [fingerprints.phash[i] for i in keep],
                                    [fingerprints.phash_flipped[i] for i in keep], embedded.vectors)
    groups = [DuplicateSet(g.kind, [str(files[kept[i]]) for i in g.members])
              for g in group_fingerprints(fingerprints, thresholds)]
    return DuplicateReport(groups, len(kept), sorted(failures, key=lambda f: f.source))
