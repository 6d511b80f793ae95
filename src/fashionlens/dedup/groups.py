"""Finding the groups: candidate pairs from the cheap stage, verified pairs, and the groups they make (the
package's docstring tells the whole method)."""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from fashionlens.data.samples import SkippedInput
from fashionlens.dedup.signature import SIGNATURE_DIM, signature
from fashionlens.dedup.verify import DEFAULT_RULE, NO_MATCH, WORK_SIDE, CopyRule, Picture, Verification, verify_pair
from fashionlens.fingerprints import flipped_perceptual_hash, hash_codes
from fashionlens.images import ImageError, is_image_file, load_image
from fashionlens.progress import progress_bar

EXACT, NEAR = "exact", "near"


@dataclass(frozen=True)
class Thresholds:
    max_hamming: int = 6
    """Perceptual-hash bits (of 64) that may differ, the flipped hash included."""
    min_cosine: float = 0.87
    """Embedding cosine at or above which two images are the same picture (above 1: not used)."""
    min_signature: float = 2.0
    """Signature inner product at or above which a pair is a candidate (above 1: the signature is not used)."""
    neighbours: int = 8
    """Candidates per image from the signature: its nearest neighbours above `min_signature`."""
    vector_neighbours: int = 0
    """Candidates per image from the embedding: its nearest neighbours above `min_neighbour_cosine`, whatever
    `min_cosine` says (a half crop or a greyscale turn keeps its original among its nearest, not above 0.85)."""
    min_neighbour_cosine: float = 2.0
    far_hamming: int = 64
    """Hash pairs more than this many bits apart are candidates only where the embeddings agree too (cosine at or
    above `far_min_cosine`; without embeddings, every pair within `max_hamming`): a catalogue's thumbnails on white
    crowd the hash's wide radius with look-alikes, while a copy that far apart in the hash (a crop, a turn, an
    export's colour change) comes through the signature or embedding neighbours."""
    far_min_cosine: float = -1.0


DEFAULT_THRESHOLDS = Thresholds()
"""Unverified links (a catalogue's near copies, `dedup --no-verify`): either signal alone decides."""
CANDIDATES = Thresholds(max_hamming=10, min_cosine=0.85, min_signature=0.94, neighbours=8, vector_neighbours=8,
                        min_neighbour_cosine=0.5, far_hamming=2, far_min_cosine=0.95)
"""The cheap stage before verification: loose, since a verified pair must first be a candidate. Beyond 2 hash
bits a pair also needs the embeddings' cosine of 0.95 (chosen on benchmarks/copy_candidates.py's halves A: no
set's groups lose a pair; fashion-products' candidates for a split fall from 354,890 to 98,438)."""
TOO_SMALL_TO_VERIFY = Thresholds(max_hamming=2, min_cosine=0.95)
"""Links a candidate pair with an image too small to verify (a thumbnail shrunk further). On half B of
benchmarks/dedup_calibrate.py's sets: 282 true links and no false one among the near set's copies, 299 true and
2 false among the models set's look-alikes, where 4 bits or 0.93 made 333 and 19."""


@dataclass
class Fingerprints:
    """What duplicate search needs per image, in one order; the catalogue stores sha256, phash and vectors."""

    sha256: list[str]
    phash: list[str | None]  # 16 hex digits, None where unknown
    phash_flipped: list[str | None] | None = None  # hash of the mirror image; finds flips without embeddings
    vectors: np.ndarray | None = None  # float32 [n, dim], unit length (fashionlens.embeddings)
    signatures: np.ndarray | None = None  # float32 [n, SIGNATURE_DIM], unit length (dedup.signature)

    def __post_init__(self):
        n = len(self.sha256)
        sizes = {"hashes": self.phash, "flipped hashes": self.phash_flipped, "vectors": self.vectors,
                 "signatures": self.signatures}
        if any(v is not None and len(v) != n for v in sizes.values()):
            raise ValueError(f"fingerprints disagree in length: {n} sha256 values but "
                             + ", ".join(f"{None if v is None else len(v)} {k}" for k, v in sizes.items()))

    def subset(self, rows: list[int]) -> Fingerprints:
        def pick(values):
            return None if values is None else [values[i] for i in rows]

        return Fingerprints(pick(self.sha256), pick(self.phash), pick(self.phash_flipped),
                            None if self.vectors is None else self.vectors[rows],
                            None if self.signatures is None else self.signatures[rows])


@dataclass(frozen=True)
class DuplicateGroup:
    kind: str  # "exact": all byte-identical; "near": at least two different files of one picture
    members: list[int]  # positions in the fingerprints: ascending (covering_groups: the image linked to all first)


@dataclass(frozen=True)
class DuplicateSet:
    kind: str
    images: list[str]


@dataclass
class DuplicateReport:
    groups: list[DuplicateSet]
    images: int  # images read
    failures: list[SkippedInput] = field(default_factory=list)


def _hash_pairs(phash: list[str | None], queries: list[str | None], max_hamming: int) -> tuple[np.ndarray, np.ndarray]:
    """(pairs within `max_hamming` bits, the bits apart of each)."""
    import faiss

    known = [i for i, h in enumerate(phash) if h]
    asked = [i for i, h in enumerate(queries) if h]
    if not known or not asked:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0, np.int64)
    index = faiss.IndexBinaryFlat(64)
    index.add(hash_codes([phash[i] for i in known]))
    lims, bits, found = index.range_search(hash_codes([queries[i] for i in asked]), max_hamming + 1)  # radius is exclusive
    rows = np.repeat(np.array(asked), np.diff(lims).astype(np.int64))
    return np.stack([rows, np.array(known)[found]], axis=1), bits.astype(np.int64)


def _hash_candidates(fp: Fingerprints, queries: list[str | None], thresholds: Thresholds) -> np.ndarray:
    """Pairs within the hash's radius, those beyond `far_hamming` bits only where the embeddings agree too."""
    pairs, bits = _hash_pairs(fp.phash, queries, thresholds.max_hamming)
    far = bits > thresholds.far_hamming
    if fp.vectors is None or not len(fp.vectors) or not far.any():
        return pairs
    keep = ~far
    keep[far] = _cosines(fp.vectors, pairs[far]) >= thresholds.far_min_cosine
    return pairs[keep]


def _cosines(vectors: np.ndarray, pairs: np.ndarray, chunk: int = 16384) -> np.ndarray:
    """Inner product of each pair's unit vectors, a chunk of pairs at a time (a catalogue's hundreds of thousands of
    pairs of 1,280 floats would not fit in memory at once)."""
    out = np.empty(len(pairs), np.float32)
    for start in range(0, len(pairs), chunk):
        a, b = pairs[start:start + chunk].T
        out[start:start + chunk] = np.einsum("ij,ij->i", vectors[a], vectors[b])
    return out


def _vector_pairs(vectors: np.ndarray, min_cosine: float) -> np.ndarray:
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    lims, _, found = index.range_search(vectors, min_cosine - 1e-6)  # keeps inner products above the radius
    rows = np.repeat(np.arange(len(vectors)), np.diff(lims).astype(np.int64))
    return np.stack([rows, found], axis=1)


def _neighbour_pairs(vectors: np.ndarray, neighbours: int, min_inner: float) -> np.ndarray:
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    inner, found = index.search(vectors, min(neighbours + 1, len(vectors)))  # +1: each image finds itself
    keep = (inner >= min_inner) & (found >= 0)
    rows = np.repeat(np.arange(len(vectors)), found.shape[1]).reshape(found.shape)
    return np.stack([rows[keep], found[keep]], axis=1)


def near_pairs(fingerprints: Fingerprints, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> np.ndarray:
    """Every pair (i < j) of different images linked by any signal, as int64 [m, 2]."""
    fp = fingerprints
    found = [_hash_candidates(fp, fp.phash, thresholds)]
    if fp.phash_flipped is not None:
        found.append(_hash_candidates(fp, fp.phash_flipped, thresholds))
    if fp.vectors is not None and len(fp.vectors):
        if thresholds.min_cosine <= 1:
            found.append(_vector_pairs(fp.vectors, thresholds.min_cosine))
        if thresholds.vector_neighbours:
            found.append(_neighbour_pairs(fp.vectors, thresholds.vector_neighbours, thresholds.min_neighbour_cosine))
    if fp.signatures is not None and len(fp.signatures) and thresholds.min_signature <= 1:
        found.append(_neighbour_pairs(fp.signatures, thresholds.neighbours, thresholds.min_signature))
    pairs = np.concatenate(found).astype(np.int64)
    pairs = np.sort(pairs[pairs[:, 0] != pairs[:, 1]], axis=1)
    return np.unique(pairs, axis=0) if len(pairs) else pairs.reshape(0, 2)


@dataclass(frozen=True)
class _Graph:
    """Undirected links between nodes, as CSR arrays: node v's neighbours are indices[indptr[v]:indptr[v + 1]]."""

    indptr: np.ndarray
    indices: np.ndarray

    @classmethod
    def from_pairs(cls, pairs: np.ndarray, n: int) -> _Graph:
        both = np.unique(np.concatenate([pairs, pairs[:, ::-1]]).reshape(-1, 2), axis=0)  # sorted by node, once each
        return cls(np.concatenate([[0], np.cumsum(np.bincount(both[:, 0], minlength=n))]), both[:, 1])

    @property
    def size(self) -> int:
        return len(self.indptr) - 1

    def neighbours(self, node: int) -> np.ndarray:
        return self.indices[self.indptr[node]:self.indptr[node + 1]]

    def components(self) -> np.ndarray:
        """A component id per node (int32), numbered in the order of each component's lowest node, as scipy's
        connected_components gives them: each node points towards the lowest node it is linked to until nothing
        changes."""
        root = np.arange(self.size)
        tail = np.repeat(root, np.diff(self.indptr))
        while True:
            low = np.minimum(root[tail], root[self.indices])
            hooked = root.copy()
            np.minimum.at(hooked, root[tail], low)
            while not np.array_equal(hooked, hooked[hooked]):
                hooked = hooked[hooked]
            if np.array_equal(hooked, root):
                return np.unique(root, return_inverse=True)[1].astype(np.int32)
            root = hooked


    def reverse_cuthill_mckee(self) -> np.ndarray:
        """The nodes in reverse Cuthill-McKee order (breadth first from each component's least-linked node, the
        least-linked neighbours first): linked nodes end up close together."""
        degree = np.diff(self.indptr)
        seen = np.zeros(self.size, bool)
        order: list[int] = []
        for start in np.argsort(degree, kind="stable").tolist():
            if seen[start]:
                continue
            seen[start] = True
            queue = deque([start])
            while queue:
                node = queue.popleft()
                order.append(node)
                ahead = self.neighbours(node)
                ahead = ahead[~seen[ahead]]
                seen[ahead] = True
                queue.extend(ahead[np.argsort(degree[ahead], kind="stable")].tolist())
        return np.asarray(order[::-1], np.int64)


class _Joined:
    """Which nodes are joined so far (union-find with path halving)."""

    def __init__(self, n: int):
        self.parent = list(range(n))

    def root(self, node: int) -> int:
        parent = self.parent
        while parent[node] != node:
            parent[node] = node = parent[parent[node]]
        return node

    def merge(self, a: int, b: int) -> None:
        self.parent[self.root(a)] = self.root(b)

    def connected(self, a: int, b: int) -> bool:
        return self.root(a) == self.root(b)


def _star_labels(graph: _Graph) -> np.ndarray:
    """Greedy star clustering: the best-connected image not yet grouped takes its ungrouped direct neighbours."""
    labels = np.full(graph.size, -1, dtype=np.int64)
    for node in np.argsort(-np.diff(graph.indptr), kind="stable"):
        if labels[node] < 0:
            neighbours = graph.neighbours(node)
            labels[neighbours[labels[neighbours] < 0]] = node
            labels[node] = node
    return labels


def _link_graph(fingerprints: Fingerprints, thresholds: Thresholds,
                pairs: np.ndarray | None) -> tuple[np.ndarray, _Graph]:
    """(node per image, graph of links between nodes): byte-identical files are one node."""
    _, node = np.unique(np.array(fingerprints.sha256, dtype=object), return_inverse=True)
    node = node.reshape(-1)
    links = near_pairs(fingerprints, thresholds) if pairs is None else np.asarray(pairs, np.int64).reshape(-1, 2)
    pairs = node[links]
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    return node, _Graph.from_pairs(pairs, int(node.max()) + 1 if len(node) else 0)


def group_labels(fingerprints: Fingerprints, thresholds: Thresholds = DEFAULT_THRESHOLDS, *,
                 transitive: bool = False, pairs: np.ndarray | None = None) -> np.ndarray:
    """A group id per image. Byte-identical files always share one. Near duplicates: with `transitive`, whole
    connected components (splits: no chain of copies may straddle two splits); without, each group is one image
    and those linked to it directly, so that a few false links cannot chain look-alikes into one huge group.
    `pairs` (positions [m, 2], e.g. verified copies) replaces the links the thresholds would make."""
    node, graph = _link_graph(fingerprints, thresholds, pairs)
    labels = graph.components() if transitive else _star_labels(graph)
    return labels[node]


def covering_groups(fingerprints: Fingerprints, pairs: np.ndarray) -> list[DuplicateGroup]:
    """Groups that together hold every link in `pairs` (and every set of byte-identical files): each is one
    image first, then every image linked to it directly, so an image can be in several groups. An audit needs
    this: a copy filed under another label must share a group with the image it copies, while chaining the
    links (connected components) would join look-alikes through the few false ones. Best-linked image first,
    until every linked pair shares a group; largest groups first."""
    node, graph = _link_graph(fingerprints, DEFAULT_THRESHOLDS, pairs)
    files = [[] for _ in range(graph.size)]
    for i, v in enumerate(node.tolist()):
        files[v].append(i)
    linked = [set(graph.neighbours(v).tolist()) for v in range(graph.size)]
    open_links = [set(s) for s in linked]  # links whose two ends share no group yet
    heap = [(-len(s), v) for v, s in enumerate(open_links) if s]
    heapq.heapify(heap)
    stars = []
    while heap:
        size, centre = heapq.heappop(heap)
        if -size != len(open_links[centre]):  # stale: some of its links were covered since
            if open_links[centre]:
                heapq.heappush(heap, (-len(open_links[centre]), centre))
            continue
        members = [centre] + sorted(linked[centre])
        together = set(members)
        for v in members:
            open_links[v] -= together
        stars.append(members)
    stars += [[v] for v in range(graph.size) if not linked[v] and len(files[v]) > 1]
    groups = [DuplicateGroup(EXACT if len(star) == 1 else NEAR, [i for v in star for i in files[v]]) for star in stars]
    return sorted(groups, key=lambda g: (-len(g.members), g.members[0]))


def group_fingerprints(fingerprints: Fingerprints, thresholds: Thresholds = DEFAULT_THRESHOLDS,
                       pairs: np.ndarray | None = None, *, transitive: bool = False) -> list[DuplicateGroup]:
    """Groups of two or more images, each image in at most one group, largest first (`group_labels`)."""
    labels = group_labels(fingerprints, thresholds, transitive=transitive, pairs=pairs)
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


VERIFICATION_CACHE_KEY = "copy-verification-v7"  # per pair of sha256s: what verify_pair measured, rule applied on read
# (v7: greyscale told by the smoothed picture's chroma, and an export's colour change measured, so a pair that
# earlier rows reject may now pass: none is reused)


def verified_pairs(paths: list[Path], candidates: np.ndarray, rule: CopyRule = DEFAULT_RULE, *,
                   fallback: np.ndarray | None = None, progress: bool = True, cache=None,
                   sha256: list[str] | None = None, components: bool = False) -> np.ndarray:
    """The candidate pairs (positions in `paths`) that verification confirms as copies, int64 [m, 2]. A pair
    with a picture too small to verify (dedup.verify.MIN_SIDE) is kept where `fallback` (a mask over the
    candidates: the unverified thresholds) links it. Each image is read once while its pairs are checked; one
    that cannot be read again confirms nothing. With a feature `cache` (and each path's `sha256`), a pair
    verified before is not read again: the measurements are cached, the rule is applied to them here. Each pair
    is measured from the image with the smaller sha256 to the other (the measurement is directional), so a pair
    gets the same verdict whichever order it comes in.

    With `components` only the connected components of the copies are wanted (a split's groups, `dedup`'s): a
    pair whose two images confirmed pairs (or equal sha256s) already join is left unverified and unreturned, and
    the `fallback` pairs, the likeliest copies, are checked first so that they join their families early. The
    order is fixed by the candidates, so a second run with the cache skips the same pairs and reads no image."""
    candidates = np.asarray(candidates, np.int64).reshape(-1, 2)
    fallback = np.zeros(len(candidates), bool) if fallback is None else np.asarray(fallback, bool)
    keys = [_pair_key(sha256[a], sha256[b]) for a, b in candidates.tolist()] if cache is not None else []
    known = cache.features(VERIFICATION_CACHE_KEY, keys) if cache is not None else {}

    @lru_cache(maxsize=2048)
    def picture(i: int) -> Picture | None:
        try:
            return Picture(load_image(paths[i], min_size=WORK_SIDE))
        except ImageError:
            return None

    joined = _Joined(len(paths))
    if components and sha256 is not None:
        first_of: dict[str, int] = {}
        for i, sha in enumerate(sha256):
            joined.merge(first_of.setdefault(sha, i), i)
    confirmed = np.zeros(len(candidates), bool)
    measured: list[tuple[str, np.ndarray]] = []
    order = _verification_order(candidates, fallback if components else None, len(paths))
    cached = np.array([key in known for key in keys], bool) if keys else np.zeros(len(candidates), bool)
    with progress_bar("verifying candidate pairs", int((~cached).sum()), progress) as advance:
        for k in order.tolist():
            if not cached[k]:
                advance()
            a, b = candidates[k].tolist()
            if components and joined.connected(a, b):
                continue
            if keys and keys[k] in known:
                confirmed[k] = _passes(known[keys[k]], rule, fallback[k])
            else:
                if sha256 is not None and sha256[a] > sha256[b]:
                    a, b = b, a
                first, second = picture(a), picture(b)
                if first is not None and second is not None:
                    verifiable = first.verifiable and second.verifiable
                    v = verify_pair(first, second) if verifiable else NO_MATCH
                    row = np.array([verifiable, *v.row()], np.float32)
                    confirmed[k] = _passes(row, rule, fallback[k])
                    if keys:
                        measured.append((keys[k], row))
                        known[keys[k]] = row  # byte-identical files give several candidates one key: measured once
                if len(measured) >= 1024:  # a killed run keeps what it verified
                    cache.put_vectors(VERIFICATION_CACHE_KEY, measured)
                    measured = []
            if confirmed[k]:
                joined.merge(a, b)
    if measured:
        cache.put_vectors(VERIFICATION_CACHE_KEY, measured)
    found = candidates[confirmed]
    return found[np.lexsort((found[:, 1], found[:, 0]))]


def _verification_order(candidates: np.ndarray, first: np.ndarray | None, n: int) -> np.ndarray:
    """Positions of the candidates in the order they are verified: the `first` ones, then the rest, each part by
    its images' reverse Cuthill-McKee ranks, so that the pictures of linked images are prepared close together
    and the picture cache holds them (on fashion-products' 98,000 candidates: 25,000 pictures prepared instead
    of 54,000 in index order)."""
    if not len(candidates):
        return np.zeros(0, np.int64)
    rank = np.empty(n, np.int64)
    rank[_Graph.from_pairs(candidates, n).reverse_cuthill_mckee()] = np.arange(n)
    ranked = np.sort(rank[candidates], axis=1)
    tier = np.zeros(len(candidates), np.int8) if first is None else (~first).astype(np.int8)
    return np.lexsort((ranked[:, 1], ranked[:, 0], tier))


def _pair_key(a: str, b: str) -> str:
    return f"{min(a, b)}:{max(a, b)}"


def _passes(row: np.ndarray, rule: CopyRule, fallback: bool) -> bool:
    """A cached verification row (verifiable, then Verification.row()) judged by `rule`."""
    if not row[0]:
        return bool(fallback)
    return Verification.from_row(row[1:]).passes(rule)


def copy_pairs(paths: list[Path], fingerprints: Fingerprints, thresholds: Thresholds = CANDIDATES,
               rule: CopyRule | None = DEFAULT_RULE, *, progress: bool = True, cache=None,
               candidates: np.ndarray | None = None, components: bool = False) -> np.ndarray:
    """Pairs of positions that are copies of one picture: candidates of the cheap stage (and any `candidates`
    found elsewhere, e.g. an embedding search already made), verified unless `rule` is None (with a feature
    `cache`, each pair once). Byte-identical files need no verification and are left to the grouping. With
    `components`, enough pairs to join every group of copies, not every pair (`verified_pairs`)."""
    found = near_pairs(fingerprints, thresholds)
    if candidates is not None and len(candidates):
        found = np.unique(np.concatenate([found, np.sort(np.asarray(candidates, np.int64), axis=1)]), axis=0)
    same = np.array([fingerprints.sha256[a] == fingerprints.sha256[b] for a, b in found.tolist()], bool)
    found = found[~same] if len(found) else found
    if rule is None:
        return found
    return verified_pairs(paths, found, rule, fallback=linked_by(found, fingerprints, TOO_SMALL_TO_VERIFY),
                          progress=progress, cache=cache, sha256=fingerprints.sha256, components=components)


def linked_by(candidates: np.ndarray, fingerprints: Fingerprints, thresholds: Thresholds) -> np.ndarray:
    """Mask over `candidates`: the pairs that the (unverified) thresholds link."""
    linked = near_pairs(fingerprints, thresholds)
    known = set(map(tuple, linked.tolist()))
    return np.array([pair in known for pair in map(tuple, candidates.tolist())], bool)


SIGNATURE_CACHE_KEY = "copy-signature-v1"  # signatures sit in the feature cache as a model of their own
MIRRORED_HASH_CACHE_KEY = "copy-mirrored-phash-v1"  # the mirror image's hash, as 64 bits of 0.0 or 1.0


def cached_fingerprints(paths: list[Path], sha256s: list[str], phashes: list[str | None], cache, *,
                        progress: bool = True) -> tuple[list[int], Fingerprints, list[SkippedInput]]:
    """(positions kept, their fingerprints with signatures and mirrored hashes, failures) for images whose sha256
    and perceptual hash the feature cache already holds. The rest is cached too, so a second run reads no image
    for the cheap stage; an image read for the first time is decoded once for both."""
    signatures = cache.features(SIGNATURE_CACHE_KEY, list(sha256s))
    mirrored = {sha: _bits_hex(bits) for sha, bits in cache.features(MIRRORED_HASH_CACHE_KEY, list(sha256s)).items()}
    todo = [i for i, sha in enumerate(sha256s) if sha not in signatures or sha not in mirrored]
    failures = []
    with progress_bar("copy signatures", len(todo), progress and bool(todo)) as advance:
        for start in range(0, len(todo), 256):
            new_signatures, new_mirrored = [], []
            for i in todo[start:start + 256]:
                try:
                    image = load_image(paths[i], min_size=64)
                except ImageError as error:  # read once already by the features: a file gone or changed since
                    failures.append(SkippedInput(str(paths[i]), str(error)))
                    image = None
                if image is not None:
                    new_signatures.append((sha256s[i], phashes[i], signature(image)))
                    new_mirrored.append((sha256s[i], _hex_bits(flipped_perceptual_hash(image))))
                advance()
            cache.put(SIGNATURE_CACHE_KEY, new_signatures)
            cache.put_vectors(MIRRORED_HASH_CACHE_KEY, new_mirrored)
            signatures.update({sha: vec for sha, _, vec in new_signatures})
            mirrored.update({sha: _bits_hex(bits) for sha, bits in new_mirrored})
    rows = [i for i, sha in enumerate(sha256s) if sha in signatures and sha in mirrored]
    fingerprints = Fingerprints([sha256s[i] for i in rows], [phashes[i] for i in rows],
                                [mirrored[sha256s[i]] for i in rows],
                                signatures=np.stack([signatures[sha256s[i]] for i in rows]) if rows else
                                np.zeros((0, SIGNATURE_DIM), np.float32))
    return rows, fingerprints, failures


def _hex_bits(phash: str) -> np.ndarray:
    return np.unpackbits(np.frombuffer(bytes.fromhex(phash), np.uint8)).astype(np.float32)


def _bits_hex(bits: np.ndarray) -> str:
    return np.packbits(np.asarray(bits) > 0.5).tobytes().hex()


def dataset_copy_pairs(paths: list[Path], sha256s: list[str], phashes: list[str | None], cache, *,
                       vectors: np.ndarray | None = None, progress: bool = True) -> np.ndarray:
    """Verified copies among a training set's images, whose sha256 and perceptual hash the feature cache
    already holds: enough pairs to join each group of copies, which is what a split keeps together (pairs inside
    a group already joined are not verified). Signatures and verifications are cached there too, so a second run
    reads no image. The candidates are the hashes and signatures (mirrored copies come through the signature,
    which ignores a mirror) and, given the training features (`vectors`, one row per path), each image's nearest
    neighbours among them: an export's half crop keeps its original among its nearest. The neighbours, not dedup's
    cosine range, which holds for its own backbone (as does CANDIDATES' cosine for hash pairs beyond 2 bits)."""
    rows, fingerprints, _ = cached_fingerprints(paths, sha256s, phashes, cache, progress=progress)
    fingerprints.phash_flipped = None
    if vectors is not None and rows:
        chosen = np.asarray(vectors, np.float32)[rows]
        fingerprints.vectors = chosen / np.maximum(np.linalg.norm(chosen, axis=1, keepdims=True), 1e-12)
    thresholds = replace(CANDIDATES, min_cosine=2.0)
    pairs = copy_pairs([paths[i] for i in rows], fingerprints, thresholds, progress=progress, cache=cache,
                       components=True)  # the splits keep whole connected groups together
    return np.asarray(rows, np.int64)[pairs] if len(pairs) else pairs


def find_duplicates(
    paths: list[str | Path],
    *,
    thresholds: Thresholds | None = None,
    embeddings: bool = True,
    verify: bool = True,
    rule: CopyRule = DEFAULT_RULE,
    backbone: str = "efficientnet_lite1",
    workers: int = 1,
    progress: bool = True,
) -> DuplicateReport:
    """Exact and near-duplicate groups among the images in `paths` (files, or folders searched recursively).

    Unreadable files are reported in `failures` and the rest go on. `embeddings=False` proposes candidates by
    the hashes and the signature alone (much faster; with verification it still finds turned, rotated, sheared,
    letterboxed and greyscale copies, but misses more crops). `verify=False` links by thresholds alone
    (`DEFAULT_THRESHOLDS`), as before verification existed: look-alikes on one studio set get merged.
    """
    thresholds = thresholds or (CANDIDATES if verify else DEFAULT_THRESHOLDS)
    files = image_files(paths)
    from fashionlens.dedup.hashing import hash_images

    kept, fingerprints, failures = hash_images(files, progress=progress, workers=workers)
    if embeddings and kept:
        from fashionlens.embeddings import embed_paths

        embedded = embed_paths([files[i] for i in kept], backbone, progress=progress)
        failures += embedded.failures  # readable for hashing but not for the backbone
        keep = embedded.indices
        kept = [kept[i] for i in keep]
        fingerprints = fingerprints.subset(keep)
        fingerprints.vectors = embedded.vectors
    pairs = copy_pairs([files[i] for i in kept], fingerprints, thresholds, rule if verify else None,
                       progress=progress, components=verify)
    groups = [DuplicateSet(g.kind, [str(files[kept[i]]) for i in g.members])
              for g in group_fingerprints(fingerprints, thresholds, pairs, transitive=verify)]
    return DuplicateReport(groups, len(kept), sorted(failures, key=lambda f: f.source))

