"""Checks on the table itself: columns that should map one to one but do not, empty cells, and classes with too
few images to learn or to check."""

from __future__ import annotations

import itertools
import re
from collections import Counter, defaultdict

from fashionlens.audit.findings import TableIssue
from fashionlens.data.samples import LabeledImages
from fashionlens.data.tables import TableRows

NAME_PAIR = re.compile(r"^(?P<base>.+?)[ _-]?(label|id|code|name|idx|index)$", re.IGNORECASE)
MIN_AGREEMENT = 0.9
"""Two columns not paired by name are checked when their values agree one to one on at least this share of rows
(and each has the same number of values): a code column and its name, however they are called."""
MAX_VALUES = 1000
EXAMPLES = 5


def _lines(lines: list[int]) -> str:
    more = f", … ({len(lines)} rows)" if len(lines) > EXAMPLES else ""
    return ", ".join(map(str, lines[:EXAMPLES])) + more


def _named_pairs(columns: list[str]) -> set[tuple[str, str]]:
    """`type` and `type_label`, `country` and `country_id`...: pairs whose names say they are one concept."""
    lowered = {c.lower(): c for c in columns}
    pairs = set()
    for column in columns:
        match = NAME_PAIR.match(column)
        if match and (base := lowered.get(match.group("base").lower())) and base != column:
            pairs.add((column, base))
    return pairs


def _many(pairs: Counter, left: str, right: str, lines: dict) -> list[str]:
    """Each `left` value found with more than one `right` value, with its counts and the minority rows' lines."""
    by_value = defaultdict(Counter)
    for (a, b), n in pairs.items():
        by_value[a][b] += n
    out = []
    for a, seen in sorted(by_value.items()):
        if len(seen) > 1:
            (top, _), *rest = seen.most_common()
            minority = sorted(line for b, _ in rest for line in lines[a, b])
            parts = ", ".join(f"{b!r} in {n} rows" for b, n in seen.most_common())
            out.append(f"{left} {a!r} is {parts} (rows not {top!r}: lines {_lines(minority)})")
    return out


def mapping_issues(table: TableRows) -> list[TableIssue]:
    """Pairs of columns that map one to one on most rows, or whose names pair them, but not on all."""
    n = len(table.rows)
    values = {c: [(row.get(c) or "").strip() for _, row in table.rows] for c in table.columns}
    categorical = [c for c in table.columns
                   if 2 <= len(set(values[c]) - {""}) <= min(MAX_VALUES, max(2, n // 2))]
    named = _named_pairs(categorical)
    issues = []
    for a, b in itertools.combinations(categorical, 2):
        pairs = Counter((x, y) for x, y in zip(values[a], values[b], strict=True) if x and y)
        if not pairs:
            continue
        both = sum(pairs.values())
        top = defaultdict(int)
        for (x, _), k in pairs.items():
            top[x] = max(top[x], k)
        forward = sum(top.values())
        bijective = len({x for x, _ in pairs}) == len({y for _, y in pairs})
        if (a, b) not in named and (b, a) not in named and not (bijective and forward / both >= MIN_AGREEMENT):
            continue
        lines = defaultdict(list)
        for (line, _), x, y in zip(table.rows, values[a], values[b], strict=True):
            if x and y:
                lines[x, y].append(line)
        flipped = Counter({(y, x): k for (x, y), k in pairs.items()})
        problems = _many(pairs, a, b, lines) + _many(flipped, b, a, {(y, x): v for (x, y), v in lines.items()})
        if problems:
            issues.append(TableIssue([a, b], f"{a} and {b} should map one to one but do not: " + "; ".join(problems)))
    return issues


def empty_cells(table: TableRows) -> list[TableIssue]:
    issues = []
    for column in table.columns:
        lines = [line for line, row in table.rows if not (row.get(column) or "").strip()]
        if lines:
            issues.append(TableIssue([column], f"{len(lines)} empty cells in {column} (lines {_lines(lines)})"))
    return issues


def small_classes(data: LabeledImages, rows: list[int], min_images: int) -> list[TableIssue]:
    """Per task, the classes with fewer than `min_images` readable images (`rows`: the readable samples)."""
    issues = []
    for task in data.tasks:
        counts = Counter(data.samples[i].labels.get(task) for i in rows)
        counts.pop(None, None)
        few = sorted((n, label) for label, n in counts.items() if n < min_images)
        if few:
            listed = ", ".join(f"{label!r} ({n})" for n, label in few[:20]) + (", …" if len(few) > 20 else "")
            issues.append(TableIssue([task], f"{len(few)} classes of {task} have fewer than {min_images} images, "
                                             f"too few to learn or check: {listed}"))
    return issues
