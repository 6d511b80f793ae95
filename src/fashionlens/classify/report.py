"""Evaluation report for multi-task image classifiers.

One call, `write_report`, turns per-task predictions into a folder a person can open (index.html with
confusion matrices and the most confident mistakes) and that tools can read (metrics.json, whose shape
is a stable interface: exactly `{task: task_metrics(...)}`).
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    top_k_accuracy_score,
)

from fashionlens.images import ImageError, load_image

THUMB_SIZE = 160


@dataclass(frozen=True)
class TaskPredictions:
    """Predictions of one task head; rows with `y_true == -1` have no label for this task."""

    task: str
    classes: list[str]
    y_true: np.ndarray
    probs: np.ndarray
    images: list[str]


def _labelled(p: TaskPredictions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate shapes once and keep only the labelled rows: (row indices, y_true, probs)."""
    y = np.asarray(p.y_true).astype(int).reshape(-1)
    probs = np.asarray(p.probs, dtype=float)
    k = len(p.classes)
    if probs.ndim != 2 or probs.shape != (len(y), k) or len(p.images) != len(y):
        raise ValueError(
            f"task {p.task!r}: y_true {y.shape}, probs {probs.shape}, {len(p.images)} images and "
            f"{k} classes do not line up"
        )
    if len(set(p.classes)) != k:
        raise ValueError(f"task {p.task!r}: duplicate class names")
    if ((y < -1) | (y >= k)).any():
        raise ValueError(f"task {p.task!r}: y_true has ids outside -1..{k - 1}")
    rows = np.flatnonzero(y != -1)
    return rows, y[rows], probs[rows]


def task_metrics(p: TaskPredictions) -> dict:
    """Accuracy, top-3, macro-F1 and per-class scores over the labelled rows, as plain JSON types.

    With no labelled rows the three headline scores are None (undefined, and NaN is not valid JSON).
    macro_f1 averages over the classes present in y_true or the predictions (sklearn's default), so a
    class absent from this split does not count as an F1 of 0; per_class still lists every class.
    """
    _, y, probs = _labelled(p)
    k = len(p.classes)
    labels = list(range(k))
    pred = probs.argmax(axis=1) if len(y) else np.zeros(0, dtype=int)
    if len(y):
        precision, recall, f1, support = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    else:
        precision = recall = f1 = support = np.zeros(k)
    per_class = {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(p.classes)
    }
    if not len(y):
        return {"accuracy": None, "top3": None, "macro_f1": None, "n": 0, "per_class": per_class}
    # top_k >= n_classes always contains the true class; sklearn would warn, so skip the call.
    top3 = 1.0 if k <= 3 else top_k_accuracy_score(y, probs, k=3, labels=labels)
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "top3": float(top3),
        "macro_f1": float(f1_score(y, pred, average="macro", zero_division=0)),
        "n": int(len(y)),
        "per_class": per_class,
    }


def _slugs(tasks: list[str]) -> dict[str, str]:
    """File-name-safe, unique name per task ("a/b" and "a_b" must not overwrite each other)."""
    out: dict[str, str] = {}
    for task in tasks:
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", task).strip(".") or "task"
        slug, i = base, 2
        while slug in out.values():
            slug, i = f"{base}-{i}", i + 1
        out[task] = slug
    return out


def _confusion_png(p: TaskPredictions, path: Path) -> None:
    """Row-normalised confusion matrix; Agg canvas on a bare Figure, so no pyplot state or window."""
    _, y, probs = _labelled(p)
    k = len(p.classes)
    side = max(5.0, 0.55 * k + 3.0)
    fig = Figure(figsize=(side + 1.0, side), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    counts = np.bincount(y, minlength=k)
    display_labels = [f"{name} (n={counts[i]})" for i, name in enumerate(p.classes)]
    cm = (
        confusion_matrix(y, probs.argmax(axis=1), labels=list(range(k)), normalize="true")
        if len(y)
        else np.zeros((k, k))  # sklearn refuses empty input; an empty task still gets its page
    )
    ConfusionMatrixDisplay(cm, display_labels=display_labels).plot(
        include_values=k <= 30,  # beyond that the numbers overlap and only the colours are readable
        values_format=".2f",
        cmap="Blues",
        text_kw={"fontsize": 10 if k <= 10 else 8},
        ax=ax,
    )
    # Counts belong to the true rows only; the predicted axis keeps the bare class names.
    ax.set_xticks(range(k), p.classes, rotation=45 if k <= 8 else 90, ha="right" if k <= 8 else "center")
    ax.set_title(f"{p.task}: normalised by true class")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    fig.clear()


def _mistakes(p: TaskPredictions, folder: Path, limit: int) -> tuple[list[dict], int, int]:
    """Thumbnails of the wrong predictions the model was surest about (ties by image path).

    Returns (shown mistakes, total mistakes, unreadable images skipped).
    """
    rows, y, probs = _labelled(p)
    pred = probs.argmax(axis=1)
    score = probs[np.arange(len(y)), pred]
    wrong = np.flatnonzero(pred != y)
    order = sorted(wrong, key=lambda j: (-score[j], str(p.images[rows[j]])))
    folder.mkdir(parents=True, exist_ok=True)
    shown: list[dict] = []
    skipped = 0
    for j in order:
        if len(shown) >= limit:
            break
        image_path = str(p.images[rows[j]])
        try:
            image = load_image(image_path, min_size=THUMB_SIZE)
        except ImageError:
            skipped += 1
            continue
        image.thumbnail((THUMB_SIZE, THUMB_SIZE))
        name = f"{len(shown):03d}.jpg"
        image.save(folder / name, "JPEG", quality=85)
        shown.append(
            {
                "file": f"{folder.name}/{name}",
                "image": image_path,
                "true": p.classes[y[j]],
                "predicted": p.classes[pred[j]],
                "score": float(score[j]),
            }
        )
    return shown, len(wrong), skipped


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}
th:first-child,td:first-child{text-align:left}
.grid{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:0;width:170px;font-size:12px;word-break:break-all}
figure img{max-width:160px;max-height:160px;display:block}
.path{color:#666}
"""


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _html(title: str, metrics: dict, slugs: dict, mistakes: dict, totals: dict, tables: list) -> str:
    """Self-contained page: inline CSS, relative image links, every label and path escaped."""
    e = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        "<table><tr><th>task</th><th>accuracy</th><th>top-3</th><th>macro-F1</th><th>n</th></tr>",
    ]
    for task, m in metrics.items():
        out.append(
            f'<tr><td><a href="#{e(quote(slugs[task]))}">{e(task)}</a></td><td>{_fmt(m["accuracy"])}</td>'
            f'<td>{_fmt(m["top3"])}</td><td>{_fmt(m["macro_f1"])}</td><td>{m["n"]}</td></tr>'
        )
    out.append("</table>")
    for heading, columns, rows in tables:
        out.append(f"<h2>{e(heading)}</h2><table><tr>" + "".join(f"<th>{e(c)}</th>" for c in columns) + "</tr>")
        out += ["<tr>" + "".join(f"<td>{e(str(v))}</td>" for v in row) + "</tr>" for row in rows]
        out.append("</table>")
    for task, m in metrics.items():
        slug = slugs[task]
        out.append(f'<h2 id="{e(slug)}">{e(task)}</h2>')
        out.append(f'<img src="{e(quote(f"confusion_{slug}.png"))}" alt="confusion matrix for {e(task)}">')
        out.append("<table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>")
        for label, c in m["per_class"].items():
            out.append(
                f"<tr><td>{e(label)}</td><td>{c['precision']:.3f}</td><td>{c['recall']:.3f}</td>"
                f"<td>{c['f1']:.3f}</td><td>{c['support']}</td></tr>"
            )
        out.append("</table>")
        shown, total, skipped = mistakes[task], *totals[task]
        note = f", {skipped} unreadable image(s) skipped" if skipped else ""
        out.append(f"<h3>Most confident mistakes ({len(shown)} of {total}{note})</h3>")
        out.append('<div class="grid">')
        for item in shown:
            out.append(
                f'<figure><img src="{e(quote(item["file"]))}" alt="{e(item["image"])}">'
                f'<figcaption>{e(item["true"])} → {e(item["predicted"])} ({item["score"]:.2f})'
                f'<br><span class="path">{e(item["image"])}</span></figcaption></figure>'
            )
        out.append("</div>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write_report(
    predictions: list[TaskPredictions],
    out_dir: str | Path,
    *,
    title: str = "fashionlens evaluation",
    extra: dict | None = None,
    max_mistakes: int = 24,
    tables: list[tuple[str, list[str], list[list]]] | None = None,
) -> dict:
    """Write metrics.json, summary.json, confusion_<task>.png, mistakes_<task>/ and index.html.

    `extra` (run info, checkpoint, ...) goes to summary.json so metrics.json keeps its fixed shape.
    `tables` (heading, column names, rows) are shown on the page under the headline scores.
    Returns the metrics dict that was written to metrics.json.
    """
    tasks = [p.task for p in predictions]
    if len(set(tasks)) != len(tasks):
        raise ValueError(f"duplicate task names: {tasks}")
    json.dumps(extra or {})  # fail on a non-JSON `extra` before anything is written
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    slugs = _slugs(tasks)
    metrics = {p.task: task_metrics(p) for p in predictions}
    mistakes: dict[str, list[dict]] = {}
    totals: dict[str, tuple[int, int]] = {}
    for p in predictions:
        slug = slugs[p.task]
        _confusion_png(p, out / f"confusion_{slug}.png")
        shown, total, skipped = _mistakes(p, out / f"mistakes_{slug}", max(0, max_mistakes))
        mistakes[p.task], totals[p.task] = shown, (total, skipped)
    summary = {
        "title": title,
        "extra": extra or {},
        "counts": {
            p.task: {
                "n": metrics[p.task]["n"],
                "n_classes": len(p.classes),
                "unlabelled": int(len(p.images) - metrics[p.task]["n"]),
                "mistakes": totals[p.task][0],
                "mistakes_shown": len(mistakes[p.task]),
                "unreadable_images": totals[p.task][1],
            }
            for p in predictions
        },
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "index.html").write_text(_html(title, metrics, slugs, mistakes, totals, tables or []), encoding="utf-8")
    return metrics
