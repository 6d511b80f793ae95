"""CSV/TSV label tables: an image column, label columns, row filters and label merging."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from fashionlens.data.samples import SPLIT_ALIASES, LabeledImages, Sample, SkippedInput
from fashionlens.images import IMAGE_SUFFIXES


def parse_where(terms: list[str]) -> dict[str, set[str]]:
    """`["type=product", "gender=Men,Women"]` -> {"type": {"product"}, "gender": {"Men", "Women"}}."""
    filters: dict[str, set[str]] = {}
    for term in terms:
        column, sep, values = term.partition("=")
        if not sep or not column:
            raise ValueError(f"--where {term!r}: expected COLUMN=VALUE[,VALUE...]")
        filters.setdefault(column.strip(), set()).update(v.strip() for v in values.split(","))
    return filters


def parse_label_map(terms: list[str]) -> dict[str, dict[str, str]]:
    """`["decor:Gzhel,Khokhloma=Russia"]` -> {"decor": {"Gzhel": "Russia", "Khokhloma": "Russia"}}."""
    mapping: dict[str, dict[str, str]] = {}
    for term in terms:
        task, sep, rule = term.partition(":")
        sources, eq, target = rule.partition("=")
        if not sep or not eq or not task or not target:
            raise ValueError(f"--map {term!r}: expected TASK:LABEL[,LABEL...]=NEW_LABEL")
        for source in sources.split(","):
            mapping.setdefault(task.strip(), {})[source.strip()] = target.strip()
    return mapping


def _resolve_image(value: str, roots: list[Path]) -> Path | None:
    """Absolute paths, paths relative to the data folder or the table, or bare names without a suffix."""
    candidate = Path(value)
    if candidate.is_absolute():
        return candidate if candidate.is_file() else None
    for root in roots:
        path = root / candidate
        if path.is_file():
            return path
        if not candidate.suffix:
            for suffix in sorted(IMAGE_SUFFIXES):
                if (with_suffix := path.with_name(path.name + suffix)).is_file():
                    return with_suffix
    return None


@dataclass
class TableRows:
    """A table's cells as written, for the readers that need every column (audit checks, cleaned copies)."""

    path: Path
    columns: list[str]
    delimiter: str
    rows: list[tuple[int, dict[str, str]]]  # (line the row ends on, {column: cell}) for rows passing `where`


def read_rows(table: str | Path, where: dict[str, set[str]] | None = None, required: list[str] = ()) -> TableRows:
    """Every row that passes `where`, with the line it ends on (blank lines and quoted newlines count)."""
    table = Path(table)
    if not table.is_file():
        raise FileNotFoundError(f"{table}: label table not found")
    delimiter = "\t" if table.suffix.lower() in (".tsv", ".tab") else ","
    where = where or {}
    with open(table, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh, delimiter=delimiter)
        columns = list(reader.fieldnames or [])
        unknown = [c for c in dict.fromkeys([*required, *where]) if c not in columns]
        if unknown:
            raise ValueError(f"{table}: no column {', '.join(map(repr, unknown))} (columns: {', '.join(columns)})")
        rows = [(reader.line_num, row) for row in reader
                if all((row.get(column) or "").strip() in values for column, values in where.items())]
    return TableRows(table, columns, delimiter, rows)


def read_table(
    table: str | Path,
    *,
    image_column: str,
    tasks: list[str],
    images_root: str | Path | None = None,
    where: dict[str, set[str]] | None = None,
    label_map: dict[str, dict[str, str]] | None = None,
    split_column: str | None = None,
) -> LabeledImages:
    label_map = label_map or {}
    for task in label_map:
        if task not in tasks:
            raise ValueError(f"--map names {task!r}, which is not a --task ({', '.join(tasks)})")
    table_rows = read_rows(table, where, [image_column, *tasks, *([split_column] if split_column else [])])
    table = table_rows.path
    roots = [Path(images_root)] if images_root else []
    roots += [table.parent, table.parent / "images"]
    samples: list[Sample] = []
    skipped: list[SkippedInput] = []
    for line, row in table_rows.rows:
        where_row = f"{table}:{line}"
        value = (row.get(image_column) or "").strip()
        if not value:
            skipped.append(SkippedInput(where_row, f"empty {image_column!r}"))
            continue
        path = _resolve_image(value, roots)
        if path is None:
            skipped.append(SkippedInput(where_row, f"image {value!r} not found"))
            continue
        labels: dict[str, str | None] = {}
        for task in tasks:
            label = (row.get(task) or "").strip() or None
            labels[task] = label_map.get(task, {}).get(label, label) if label else None
        if all(v is None for v in labels.values()):
            skipped.append(SkippedInput(where_row, "no label in any task column"))
            continue
        split = SPLIT_ALIASES.get((row.get(split_column) or "").strip().lower()) if split_column else None
        samples.append(Sample(path, labels, split, line))
    if not samples:
        raise ValueError(f"{table}: no usable rows (after filters {where or 'none'})")
    return LabeledImages(samples, list(tasks), str(table), skipped)
