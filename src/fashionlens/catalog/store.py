"""The catalogue's database: a SQLite file by default, PostgreSQL (or any SQLAlchemy URL) when given.

The store is the truth; the vector index beside it is a cache that can always be rebuilt from it. Every change
is one transaction that also bumps `catalog_state.revision`, so a crash leaves either all of a batch or none.
Migrations (Alembic, in `migrations/`) run on open. To change the schema (e.g. the HTTP service's analyses
table): edit `models.py`, then on a database at head run `alembic.command.revision(config, message,
autogenerate=True)` with the `Config` that `migrate` builds, and review the generated file.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Iterator

import numpy as np
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, delete, event, func, insert, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from fashionlens.catalog.models import CatalogState, Item, ItemLabel
from fashionlens.colors.vocabulary import color_words, filter_terms

DEFAULT_DB_FILE = "fashionlens-catalog.db"
TOP_COLOR_SHARE = 0.15  # a colour covering at least this share of the garment is one `color=` filter matches
MAX_FILTER_COLORS = 3
MIGRATION_LOCK = 0x66617368  # PostgreSQL advisory lock key ("fash") held while a process migrates


class CatalogError(ValueError):
    pass


def database_url(db: str | Path | None = None) -> str:
    """A SQLAlchemy URL as is; anything else is a SQLite file path. Default: $FASHIONLENS_DB, else
    `fashionlens-catalog.db` in the current folder."""
    db = db or os.environ.get("FASHIONLENS_DB") or DEFAULT_DB_FILE
    text = str(db)
    if "://" in text:
        try:
            make_url(text)
        except ArgumentError as exc:
            raise CatalogError(f"--db {text!r}: not a valid database URL ({exc})") from None
        return text
    return f"sqlite:///{Path(text).expanduser().resolve()}"


def filter_labels(attributes: dict[str, str], predicted: dict[str, dict], colors: list[dict]) -> set[tuple[str, str]]:
    """(key, value) pairs a filter matches, lower-cased: given attributes win over predicted ones."""
    labels = {(k, str(v)) for k, v in attributes.items() if v not in (None, "")}
    labels |= {(k, str(p["value"])) for k, p in predicted.items() if k not in attributes}
    top = [c for i, c in enumerate(colors[:MAX_FILTER_COLORS]) if i == 0 or c["fraction"] >= TOP_COLOR_SHARE]
    if "color" not in attributes:
        labels |= {("color", word) for c in top for word in color_words(c)}
    return {(k.strip().lower()[:100], v.strip().lower()[:200]) for k, v in labels}


@dataclass
class NewItem:
    sha256: str
    source: str
    embedding: np.ndarray  # float32 [dim]
    attributes: dict[str, str] = field(default_factory=dict)  # given by the user
    predicted: dict[str, dict] = field(default_factory=dict)  # {key: {"value": str, "score": float}}
    colors: list[dict] = field(default_factory=list)  # [{"name", "fraction", "rgb"}], largest first


@dataclass
class StoredItem:
    id: int
    sha256: str
    source: str
    attributes: dict[str, str]
    predicted: dict[str, dict]
    colors: list[dict]

    @property
    def labels(self) -> dict[str, str]:
        """Given attributes over predicted values: what the item is, as far as the catalogue knows."""
        return {**{k: p["value"] for k, p in self.predicted.items()}, **self.attributes}

    def to_json(self) -> dict:
        return {"id": self.id, "image": self.source, "sha256": self.sha256, "attributes": self.labels,
                "given": self.attributes, "predicted": self.predicted, "colors": self.colors}


@dataclass(frozen=True)
class StoreState:
    uid: str
    revision: int
    embedding_key: str | None
    embedding_dim: int | None


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.close()


def migration_config(connection) -> Config:
    """Alembic's configuration for the shipped migrations, run on this connection."""
    config = Config()
    config.set_main_option("script_location", str(files("fashionlens.catalog") / "migrations"))
    config.attributes["connection"] = connection
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to head and make the state row, once: on PostgreSQL under a lock held to the end of the
    transaction, so several processes opening a new database at once (service replicas, Ray actors) do not all
    create its tables."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        command.upgrade(migration_config(conn), "head")
        if conn.scalar(select(func.count()).select_from(CatalogState)) == 0:
            conn.execute(insert(CatalogState).values(id=1, uid=str(uuid.uuid4()), revision=0))


class Store:
    def __init__(self, url: str):
        self.url = url
        try:
            # a server database gets a pool as large as the HTTP service's thread pool (40), so a burst of requests
            # waits on the database rather than on SQLAlchemy's default 5 + 10 connections
            pool = {} if make_url(url).get_backend_name() == "sqlite" else {"pool_size": 10, "max_overflow": 30}
            self.engine = create_engine(url, pool_pre_ping=True, **pool)
        except (ArgumentError, NoSuchModuleError) as exc:
            raise CatalogError(f"--db {url!r}: unknown kind of database ({exc})") from None
        if self.engine.dialect.name == "sqlite":
            Path(self.engine.url.database).parent.mkdir(parents=True, exist_ok=True)
            event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            migrate(self.engine)
        except OperationalError as exc:
            raise CatalogError(f"{self.engine.url!r}: cannot open the database ({exc.orig})") from None

    def close(self) -> None:
        self.engine.dispose()

    def state(self) -> StoreState:
        with self.engine.connect() as conn:
            row = conn.execute(select(CatalogState).where(CatalogState.id == 1)).one()
        return StoreState(row.uid, row.revision, row.embedding_key, row.embedding_dim)

    def revision(self) -> int:
        with self.engine.connect() as conn:
            return conn.scalar(select(CatalogState.revision).where(CatalogState.id == 1))

    def count(self) -> int:
        with self.engine.connect() as conn:
            return conn.scalar(select(func.count()).select_from(Item))

    def known(self, sha256s: list[str]) -> dict[str, int]:
        """sha256 -> item id of the images already stored."""
        return self._ids_by(Item.sha256, sha256s)

    def known_sources(self, sources: list[str]) -> dict[str, int]:
        """source -> item id of the sources already stored, by their exact string: what a rerun skips without
        reading or downloading."""
        return self._ids_by(Item.source, sources)

    def _ids_by(self, column, values: list[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        unique = list(dict.fromkeys(values))
        with self.engine.connect() as conn:
            for start in range(0, len(unique), 500):
                rows = conn.execute(select(column, Item.id).where(column.in_(unique[start:start + 500])))
                found.update(dict(rows.all()))
        return found

    def add(self, items: list[NewItem], embedding_key: str, dim: int) -> tuple[dict[str, int], dict[str, int], int]:
        """Insert in one transaction. Returns ({sha256: new id}, {sha256: id} of images already stored, the new
        revision); a second copy in the same batch is stored once."""
        with self.engine.begin() as conn:
            state = conn.execute(select(CatalogState).where(CatalogState.id == 1).with_for_update()).one()
            if state.embedding_key is None:
                conn.execute(update(CatalogState).where(CatalogState.id == 1)
                             .values(embedding_key=embedding_key, embedding_dim=dim))
            elif state.embedding_key != embedding_key or state.embedding_dim != dim:
                raise CatalogError(f"this catalogue holds {state.embedding_key!r} embeddings ({state.embedding_dim} "
                                   f"values); cannot add {embedding_key!r} ({dim}): use a new --db")
            existing: dict[str, int] = {}
            unique = list(dict.fromkeys(item.sha256 for item in items))
            for start in range(0, len(unique), 500):
                rows = conn.execute(select(Item.sha256, Item.id).where(Item.sha256.in_(unique[start:start + 500])))
                existing.update(dict(rows.all()))
            fresh: dict[str, NewItem] = {}
            for item in items:
                if item.sha256 not in existing and item.sha256 not in fresh:
                    fresh[item.sha256] = item
            if not fresh:
                return {}, existing, state.revision
            rows = [{"sha256": i.sha256, "source": i.source, "attributes": i.attributes, "predicted": i.predicted,
                     "colors": i.colors, "embedding": np.asarray(i.embedding, dtype="<f4").tobytes()}
                    for i in fresh.values()]
            ids = list(conn.scalars(insert(Item).returning(Item.id, sort_by_parameter_order=True), rows))
            labels = [{"item_id": item_id, "key": k, "value": v}
                      for item_id, i in zip(ids, fresh.values(), strict=True)
                      for k, v in sorted(filter_labels(i.attributes, i.predicted, i.colors))]
            if labels:
                conn.execute(insert(ItemLabel), labels)
            revision = self._bump(conn)
        return dict(zip(fresh, ids, strict=True)), existing, revision

    def remove(self, ids: list[int]) -> tuple[list[int], int]:
        """Delete these items (and their labels); returns the ids that existed and the new revision."""
        ids = sorted(set(int(i) for i in ids))
        with self.engine.begin() as conn:
            found: list[int] = []
            for start in range(0, len(ids), 500):
                found += conn.scalars(select(Item.id).where(Item.id.in_(ids[start:start + 500])))
            if not found:
                return [], self.revision()
            for start in range(0, len(found), 500):
                chunk = found[start:start + 500]
                conn.execute(delete(ItemLabel).where(ItemLabel.item_id.in_(chunk)))
                conn.execute(delete(Item).where(Item.id.in_(chunk)))
            revision = self._bump(conn)
        return sorted(found), revision

    @staticmethod
    def _bump(conn) -> int:
        conn.execute(update(CatalogState).where(CatalogState.id == 1).values(revision=CatalogState.revision + 1))
        return conn.scalar(select(CatalogState.revision).where(CatalogState.id == 1))

    def items(self, ids: list[int]) -> dict[int, StoredItem]:
        columns = (Item.id, Item.sha256, Item.source, Item.attributes, Item.predicted, Item.colors)
        found: dict[int, StoredItem] = {}
        unique = list(dict.fromkeys(int(i) for i in ids))
        with self.engine.connect() as conn:
            for start in range(0, len(unique), 500):
                for row in conn.execute(select(*columns).where(Item.id.in_(unique[start:start + 500]))):
                    found[row.id] = StoredItem(*row)
        return found

    def page(self, limit: int, offset: int = 0) -> list[StoredItem]:
        columns = (Item.id, Item.sha256, Item.source, Item.attributes, Item.predicted, Item.colors)
        with self.engine.connect() as conn:
            rows = conn.execute(select(*columns).order_by(Item.id).limit(limit).offset(offset))
            return [StoredItem(*row) for row in rows]

    def ids(self) -> np.ndarray:
        with self.engine.connect() as conn:
            return np.fromiter(conn.scalars(select(Item.id).order_by(Item.id)), dtype=np.int64)

    def embeddings(self, ids: np.ndarray | None = None, batch: int = 10_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, float32 vectors) in batches: all items, or the given ids."""
        dim = self.state().embedding_dim
        with self.engine.connect() as conn:
            if ids is None:
                last = -1
                while True:
                    rows = conn.execute(select(Item.id, Item.embedding).where(Item.id > last).order_by(Item.id)
                                        .limit(batch)).all()
                    if not rows:
                        return
                    last = rows[-1][0]
                    yield self._unpack(rows, dim)
            else:
                ids = [int(i) for i in ids]
                for start in range(0, len(ids), 500):
                    rows = conn.execute(select(Item.id, Item.embedding).where(Item.id.in_(ids[start:start + 500]))).all()
                    if rows:
                        yield self._unpack(rows, dim)

    @staticmethod
    def _unpack(rows, dim: int) -> tuple[np.ndarray, np.ndarray]:
        vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), dim)
        return np.array([r[0] for r in rows], dtype=np.int64), vectors.astype(np.float32)

    def ids_where(self, where: dict[str, set[str]]) -> np.ndarray:
        """Sorted ids of the items matching every key (any of its values), compared case-insensitively."""
        result: np.ndarray | None = None
        with self.engine.connect() as conn:
            for key, values in where.items():
                key = key.strip().lower()
                values = {v.strip().lower() for v in values}
                if key == "color":
                    values = set().union(*(filter_terms(v) for v in values))
                query = select(ItemLabel.item_id).where(ItemLabel.key == key, ItemLabel.value.in_(sorted(values)))
                ids = np.unique(np.fromiter(conn.scalars(query), dtype=np.int64))
                result = ids if result is None else np.intersect1d(result, ids, assume_unique=True)
        return result if result is not None else self.ids()

    def filter_keys(self) -> set[str]:
        """Every key some item can be filtered by (given, predicted, colour)."""
        with self.engine.connect() as conn:
            return set(conn.scalars(select(ItemLabel.key).distinct()))

    def label_counts(self) -> dict[str, dict[str, int]]:
        query = select(ItemLabel.key, ItemLabel.value, func.count()).group_by(ItemLabel.key, ItemLabel.value)
        counts: dict[str, dict[str, int]] = {}
        with self.engine.connect() as conn:
            for key, value, n in conn.execute(query):
                counts.setdefault(key, {})[value] = n
        return {k: dict(sorted(v.items(), key=lambda kv: -kv[1])) for k, v in sorted(counts.items())}
