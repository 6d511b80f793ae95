"""`Catalog`: the store and its vector index kept in step, behind add / remove / search.

The store is written first, one transaction per batch; the index follows in memory and is saved beside the
store. An index that is missing, from another catalogue, or behind the store's revision (a crash, another
process) is brought up to date from the store when the catalogue is next used.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fashionlens.cache import default_cache_dir
from fashionlens.catalog.index import IndexSettings, Selection, VectorIndex
from fashionlens.catalog.search import Hit, QueryResult, Where, check_filter_keys, normalise_where
from fashionlens.catalog.store import CatalogError, NewItem, StoredItem, Store, database_url
from fashionlens.data.samples import SkippedInput
from fashionlens.progress import progress_bar

if TYPE_CHECKING:
    from fashionlens.ray_jobs import RayOptions

DEFAULT_CLASSIFIER = "default"
TEXT_COLOR_POOL = 10  # a colour query re-ranks this many times top_k of the index's candidates ...
TEXT_COLOR_WEIGHT = 0.5  # ... by score plus this x score range x colour match (validation "all" 0.487 at 0, 0.510 at 0.2, 0.529 at 0.5, 0.516 at 1, 0.471 at 2)


@dataclass
class AddReport:
    added: list[int] = field(default_factory=list)  # new item ids
    present: dict[str, int] = field(default_factory=dict)  # source -> id of the item already holding that image
    failed: list[SkippedInput] = field(default_factory=list)
    interrupted: bool = False  # stopped on request before the end: running the same sources again resumes

    def to_json(self) -> dict:
        return {"added": len(self.added), "already_present": len(self.present), "failed": len(self.failed),
                "interrupted": self.interrupted, "failures": [{"source": f.source, "reason": f.reason}
                                                              for f in self.failed]}


def index_path_for(url: str) -> Path:
    """Beside a SQLite file (`catalog.db.faiss`); for a server database, in the cache folder, named by its URL."""
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        return Path(url[len("sqlite:///"):] + ".faiss")
    return default_cache_dir() / "catalog-index" / (hashlib.sha256(url.encode()).hexdigest()[:16] + ".faiss")


class Catalog:
    def __init__(self, store: Store, index_path: Path, settings: IndexSettings, embedder=None):
        self.store = store
        self.index_path = index_path
        self.settings = settings
        self._embedder = embedder
        self._index: VectorIndex | None = None
        self._index_revision = -1  # store revision the in-memory index matches
        self._saved_revision = -1
        self._unsaved = 0  # items added or removed since the index was last saved
        self._selections: dict[tuple, Selection] = {}
        self._selections_revision = -1

    @classmethod
    def open(cls, db: str | Path | None = None, *, embedder=None, settings: IndexSettings | None = None,
             index_path: str | Path | None = None) -> Catalog:
        """Open (creating and migrating as needed) the catalogue at a SQLAlchemy URL or SQLite path.

        `embedder` (`fashionlens.embeddings.Embedder`) is needed only to add or search by image; default:
        `default_embedder()`, backbone features with the shipped garment classifier's category probabilities."""
        url = database_url(db)
        return cls(Store(url), Path(index_path) if index_path else index_path_for(url), settings or IndexSettings(),
                   embedder)

    def close(self) -> None:
        if self._index is not None and self._index_revision != self._saved_revision:
            self._save()
        self.store.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __len__(self) -> int:
        return self.store.count()

    @property
    def index_revision(self) -> int:
        """The store revision the in-memory index matches (-1: not loaded); searches catch it up first."""
        return self._index_revision

    @property
    def embedder(self):
        if self._embedder is None:
            from fashionlens.embeddings import default_embedder

            self._embedder = default_embedder()
        return self._embedder

    # adding and removing

    def ingest(
        self, sources: list[str | Path], attributes: list[dict] | dict[str, dict] | None = None, *,
        classifier: str | Path | None = DEFAULT_CLASSIFIER, colors: bool = True, batch_size: int = 32,
        workers: int = 8, fetch_policy=None, progress: bool = False, stop: threading.Event | None = None,
        ray: RayOptions | None = None,
    ) -> AddReport:
        """Add images from files and http(s) URLs, one item per distinct image content. `attributes`: one dict
        per source, or {source: dict}; they win over the `classifier`'s predictions ("default": the shipped
        garment classifier; None: none). URLs are downloaded on `workers` threads under `fetch_policy`
        (`fashionlens.fetch.FetchPolicy`, default from the environment); an item's source is its URL, or its
        file's absolute path.

        Resumable: each batch is stored in one transaction, a source already stored (same path or URL) is
        skipped without being read, and an image already stored (same bytes) is not analysed again; so a run
        killed at any moment and started again stores every image once. When `stop` is set, the run ends after
        the current batch with `report.interrupted`.

        `ray` (`RayOptions`): run on a Ray cluster instead (`ray_ingest.py`), with the same steps and results;
        `workers` then does not apply."""
        from fashionlens.catalog.ingest import Analyser
        from fashionlens.sources import prepared_chunks, source_name

        names = [source_name(s) for s in sources]
        given = self._given_attributes(names, attributes)
        self._check_space()
        if ray is not None:
            from fashionlens.catalog.ray_ingest import ingest_on_ray
            from fashionlens.ray_jobs import RayJobError

            try:
                return ingest_on_ray(self, names, given, ray, models=self._attribute_models(classifier),
                                     colors=colors, batch_size=batch_size, policy=fetch_policy, progress=progress,
                                     stop=stop)
            except RayJobError as exc:
                raise CatalogError(str(exc)) from None
        report = AddReport()
        stopped = stop.is_set if stop is not None else lambda: False
        analyser = functools.cache(lambda: Analyser(self.embedder, self._attribute_models(classifier), colors=colors,
                                                    batch_size=batch_size))  # made when first needed
        with progress_bar("ingest", len(names), progress) as advance:
            for chunk in prepared_chunks(names, self.store.known_sources, workers=workers, policy=fetch_policy,
                                         stop=stop):
                if stopped():
                    break
                self._ingest_chunk(chunk, names, given, analyser, report, advance, stopped)
        report.interrupted = stopped()
        self._save_if_due()
        return report

    def _ingest_chunk(self, chunk, names: list[str], given: list[dict], analyser, report: AddReport, advance,
                      stopped) -> None:
        """What is stored already is reported; the rest is analysed and stored batch by batch until `stopped()`."""
        report.present.update({names[i]: item_id for i, item_id in chunk.stored.items()})
        report.failed += chunk.failed
        known = self.store.known(chunk.sha256)
        first: dict[str, int] = {}  # sha256 -> its first place in the chunk
        for k, sha in enumerate(chunk.sha256):
            first.setdefault(sha, k)
        todo = [k for sha, k in first.items() if sha not in known]
        advance(len(chunk.stored) + len(chunk.failed) + len(chunk.sha256) - len(todo))
        places = [chunk.positions[k] for k in todo]
        stored_now: set[str] = set()
        batches = analyser().run([chunk.files[k] for k in todo], report.failed, [names[p] for p in places],
                                 advance) if todo else ()
        for batch in batches:
            added, existing = self._add(batch.items([names[p] for p in places], [given[p] for p in places]),
                                        self.embedder.key)
            report.added += list(added.values())
            stored_now.update(added)
            known.update(added)
            known.update(existing)  # stored by another process meanwhile
            if stopped():
                break
        for k, sha in enumerate(chunk.sha256):  # copies of stored images, and later copies in the chunk
            name = names[chunk.positions[k]]
            if sha in known and (first[sha] != k or sha not in stored_now):
                report.present[name] = known[sha]
            elif sha not in known and first[sha] != k and not stopped():
                report.failed.append(SkippedInput(name, f"same bytes as {names[chunk.positions[first[sha]]]}, "
                                                        f"which could not be added"))

    def add_vectors(
        self, vectors: np.ndarray, *, sha256s: list[str], sources: list[str], attributes: list[dict] | None = None,
        predicted: list[dict] | None = None, colors: list[list[dict]] | None = None, embedding_key: str | None = None,
    ) -> list[int]:
        """Add precomputed embeddings (unit length, in this catalogue's space: `embedding_key`, default the
        embedder's); images already stored are skipped. Returns the new ids."""
        n = len(vectors)
        if not (len(sha256s) == len(sources) == n):
            raise ValueError(f"{n} vectors but {len(sha256s)} sha256s and {len(sources)} sources")
        items = [NewItem(sha256s[i], sources[i], vectors[i], (attributes or [{}] * n)[i], (predicted or [{}] * n)[i],
                         (colors or [[]] * n)[i]) for i in range(n)]
        added, _ = self._add(items, embedding_key or self.embedder.key)
        self._save_if_due()
        return list(added.values())

    def _add(self, items: list[NewItem], embedding_key: str) -> tuple[dict[str, int], dict[str, int]]:
        """({sha256: new id}, {sha256: id} of the images that were stored already)."""
        if not items:
            return {}, {}
        if self._index is None:
            self._ready_index()  # load it before the change, so the change is applied to it rather than replayed
        added, existing, revision = self.store.add(items, embedding_key, len(items[0].embedding))
        if added:
            vectors = {item.sha256: item.embedding for item in items}
            self._apply(revision, lambda index: index.add(np.array(list(added.values())),
                                                          np.stack([vectors[sha] for sha in added])))
            self._unsaved += len(added)
        return added, existing

    def remove(self, ids: list[int]) -> list[int]:
        """Delete items; returns the ids that existed."""
        if self._index is None:
            self._ready_index()
        removed, revision = self.store.remove(ids)
        if removed:
            self._apply(revision, lambda index: index.remove(np.array(removed)))
            self._unsaved += len(removed)
            self._save_if_due()
        return removed

    def _apply(self, revision: int, change) -> None:
        """Our own change, now at `revision` in the store: applied to the index directly if it was in step,
        else the index catches up with the store (someone else wrote in between)."""
        if self._index is None:  # the catalogue was empty: build from the store, which now holds the change
            self._ready_index()
        elif self._index_revision == revision - 1:
            change(self._index)
            self._index_revision = revision
        else:
            self._catch_up()

    # searching

    def check_filters(self, where: dict | None) -> None:
        """Raise UnknownFilterKey, naming the known keys, for a filter on a key no item has. The CLI and the
        service check what a person typed; `search` itself stays quiet (a pipeline's filter may find nothing)."""
        where = normalise_where(where)
        if where:
            check_filter_keys(where, self.store.filter_keys())

    def search(self, queries: list[str | Path] | np.ndarray, top_k: int = 10, where: dict | None = None, *,
               nprobe: int | None = None, progress: bool = False) -> list[QueryResult]:
        """The `top_k` most similar items to each query image (paths) or vector (rows), best first, among the
        items matching `where` ({"category": "dress", "color": ["red", "pink"]})."""
        where = normalise_where(where)
        if isinstance(queries, np.ndarray):
            names = [f"vector:{i}" for i in range(len(queries))]
            vectors, rows, errors = np.atleast_2d(queries).astype(np.float32), list(range(len(queries))), {}
        else:
            from fashionlens.embeddings import embed_paths

            names = [str(Path(q)) for q in queries]
            self._check_space()
            embedded = embed_paths([Path(q) for q in queries], self.embedder, progress=progress)
            vectors, rows = embedded.vectors, embedded.indices
            errors = {f.source: f.reason for f in embedded.failures}
        index = self._ready_index()
        results = [QueryResult(name, [], errors.get(name)) for name in names]
        if index is None or not len(vectors):
            return results
        selection = self._selection(where) if where else None
        if selection is not None and not len(selection.ids):
            return results
        if selection is not None and selection.vectors is not None:
            scores, ids = _top_k(vectors @ selection.vectors.T, selection.ids, top_k)
        else:
            threads = self.settings.query_threads if len(vectors) < 8 else 0
            if index.exact:
                scores, ids = index.search(vectors, top_k, selection, threads=threads)
            else:
                candidates = index.search(vectors, top_k * self.settings.rerank, selection,
                                          nprobe or self.settings.nprobe, threads)[1]
                scores, ids = self._rerank(vectors, candidates, top_k)
        items = self.store.items([int(i) for i in np.unique(ids) if i >= 0])
        for row, score_row, id_row in zip(rows, scores, ids, strict=True):
            results[row].results = [Hit(int(i), items[i].source, float(s), items[i].labels,
                                        items[i].colors, items[i].sha256)
                                    for s, i in zip(score_row, id_row, strict=True) if i >= 0 and i in items]
        return results

    def search_text(self, texts: list[str], text_model, top_k: int = 10, where: dict | None = None, *,
                    nprobe: int | None = None, color_weight: float = TEXT_COLOR_WEIGHT) -> list[QueryResult]:
        """The `top_k` items best matching each text (`fashionlens.text.TextModel`), among those matching `where`.
        Each text becomes a vector in this catalogue's embedding space, so the same index and filters answer it,
        and items stored before the model was trained are found. A text naming a colour ("navy blue") re-ranks
        `TEXT_COLOR_POOL` times as many candidates by score plus `color_weight` times the candidates' score range
        times the share of each item's stored colours in the query's colour families (a scale-free lift: 1 raises a
        full match from the last candidate to the first), since the embedding carries little colour. Words the
        model never saw are listed in `unknown_words`; a text with no other word gets an `error` and no results."""
        from fashionlens.text.colors import color_match, query_families
        from fashionlens.text.model import UnknownWords

        text_model.check_space(self.store.state().embedding_key)
        vectors, offsets, parsed = text_model.query_vectors(list(texts))
        usable = [i for i, p in enumerate(parsed) if p.words]
        results = [QueryResult(p.text, [], None if p.words else str(UnknownWords(p.text, p.unknown)), p.unknown)
                   for p in parsed]
        families = [query_families(p.text) if color_weight else set() for p in parsed]
        pool = top_k * TEXT_COLOR_POOL if any(families[i] for i in usable) else top_k
        if usable:
            found = self.search(vectors[usable], pool, where, nprobe=nprobe)
            for i, result in zip(usable, found, strict=True):
                hits = result.results
                lift = color_weight * (hits[0].score - hits[-1].score) if hits and families[i] else 0.0
                hits = [replace(h, score=h.score + float(offsets[i]) + lift * color_match(h.colors, families[i]))
                        for h in hits]
                results[i].results = sorted(hits, key=lambda h: -h.score)[:top_k]
        return results

    def _rerank(self, queries: np.ndarray, candidates: np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact scores of an approximate index's candidates, from the full vectors in the store: PCA and 8-bit
        codes find the neighbourhood, the stored embeddings order it."""
        stored: dict[int, np.ndarray] = {}
        for batch_ids, vectors in self.store.embeddings(np.unique(candidates[candidates >= 0])):
            stored.update(zip(batch_ids.tolist(), vectors, strict=True))
        scores = np.full((len(queries), top_k), -np.inf, np.float32)
        ids = np.full((len(queries), top_k), -1, np.int64)
        for row, (query, found) in enumerate(zip(queries, candidates, strict=True)):
            found = np.array([i for i in found.tolist() if i in stored], dtype=np.int64)
            if len(found):
                exact = np.stack([stored[i] for i in found]) @ query
                best = np.argsort(-exact, kind="stable")[:top_k]
                scores[row, :len(best)], ids[row, :len(best)] = exact[best], found[best]
        return scores, ids

    def _selection(self, where: Where) -> Selection:
        """Ids matching a filter, cached until the store changes."""
        revision = self.store.revision()
        if revision != self._selections_revision:
            self._selections, self._selections_revision = {}, revision
        key = tuple(sorted((k, tuple(sorted(v))) for k, v in where.items()))
        if key not in self._selections:
            if len(self._selections) >= 64:  # a bounded cache: rare filters hold their vectors
                self._selections.pop(next(iter(self._selections)))
            selection = Selection.of(self.store.ids_where(where))
            index = self._ready_index()
            if index is not None and not index.exact and len(selection.ids) <= self.settings.exact_filter_limit:
                stored = dict(pair for ids, vecs in self.store.embeddings(selection.ids) for pair in zip(ids.tolist(), vecs, strict=True))
                selection.ids = np.array([i for i in selection.ids.tolist() if i in stored], dtype=np.int64)
                selection.vectors = np.stack([stored[i] for i in selection.ids]) if stored else None
            self._selections[key] = selection
        return self._selections[key]

    def _check_space(self) -> None:
        stored = self.store.state().embedding_key
        if stored is not None and stored != self.embedder.key:
            raise CatalogError(f"this catalogue holds {stored!r} embeddings, but the queries would be embedded "
                               f"with {self.embedder.key!r}; open it with the embedder it was built with")

    def duplicates(self, thresholds=None) -> list:
        """Near-duplicate groups among the items (byte-identical images are one item already), by the cosine of
        their backbone features; `DuplicateSet`s of item sources, largest first."""
        from fashionlens.dedup import DEFAULT_THRESHOLDS, DuplicateSet, Fingerprints, group_fingerprints

        self._check_space()
        chunks = list(self.store.embeddings())
        if not chunks:
            return []
        ids = np.concatenate([c[0] for c in chunks])
        features = self.embedder.backbone_features(np.concatenate([c[1] for c in chunks]))
        if features is None:
            raise CatalogError(f"{self.embedder.key}: an MLP's hidden-layer embedding has no backbone features to "
                               f"compare; near-duplicate thresholds are calibrated on backbone features")
        items = self.store.items(ids.tolist())
        fingerprints = Fingerprints([items[i].sha256 for i in ids.tolist()], [None] * len(ids), vectors=features)
        return [DuplicateSet(g.kind, [items[int(ids[m])].source for m in g.members])
                for g in group_fingerprints(fingerprints, thresholds or DEFAULT_THRESHOLDS)]

    # reading

    def items(self, ids: list[int]) -> dict[int, StoredItem]:
        return self.store.items(ids)

    def list(self, limit: int = 50, offset: int = 0) -> list[StoredItem]:
        return self.store.page(limit, offset)

    def stats(self) -> dict:
        state = self.store.state()
        index = self._ready_index()
        return {"database": self.store.url, "items": self.store.count(), "embedding": state.embedding_key,
                "dim": state.embedding_dim, "revision": state.revision, "index": str(self.index_path),
                "index_kind": index.factory if index else None, "labels": self.store.label_counts()}

    # the index

    def reindex(self, progress: bool = False) -> None:
        """Rebuild the index from the store and save it."""
        self._index = self._build(progress)
        self._save()

    def catch_up_index(self) -> None:
        """Bring the index up to the store and save it: after other processes (Ray's workers) wrote to it."""
        if self._ready_index() is not None and self._index_revision != self._saved_revision:
            self._save()

    def _ready_index(self) -> VectorIndex | None:
        """The index, in step with the store; None while the catalogue is empty."""
        state = self.store.state()
        if state.embedding_dim is None:
            return None
        if self._index is None:
            loaded = VectorIndex.load(self.index_path)
            if loaded and loaded[1].get("uid") == state.uid and loaded[1].get("embedding") == state.embedding_key:
                self._index, self._index_revision = loaded[0], loaded[1]["revision"]
                self._saved_revision = self._index_revision
        if self._index is not None and self._index_revision != state.revision:
            self._catch_up()
        if self._index is None or self._wrong_kind(self._index, len(self._index)):
            self._index = self._build()
            self._save()
        return self._index

    def _wrong_kind(self, index: VectorIndex, n: int) -> bool:
        """Exact past the flat limit, IVF well under it, or IVF with a quarter of the lists its size needs."""
        limit = self.settings.flat_limit
        if index.exact:
            return n > limit
        return n < limit // 2 or index.ivf.nlist * 4 < self.settings.nlist(n)

    def _catch_up(self) -> None:
        revision = self.store.revision()  # read first: a write after it makes the index look stale, not fresh
        stored, indexed = self.store.ids(), self._index.ids()
        self._index.remove(np.setdiff1d(indexed, stored, assume_unique=True))
        for ids, vectors in self.store.embeddings(np.setdiff1d(stored, indexed, assume_unique=True)):
            self._index.add(ids, vectors)
        self._index_revision = revision

    def _build(self, progress: bool = False) -> VectorIndex:
        state = self.store.state()  # read first: a write after it makes the index look stale, not fresh
        ids = self.store.ids()
        training = None
        if len(ids) > self.settings.flat_limit:
            rng = np.random.default_rng(0)
            sample = np.sort(rng.choice(ids, min(len(ids), self.settings.train_size), replace=False))
            training = np.concatenate([v for _, v in self.store.embeddings(sample)])
        index = VectorIndex.create(state.embedding_dim, len(ids), self.settings, training)
        with progress_bar("indexing", len(ids), progress) as advance:
            for batch_ids, vectors in self.store.embeddings():
                index.add(batch_ids, vectors)
                advance(len(batch_ids))
        self._index_revision = state.revision
        return index

    def _save(self) -> None:
        state = self.store.state()
        self._index.save(self.index_path, {"uid": state.uid, "embedding": state.embedding_key,
                                           "revision": self._index_revision})
        self._saved_revision = self._index_revision
        self._unsaved = 0

    def _save_if_due(self) -> None:
        """Small indexes are saved after every change; a large one when a twentieth of it is unsaved (the
        store has everything, and reopening catches the index up)."""
        if self._index is None or self._index_revision == self._saved_revision:
            return
        if len(self._index) <= self.settings.flat_limit or self._unsaved * 20 >= len(self._index):
            self._save()

    # helpers

    @staticmethod
    def _given_attributes(names: list[str], attributes) -> list[dict]:
        from fashionlens.sources import source_name

        if attributes is None:
            return [{} for _ in names]
        if isinstance(attributes, dict):
            by_source = {source_name(k): v for k, v in attributes.items()}
            return [dict(by_source.get(name, {})) for name in names]
        if len(attributes) != len(names):
            raise ValueError(f"{len(names)} sources but {len(attributes)} attribute dicts")
        return [dict(a or {}) for a in attributes]

    @staticmethod
    def _attribute_models(classifier):
        """"default": the pipeline's attribute models (garment category and type), so an item ingested here has
        the attributes the service gives it; a model folder: that model; None: none."""
        if classifier is None:
            return []
        from fashionlens.attributes import DEFAULT_MODELS, load_attribute_models

        return load_attribute_models(DEFAULT_MODELS if classifier == DEFAULT_CLASSIFIER else (classifier,))


def _top_k(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The best `k` (score, id) per row of an exact score matrix, padded with (-inf, -1)."""
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    best_scores = np.take_along_axis(scores, order, axis=1).astype(np.float32)
    best_ids = ids[order]
    if order.shape[1] < k:
        pad = k - order.shape[1]
        best_scores = np.pad(best_scores, ((0, 0), (0, pad)), constant_values=-np.inf)
        best_ids = np.pad(best_ids, ((0, 0), (0, pad)), constant_values=-1)
    return best_scores, best_ids
