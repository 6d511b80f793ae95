"""On-disk cache of fingerprints and frozen-backbone features, keyed by image content and backbone.

SQLite, one transaction per batch: a killed run loses at most the batch in flight, and the next run
computes only what is missing.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import numpy as np


def default_cache_dir() -> Path:
    return Path(os.environ.get("FASHIONLENS_CACHE", Path.home() / ".cache" / "fashionlens"))


class FeatureCache:
    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else default_cache_dir() / "features.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS fingerprints (sha256 TEXT PRIMARY KEY, phash TEXT)")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS features (sha256 TEXT, model_key TEXT, vector BLOB,"
            " PRIMARY KEY (sha256, model_key))"
        )
        self._db.commit()

    def close(self) -> None:
        self._db.close()

    def phashes(self, sha256s: list[str]) -> dict[str, str]:
        return dict(self._select("SELECT sha256, phash FROM fingerprints WHERE sha256 IN ({})", sha256s))

    def features(self, model_key: str, sha256s: list[str]) -> dict[str, np.ndarray]:
        rows = self._select(
            "SELECT sha256, vector FROM features WHERE model_key = ? AND sha256 IN ({})", sha256s, model_key
        )
        return {sha: np.frombuffer(blob, dtype=np.float32) for sha, blob in rows}

    def put(self, model_key: str, items: list[tuple[str, str, np.ndarray]]) -> None:
        """Store (sha256, phash, feature vector) rows in one transaction."""
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO fingerprints VALUES (?, ?)", [(sha, ph) for sha, ph, _ in items]
            )
            self._db.executemany(
                "INSERT OR REPLACE INTO features VALUES (?, ?, ?)",
                [(sha, model_key, np.asarray(vec, dtype=np.float32).tobytes()) for sha, _, vec in items],
            )

    def put_vectors(self, model_key: str, items: list[tuple[str, np.ndarray]]) -> None:
        """Store (key, vector) rows in one transaction, without fingerprints: values derived from one image or a
        pair of them (dedup's signatures and verifications), keyed by content."""
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO features VALUES (?, ?, ?)",
                [(key, model_key, np.asarray(vec, dtype=np.float32).tobytes()) for key, vec in items],
            )

    def _select(self, sql: str, keys: list[str], *params) -> list[tuple]:
        rows: list[tuple] = []
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            rows += self._db.execute(sql.format(",".join("?" * len(chunk))), (*params, *chunk)).fetchall()
        return rows
