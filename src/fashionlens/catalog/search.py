"""Search results and filters: what `Catalog.search` takes and returns, and the JSON the CLI prints."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Hit:
    id: int
    image: str  # the path or URL the item was added from
    score: float  # cosine similarity, higher is closer
    attributes: dict[str, str]  # given attributes over predicted ones
    colors: list[dict] = field(default_factory=list)
    sha256: str = ""  # the item's image hash

    def to_json(self) -> dict:
        return {"id": self.id, "image": self.image, "sha256": self.sha256, "score": round(self.score, 6),
                "attributes": self.attributes, "colors": [c["name"] for c in self.colors]}


@dataclass
class QueryResult:
    query: str  # the query image's path, "vector:<row>", or a text query's words
    results: list[Hit]  # best first
    error: str | None = None  # why the query could not be used
    unknown_words: list[str] = field(default_factory=list)  # a text query's words the text model never saw

    def to_json(self) -> dict:
        data = {"query": self.query, "results": [h.to_json() for h in self.results]}
        return (data | ({"error": self.error} if self.error else {})
                | ({"unknown_words": self.unknown_words} if self.unknown_words else {}))


Where = dict[str, set[str]]


ALWAYS_FILTERABLE = frozenset({"category", "color"})  # keys every item can have, even in an empty catalogue


class UnknownFilterKey(ValueError):
    """A filter on a key no item has: an error naming the known keys, not a quietly empty answer (a typo such
    as `label=shoes` for `category=shoes` would otherwise look like "nothing matches")."""


def check_filter_keys(where: Where, known: set[str]) -> None:
    unknown = sorted(set(where) - known - ALWAYS_FILTERABLE)
    if unknown:
        keys = ", ".join(sorted(known | ALWAYS_FILTERABLE))
        raise UnknownFilterKey(f"unknown filter key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: "
                               f"the catalogue's keys are {keys}")


def normalise_where(where: dict | None) -> Where:
    """{"category": "dress", "color": ["red", "pink"]} -> {"category": {"dress"}, "color": {"red", "pink"}}:
    every key must match, any of its values (case-insensitive)."""
    result: Where = {}
    for key, values in (where or {}).items():
        values = {values} if isinstance(values, str) else set(values)
        if not str(key).strip() or not values or any(not str(v).strip() for v in values):
            raise ValueError(f"filter {key}={values}: needs a key and a non-empty value")
        result[str(key).strip().lower()] = {str(v).strip().lower() for v in values}
    return result
