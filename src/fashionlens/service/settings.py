"""The service's settings: defaults, overridden by FASHIONLENS_* environment variables, overridden by arguments."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from fashionlens.fetch import FetchPolicy
from fashionlens.pipeline import PipelineConfig


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name}={value!r}: expected a whole number") from None


@dataclass(frozen=True)
class ServiceSettings:
    db: str | None = None  # SQLAlchemy URL or SQLite path; None: $FASHIONLENS_DB, else ./fashionlens-catalog.db
    api_token: str | None = None  # read-write tokens, comma separated: "Authorization: Bearer <token>"
    read_tokens: str | None = None  # read-only tokens, comma separated
    token_file: Path | None = None  # more tokens, one a line: "read <token>" or "write <token>"
    rate_limit: int = 60  # analyses and writes a client (token, else address) may make a minute; bursts up to it
    max_queue: int = 4  # model requests (analyse, add, search by image) running or waiting; past it: 503
    max_upload_bytes: int = 20 * 2**20  # request bodies (uploads) over this are refused with 413
    media_dir: Path | None = None  # where uploaded and fetched photos are kept; default: beside the database
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    fetch: FetchPolicy = field(default_factory=FetchPolicy)
    seed: tuple[str, ...] = ()  # image files or folders added to the catalogue on start (the demo's samples)

    @classmethod
    def from_env(cls, **overrides) -> ServiceSettings:
        """FASHIONLENS_DB, FASHIONLENS_API_TOKEN, FASHIONLENS_READ_TOKENS, FASHIONLENS_TOKEN_FILE,
        FASHIONLENS_RATE_LIMIT, FASHIONLENS_MAX_QUEUE, FASHIONLENS_MAX_UPLOAD_BYTES, FASHIONLENS_MEDIA_DIR,
        FASHIONLENS_DETECTOR ("none" for whole photos only), FASHIONLENS_CLASSIFIERS (comma separated folders),
        and the fetch policy's own variables (FASHIONLENS_FETCH_ALLOW, ...)."""
        env = os.environ
        pipeline = PipelineConfig()
        if "FASHIONLENS_DETECTOR" in env:
            pipeline = replace(pipeline, detector=None if env["FASHIONLENS_DETECTOR"].lower() == "none"
                               else env["FASHIONLENS_DETECTOR"])
        if env.get("FASHIONLENS_CLASSIFIERS"):
            pipeline = replace(pipeline, classifiers=tuple(c.strip() for c in env["FASHIONLENS_CLASSIFIERS"].split(",")
                                                           if c.strip()))
        base = cls(db=env.get("FASHIONLENS_DB") or None, api_token=env.get("FASHIONLENS_API_TOKEN") or None,
                   read_tokens=env.get("FASHIONLENS_READ_TOKENS") or None,
                   token_file=Path(env["FASHIONLENS_TOKEN_FILE"]) if env.get("FASHIONLENS_TOKEN_FILE") else None,
                   rate_limit=_env_int("FASHIONLENS_RATE_LIMIT", cls.rate_limit),
                   max_queue=_env_int("FASHIONLENS_MAX_QUEUE", cls.max_queue),
                   max_upload_bytes=_env_int("FASHIONLENS_MAX_UPLOAD_BYTES", cls.max_upload_bytes),
                   media_dir=Path(env["FASHIONLENS_MEDIA_DIR"]) if env.get("FASHIONLENS_MEDIA_DIR") else None,
                   pipeline=pipeline, fetch=FetchPolicy.from_env())
        settings = replace(base, **{k: v for k, v in overrides.items() if v is not None})
        if settings.rate_limit < 1 or settings.max_queue < 1:
            raise ValueError("FASHIONLENS_RATE_LIMIT and FASHIONLENS_MAX_QUEUE: expected at least 1")
        return settings
