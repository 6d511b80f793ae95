"""The catalogue: items with image hash, source, attributes, colours and embedding in a SQL store (SQLite or
PostgreSQL, Alembic-migrated), a FAISS index beside it, and similar-item search with attribute filters.

Names are imported on first use, so `fashionlens --help` does not load FAISS or SQLAlchemy.
"""

from fashionlens.lazy import lazy_exports

_EXPORTS = {
    "AddReport": "catalog", "Catalog": "catalog", "IndexSettings": "index", "Hit": "search",
    "QueryResult": "search", "CatalogError": "store", "StoredItem": "store", "database_url": "store",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
