"""The history of analysed photos, in the catalogue's database: one row per (image, models), so the same photo
under the same models is analysed once, even when two requests race to store it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import Engine, delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from fashionlens.catalog.models import AnalysisLabel, AnalysisRecord
from fashionlens.colors.vocabulary import color_words, filter_terms


@dataclass(frozen=True)
class StoredAnalysis:
    id: int
    source: str
    created_at: datetime
    document: dict  # what the pipeline produced (`Analysis.to_json()`)

    def to_json(self) -> dict:
        created = self.created_at if self.created_at.tzinfo else self.created_at.replace(tzinfo=timezone.utc)
        return {"id": self.id, **self.document, "source": self.source, "created_at": created.isoformat()}


def history_labels(document: dict) -> set[tuple[str, str]]:
    """(key, value) pairs the history filters match: each garment's label, colour names and colour families."""
    pairs = set()
    for item in document.get("items", []):
        pairs.add(("label", str(item["label"]).lower()[:200]))
        pairs |= {("color", word[:200]) for c in item.get("colors", []) for word in color_words(c)}
    return pairs


@dataclass(frozen=True)
class NewAnalysis:
    sha256: str
    models_key: str  # `Analyzer.models_key`: the same photo under other models is another analysis
    source: str
    document: dict  # `Analysis.to_json()`


class AnalysisHistory:
    def __init__(self, engine: Engine):
        self.engine = engine

    def find(self, sha256: str, models_key: str) -> StoredAnalysis | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(AnalysisRecord).where(AnalysisRecord.sha256 == sha256,
                                                            AnalysisRecord.models_key == models_key)).first()
        return _stored(row) if row else None

    def known(self, sha256s: list[str], models_key: str) -> dict[str, int]:
        """sha256 -> analysis id of the images already analysed under these models."""
        found: dict[str, int] = {}
        unique = list(dict.fromkeys(sha256s))
        with self.engine.connect() as conn:
            for start in range(0, len(unique), 500):
                found.update(conn.execute(select(AnalysisRecord.sha256, AnalysisRecord.id).where(
                    AnalysisRecord.models_key == models_key,
                    AnalysisRecord.sha256.in_(unique[start:start + 500]))).all())
        return found

    def save_many(self, records: list[NewAnalysis]) -> list[tuple[int, bool]]:
        """Store a batch in one transaction; per record (its id, True if stored now): an image analysed before
        under the same models, or a second copy in the batch, keeps the first one stored. When another writer
        stores one of them meanwhile, the batch is stored one record at a time instead."""
        if not records:
            return []
        models = {r.models_key for r in records}
        try:
            with self.engine.begin() as conn:
                known = {}
                for key in models:
                    shas = [r.sha256 for r in records if r.models_key == key]
                    known.update({(sha, key): i for sha, i in conn.execute(select(
                        AnalysisRecord.sha256, AnalysisRecord.id).where(AnalysisRecord.models_key == key,
                                                                        AnalysisRecord.sha256.in_(shas))).all()})
                fresh = {}
                for r in records:
                    if (r.sha256, r.models_key) not in known:
                        fresh.setdefault((r.sha256, r.models_key), r)
                if fresh:
                    ids = list(conn.scalars(insert(AnalysisRecord).returning(AnalysisRecord.id,
                                                                             sort_by_parameter_order=True),
                                            [{"sha256": r.sha256, "models_key": r.models_key,
                                              "source": r.source[:2000], "document": r.document}
                                             for r in fresh.values()]))
                    labels = [{"analysis_id": i, "key": k, "value": v} for i, r in zip(ids, fresh.values(), strict=True)
                              for k, v in sorted(history_labels(r.document))]
                    if labels:
                        conn.execute(insert(AnalysisLabel), labels)
                    new = dict(zip(fresh, ids, strict=True))
                else:
                    new = {}
        except IntegrityError:
            return [(stored.id, created) for stored, created in
                    (self.save(r.sha256, r.models_key, r.source, r.document) for r in records)]
        out, seen = [], set()
        for r in records:
            key = (r.sha256, r.models_key)
            out.append((new[key], True) if key in new and key not in seen else (new.get(key, known.get(key)), False))
            seen.add(key)
        return out

    def save(self, sha256: str, models_key: str, source: str, document: dict) -> tuple[StoredAnalysis, bool]:
        """Store an analysis; returns it and True, or the one stored first for this image and models and False."""
        try:
            with self.engine.begin() as conn:
                new_id = conn.scalar(insert(AnalysisRecord).returning(AnalysisRecord.id).values(
                    sha256=sha256, models_key=models_key, source=source[:2000], document=document))
                labels = [{"analysis_id": new_id, "key": k, "value": v} for k, v in sorted(history_labels(document))]
                if labels:
                    conn.execute(insert(AnalysisLabel), labels)
        except IntegrityError:
            existing = self.find(sha256, models_key)
            if existing is None:
                raise
            return existing, False
        return self.get(new_id), True

    def get(self, analysis_id: int) -> StoredAnalysis | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(AnalysisRecord).where(AnalysisRecord.id == analysis_id)).first()
        return _stored(row) if row else None

    def delete(self, analysis_id: int) -> bool:
        with self.engine.begin() as conn:
            conn.execute(delete(AnalysisLabel).where(AnalysisLabel.analysis_id == analysis_id))
            return conn.execute(delete(AnalysisRecord).where(AnalysisRecord.id == analysis_id)).rowcount > 0

    def page(self, *, label: str | None = None, color: str | None = None, since: datetime | None = None,
             until: datetime | None = None, limit: int = 20, offset: int = 0) -> tuple[int, list[StoredAnalysis]]:
        """(matching count, one page of them newest first)."""
        query = select(AnalysisRecord)
        for key, value in (("label", label), ("color", color)):
            if value:
                values = filter_terms(value) if key == "color" else {value.strip().lower()}
                query = query.where(AnalysisRecord.id.in_(select(AnalysisLabel.analysis_id).where(
                    AnalysisLabel.key == key, AnalysisLabel.value.in_(sorted(values)))))
        if since:
            query = query.where(AnalysisRecord.created_at >= since)
        if until:
            query = query.where(AnalysisRecord.created_at < until)
        with self.engine.connect() as conn:
            total = conn.scalar(select(func.count()).select_from(query.subquery()))
            rows = conn.execute(query.order_by(AnalysisRecord.created_at.desc(), AnalysisRecord.id.desc())
                                .limit(limit).offset(offset)).all()
        return total, [_stored(r) for r in rows]

    def count(self) -> int:
        with self.engine.connect() as conn:
            return conn.scalar(select(func.count()).select_from(AnalysisRecord))


def _stored(row) -> StoredAnalysis:
    return StoredAnalysis(row.id, row.source, row.created_at, row.document)
