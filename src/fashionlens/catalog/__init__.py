"""The catalogue: items with image hash, source, attributes, colours and embedding in a SQL store (SQLite or
PostgreSQL, Alembic-migrated), a FAISS index beside it, and similar-item search with attribute filters.

Names are imported on first use, so `fashionlens --help` does not load FAISS or SQLAlchemy.
"""

from importlib import import_module

_EXPORTS = {
    "AddReport": "catalog", "Catalog": "catalog", "IndexSettings": "index", "Hit": "search",
    "QueryResult": "search", "CatalogError": "store", "StoredItem": "store", "database_url": "store",
    "RayOptions": "ray_jobs",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'fashionlens.catalog' has no attribute {name!r}")
    return getattr(import_module(f"fashionlens.catalog.{_EXPORTS[name]}"), name)
