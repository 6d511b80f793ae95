"""The catalogue schema (SQLAlchemy 2), shared by the CLI and the HTTP service; changed only by migrations.

`items` holds one row per distinct image (by sha256); `item_labels` holds the values that filters match, one
row per (item, key, value), indexed, so `category=dress` is one index lookup on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, LargeBinary, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {"ix": "ix_%(column_0_label)s", "uq": "uq_%(table_name)s_%(column_0_name)s",
          "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s", "pk": "pk_%(table_name)s"}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class CatalogState(Base):
    """One row: which catalogue this is (`uid`, stamped on its index file), its embedding space, and a revision
    bumped in the same transaction as every change, so a saved index knows whether it is stale."""

    __tablename__ = "catalog_state"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(36))
    embedding_key: Mapped[str | None] = mapped_column(String(200))
    embedding_dim: Mapped[int | None] = mapped_column(Integer)
    revision: Mapped[int] = mapped_column(Integer, default=0)


class Item(Base):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    source: Mapped[str] = mapped_column(Text)  # file path or URL the image was added from
    attributes: Mapped[dict] = mapped_column(JSON, default=dict)  # given by the user: {key: value}
    predicted: Mapped[dict] = mapped_column(JSON, default=dict)  # {key: {"value": ..., "score": ...}}
    colors: Mapped[list] = mapped_column(JSON, default=list)  # [{"name", "fraction", "rgb"}], largest first
    embedding: Mapped[bytes] = mapped_column(LargeBinary)  # float32, catalog_state.embedding_dim values
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # a rerun of `ingest` skips the sources it already stored; a hash index has no length limit on PostgreSQL
    __table_args__ = (Index("ix_items_source", "source", postgresql_using="hash"),)


class ItemLabel(Base):
    """What filters match: given attributes, predicted ones the user did not give, and the top colours."""

    __tablename__ = "item_labels"
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(String(200), primary_key=True)
    __table_args__ = (Index("ix_item_labels_key_value", "key", "value"),)


class AnalysisRecord(Base):
    """One analysed photo (the HTTP service's `POST /v1/analyze`): the whole result document, reused when the same
    image comes again under the same models (`models_key`)."""

    __tablename__ = "analyses"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sha256: Mapped[str] = mapped_column(String(64))
    models_key: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(Text)  # "upload:<file name>" or the URL
    document: Mapped[dict] = mapped_column(JSON)  # the analysis as the API returns it, without its id
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    __table_args__ = (UniqueConstraint("sha256", "models_key"),)


class AnalysisLabel(Base):
    """What the history filters match: each garment's label and colour names."""

    __tablename__ = "analysis_labels"
    analysis_id: Mapped[int] = mapped_column(ForeignKey("analyses.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(String(200), primary_key=True)
    __table_args__ = (Index("ix_analysis_labels_key_value", "key", "value"),)
