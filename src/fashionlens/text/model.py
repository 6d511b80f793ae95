"""A trained text model: hashed word features -> a unit text vector, and a linear map of the catalogue's stored
image embeddings into the same space. Inference is NumPy and SciPy only.

Because the image side is linear, a text query becomes a vector in the image-embedding space itself
(`query_vectors`): the catalogue's own FAISS index, with its filters, answers it, and items stored before the
model existed are searched without re-ingest.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fashionlens.atomic import atomic_path
from fashionlens.fingerprints import sha256_file
from fashionlens.model_folder import (MANIFEST_FILE, WEIGHTS_FILE, ModelError, checked_weights, library_versions,
                                      read_manifest, write_json_atomic)
from fashionlens.text.words import HashingConfig, canonical, words_of

FORMAT = "fashionlens-text"
FORMAT_VERSION = 1


class UnknownWords(ValueError):
    """A query none of whose words the model has seen: an error, not an arbitrary ranking."""

    def __init__(self, text: str, unknown: list[str]):
        self.text, self.unknown = text, unknown
        shown = ", ".join(unknown) if unknown else "no words"
        super().__init__(f"{text!r}: the text model knows none of its words ({shown})")


@dataclass
class ParsedText:
    text: str
    words: list[str]  # the known words, in the vocabulary's own form
    unknown: list[str] = field(default_factory=list)  # words as typed that the model never saw


@dataclass
class TextModel:
    hashing: HashingConfig
    vocabulary: dict[str, int]  # word -> how many training titles hold it
    text_rows: np.ndarray  # int64 [n_used]: the hash buckets seen in training, sorted
    text_weights: np.ndarray  # float32 [n_used, dim]
    image_weights: np.ndarray  # float32 [embedding_dim, dim]: stored embedding -> shared space ...
    image_bias: np.ndarray  # float32 [dim]: ... plus this
    embedding: dict  # {"key", "dim", "model"}: the catalogue embedding space the image side reads
    info: dict = field(default_factory=dict)  # training figures, kept in the manifest
    folder: Path | None = None
    weights_sha256: str | None = None  # of the folder's weights file, once saved or loaded

    @property
    def embedding_key(self) -> str:
        return self.embedding["key"]

    @property
    def dim(self) -> int:
        return int(self.text_weights.shape[1])

    def parse(self, text: str) -> ParsedText:
        known, unknown = [], []
        for word in words_of(text):
            form = canonical(word, self.vocabulary)
            (known if form else unknown).append(form or word)
        return ParsedText(text, known, list(dict.fromkeys(unknown)))

    def text_vectors(self, texts: list[str]) -> tuple[np.ndarray, list[ParsedText]]:
        """Unit vectors [n, dim] of the known words of each text (a zero row where there are none)."""
        parsed = [self.parse(t) for t in texts]
        vectors = np.array([self.hashing.weighted_rows(p.words, self.text_rows, self.text_weights) for p in parsed],
                           np.float32).reshape(len(parsed), self.dim)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return np.where(norms > 0, vectors / np.maximum(norms, 1e-12), 0).astype(np.float32), parsed

    def query_vectors(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, list[ParsedText]]:
        """(queries [n, embedding_dim], offsets [n], parsed): a stored embedding's inner product with a query,
        plus that query's offset (the same for every item, so it does not change the order), is the pair's
        similarity. The queries are what the catalogue's index is searched with."""
        vectors, parsed = self.text_vectors(texts)
        return (np.ascontiguousarray(vectors @ self.image_weights.T, dtype=np.float32),
                (vectors @ self.image_bias).astype(np.float32), parsed)

    def image_vectors(self, embeddings: np.ndarray) -> np.ndarray:
        """Stored embeddings [n, embedding_dim] in the shared space [n, dim] (not normalised: their length is
        part of the score)."""
        return np.asarray(embeddings, dtype=np.float32) @ self.image_weights + self.image_bias

    def check_space(self, embedding_key: str | None) -> None:
        if embedding_key is not None and embedding_key != self.embedding_key:
            raise ModelError(f"the text model reads {self.embedding_key!r} embeddings, but the catalogue holds "
                             f"{embedding_key!r}; train it with the catalogue's embedding (--model)")

    def save(self, folder: str | Path) -> Path:
        """Weights first, then the manifest naming their hash: a crash leaves the previous model whole."""
        from safetensors.numpy import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {"text.rows": np.ascontiguousarray(self.text_rows, np.int64),
                   "text.weights": np.ascontiguousarray(self.text_weights, np.float32),
                   "image.weights": np.ascontiguousarray(self.image_weights, np.float32),
                   "image.bias": np.ascontiguousarray(self.image_bias, np.float32)}
        with atomic_path(folder / WEIGHTS_FILE) as tmp:
            save_file(tensors, str(tmp), metadata={"format": FORMAT})
        manifest = {"format": FORMAT, "format_version": FORMAT_VERSION,
                    "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "hashing": self.hashing.to_dict(), "dim": self.dim, "embedding": self.embedding,
                    "vocabulary": dict(sorted(self.vocabulary.items())), **self.info,
                    "weights": {"file": WEIGHTS_FILE, "sha256": sha256_file(folder / WEIGHTS_FILE)},
                    "versions": library_versions()}
        write_json_atomic(folder / MANIFEST_FILE, manifest)
        self.folder, self.weights_sha256 = folder, manifest["weights"]["sha256"]
        return folder


def load_text_model(folder: str | Path) -> TextModel:
    """Load and check a text model folder: the weights' hash, and every tensor's shape against the manifest."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    folder = Path(folder)
    manifest = read_manifest(folder, FORMAT, FORMAT_VERSION, ("hashing", "dim", "embedding", "vocabulary", "weights"))
    weights = checked_weights(folder, manifest)
    try:
        hashing = HashingConfig.from_dict(manifest["hashing"])
        dim, embedding_dim = int(manifest["dim"]), int(manifest["embedding"]["dim"])
        vocabulary = {str(w): int(n) for w, n in manifest["vocabulary"].items()}
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelError(f"{folder / MANIFEST_FILE}: cannot read the text model's settings ({exc})") from None
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError) as exc:
        raise ModelError(f"{weights}: not a safetensors file ({exc})") from None
    rows, text, image, bias = (tensors.get(k) for k in ("text.rows", "text.weights", "image.weights", "image.bias"))
    if (rows is None or text is None or image is None or bias is None or rows.ndim != 1
            or text.shape != (len(rows), dim) or image.shape != (embedding_dim, dim) or bias.shape != (dim,) or (len(rows) and (rows.min() < 0 or rows.max() >= hashing.buckets))):
        raise ModelError(f"{weights}: tensors do not fit the manifest (dim {dim}, embedding dim {embedding_dim})")
    info = {k: v for k, v in manifest.items() if k in ("training", "metrics")}
    return TextModel(hashing, vocabulary, rows.astype(np.int64), text.astype(np.float32), image.astype(np.float32),
                     bias.astype(np.float32), dict(manifest["embedding"]), info, folder, manifest["weights"]["sha256"])
