"""`Service`: the catalogue, the analysis pipeline and the history behind the HTTP routes, with the locking that
lets many request threads share them.

Model inference runs one request at a time (the two cores are already used by ONNX Runtime's own threads, so
parallel requests would only contend), and at most `max_queue` wait for it (the rest get 503); the catalogue's in-memory index is changed and searched under one lock.
Every result is written to the database before it is returned. Several replicas can share one PostgreSQL: the
store is the truth (an image is stored once, whichever replica wins the race), and each replica's index catches
up with the store's revision before it is searched.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from fashionlens.catalog.analyses import AnalysisHistory, StoredAnalysis
from fashionlens.catalog.catalog import Catalog
from fashionlens.catalog.search import Hit, normalise_where
from fashionlens.catalog.store import StoredItem
from fashionlens.fingerprints import sha256_bytes
from fashionlens.images import load_image
from fashionlens.catalog.similar import add_similar
from fashionlens.pipeline import Analyzer
from fashionlens.runtime import small_ops_on_one_thread
from fashionlens.service.errors import ApiError
from fashionlens.service.limits import ModelQueue
from fashionlens.service.media import MediaStore
from fashionlens.service.settings import ServiceSettings

MAX_ATTRIBUTES = 50


def clean_attributes(attributes: object) -> dict[str, str]:
    """Metadata given with an item: a flat object of short strings (numbers are accepted and kept as text)."""
    if attributes is None:
        return {}
    if not isinstance(attributes, dict):
        raise ApiError(422, "invalid_attributes", "attributes: expected an object of {name: value}")
    if len(attributes) > MAX_ATTRIBUTES:
        raise ApiError(422, "invalid_attributes", f"attributes: at most {MAX_ATTRIBUTES} entries")
    clean = {}
    for key, value in attributes.items():
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ApiError(422, "invalid_attributes", f"attributes.{key}: expected a string or a number")
        key, value = str(key).strip(), str(value).strip()
        if not key or len(key) > 100 or len(value) > 200:
            raise ApiError(422, "invalid_attributes",
                           f"attributes.{key[:100]}: names need 1-100 characters and values at most 200")
        if value:
            clean[key] = value
    return clean


class Service:
    def __init__(self, settings: ServiceSettings):
        small_ops_on_one_thread()
        self.settings = settings
        self.catalog = Catalog.open(settings.db)
        self.catalog_lock = threading.RLock()
        self.model_lock = threading.Lock()
        self.queue = ModelQueue(settings.max_queue)  # bounds the requests waiting for model_lock
        self.analyzer = Analyzer(settings.pipeline, embedder=self.catalog.embedder)
        self.history = AnalysisHistory(self.catalog.store.engine)
        self.media = MediaStore(settings.media_dir or _default_media_dir(self.catalog))
        self.text_model = _text_model(settings.text_model, self.catalog)

    def close(self) -> None:
        with self.catalog_lock:
            self.catalog.close()

    # analyses

    def analyze(self, data: bytes, source: str) -> tuple[StoredAnalysis, bool]:
        """(the stored analysis, True if it is new); the same image under the same models is analysed once."""
        sha = sha256_bytes(data)
        found = self.history.find(sha, self.analyzer.models_key)
        if found is not None:
            return found, False
        with self.queue.slot(), self.model_lock:
            found = self.history.find(sha, self.analyzer.models_key)  # stored while this request waited
            if found is not None:
                return found, False
            analysis = self.analyzer.analyze(data, name=source)
            config = self.analyzer.config
            add_similar(analysis, self.catalog, config.similar_k, config.similar_filter, self.catalog_lock)
        self.media.put(sha, data)
        document = analysis.to_json()
        return self.history.save(sha, self.analyzer.models_key, source, document)

    # the catalogue

    def add_item(self, data: bytes, source: str, attributes: dict[str, str]) -> tuple[StoredItem, bool]:
        """(the item, True if it is new); an image already in the catalogue is returned as it is."""
        sha = sha256_bytes(data)
        with self.catalog_lock:
            known = self.catalog.store.known([sha])
        if sha in known:
            return self.item(known[sha]), False
        image = load_image(data, name=source)
        with self.queue.slot(), self.model_lock:
            with self.catalog_lock:
                known = self.catalog.store.known([sha])  # added while this request waited
            if sha in known:
                return self.item(known[sha]), False
            described = self.analyzer.describe([image])[0]
        self.media.put(sha, data)
        with self.catalog_lock:
            added = self.catalog.add_vectors(described.embedding[None], sha256s=[sha], sources=[source],
                                             attributes=[attributes], predicted=[described.predicted],
                                             colors=[[c.to_json() for c in described.colors]],
                                             embedding_key=self.analyzer.embedder.key)
            item_id = added[0] if added else self.catalog.store.known([sha])[sha]  # else: another replica's
        return self.item(item_id), bool(added)

    def item(self, item_id: int) -> StoredItem:
        with self.catalog_lock:
            found = self.catalog.items([item_id]).get(item_id)
        if found is None:
            raise ApiError(404, "not_found", f"no catalogue item {item_id}")
        return found

    def remove_item(self, item_id: int) -> None:
        with self.catalog_lock:
            if not self.catalog.remove([item_id]):
                raise ApiError(404, "not_found", f"no catalogue item {item_id}")

    def items_page(self, where: dict, limit: int, offset: int) -> tuple[int, list[StoredItem]]:
        """Items matching every filter, newest first."""
        where = normalise_where(where)
        with self.catalog_lock:
            self.catalog.check_filters(where)
            ids = self.catalog.store.ids_where(where) if where else self.catalog.store.ids()
            page = ids[::-1][offset:offset + limit].tolist()
            found = self.catalog.items(page)
        return len(ids), [found[i] for i in page if i in found]

    def search_image(self, data: bytes, source: str, top_k: int, where: dict) -> list[Hit]:
        with self.catalog_lock:
            self.catalog.check_filters(where)  # before the models run
        image = load_image(data, name=source)
        with self.queue.slot(), self.model_lock:
            vector = self.analyzer.describe([image])[0].embedding
        return self._search(vector, top_k, where)

    def search_item(self, item_id: int, top_k: int, where: dict) -> list[Hit]:
        self.item(item_id)
        with self.catalog_lock:
            vectors = [v for _, v in self.catalog.store.embeddings(np.array([item_id]))]
        hits = self._search(vectors[0][0], top_k + 1, where)
        return [h for h in hits if h.id != item_id][:top_k]

    def search_text(self, text: str, top_k: int, where: dict) -> tuple[list[Hit], list[str]]:
        """(hits, the words the text model never saw); 422 without a text model or with no word it knows."""
        if self.text_model is None:
            raise ApiError(422, "no_text_model", "this service has no text model: start it with --text-model "
                                                 "(a folder from train-text) to search by words")
        from fashionlens.model_folder import ModelError

        with self.catalog_lock:
            self.catalog.check_filters(where)
            try:
                result = self.catalog.search_text([text], self.text_model, top_k, normalise_where(where))[0]
            except ModelError as exc:  # the catalogue's items were embedded by another model since the start
                raise ApiError(409, "text_model_mismatch", str(exc)) from None
        if result.error:
            raise ApiError(422, "unknown_words", result.error)
        return result.results, result.unknown_words

    def _search(self, vector: np.ndarray, top_k: int, where: dict) -> list[Hit]:
        with self.catalog_lock:
            self.catalog.check_filters(where)
            return self.catalog.search(vector[None], top_k, normalise_where(where))[0].results

    # status

    def health(self) -> dict:
        """`revision`: the store's; `index_revision`: the store revision this replica's index has caught up to
        (each search catches it up first, so writes through other replicas are found at once)."""
        with self.catalog_lock:
            index_revision = self.catalog.index_revision
        return {"status": "ok", "items": len(self.catalog), "analyses": self.history.count(),
                "database": self.catalog.store.engine.dialect.name, "revision": self.catalog.store.revision(),
                "index_revision": index_revision}

    def ready(self) -> None:
        """Raise unless the database answers (the models are loaded once this object exists)."""
        self.catalog.store.revision()

    def models(self) -> dict:
        state = self.catalog.store.state()
        text = self.text_model
        return {"models": self.analyzer.models, "models_key": self.analyzer.models_key,
                "catalog": {"embedding": state.embedding_key, "dim": state.embedding_dim, "items": len(self.catalog)},
                "text_model": None if text is None else {"folder": str(text.folder), "words": len(text.vocabulary),
                                                         "weights_sha256": text.weights_sha256}}


def _text_model(folder: Path | None, catalog: Catalog):
    """The text model, checked against the catalogue's embedding space (a mismatch stops the start, named)."""
    if folder is None:
        return None
    from fashionlens.text import load_text_model

    model = load_text_model(folder)
    model.check_space(catalog.store.state().embedding_key)
    return model


def _default_media_dir(catalog: Catalog) -> Path:
    """Beside a SQLite file (`catalog.db.media/`); for a server database, beside its index in the cache."""
    return catalog.index_path.with_suffix(".media")
