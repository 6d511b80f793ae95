"""Imports flow one way: images, detections, masks and crops, attributes and embeddings, then the store, then the
service and the command line. Read from the source (every import, also those inside functions)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "fashionlens"
ANALYSIS = ("images", "detect", "parse", "classify", "colors", "attributes", "embeddings", "features", "pipeline",
            "sources", "ray_jobs", "taxonomy", "masks", "data")
STORE = ("catalog",)
ABOVE = ("service", "cli", "cli_common")


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fashionlens."):
            found.add(node.module.removeprefix("fashionlens."))
        elif isinstance(node, ast.Import):
            found |= {a.name.removeprefix("fashionlens.") for a in node.names if a.name.startswith("fashionlens.")}
    return found


def _layer_modules(tops: tuple[str, ...]) -> list[Path]:
    """The modules under `tops`, leaving out each package's own command-line module (`detect/cli.py`: CLI)."""
    return [p for p in PACKAGE.rglob("*.py") if _module(p).split(".")[0] in tops and p.stem != "cli"]


def _offending(tops: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(f"{_module(p)} imports {target}" for p in _layer_modules(tops) for target in _imports(p)
                  if target.split(".")[0] in forbidden or target.endswith(".cli"))


@pytest.mark.parametrize(("tops", "forbidden"), [
    (ANALYSIS, STORE + ABOVE),  # the pipeline never reaches for the catalogue or the service
    (STORE, ABOVE),
])
def test_lower_layers_never_import_higher_ones(tops, forbidden):
    assert _offending(tops, forbidden) == []
