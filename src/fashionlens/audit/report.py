"""The audit as files: index.html with thumbnails and counts, findings.jsonl (the `--json` lines) and
summary.json."""

from __future__ import annotations

import hashlib
import html
import json
from pathlib import Path
from urllib.parse import quote

from fashionlens.atomic import write_text_atomic
from fashionlens.audit.findings import DUPLICATES, KINDS, LABEL, OUTLIER, TABLE, UNREADABLE, AuditReport
from fashionlens.images import ImageError, load_image

THUMB_SIZE = 128
SHOWN = {LABEL: 60, DUPLICATES: 40, OUTLIER: 30, UNREADABLE: 200, TABLE: 200}

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left}
.grid{display:flex;flex-wrap:wrap;gap:12px}
.group{border:1px solid #ddd;padding:8px;margin:8px 0}
.flag{color:#b00;font-weight:bold}
figure{margin:0;width:140px;font-size:12px;word-break:break-all}
figure img{max-width:128px;max-height:128px;display:block}
.path{color:#666}
"""


def summary(report: AuditReport) -> dict:
    return {"source": report.source, "images": report.images, "tasks": report.tasks, "counts": report.counts(),
            "label_check": report.label_check, "seconds": report.seconds}


class _Thumbnails:
    """One small JPEG per image, made on first use; an image that cannot be read gets none."""

    def __init__(self, folder: Path):
        self.folder, self.made = folder, {}

    def __call__(self, image: str) -> str | None:
        if image not in self.made:
            name = hashlib.sha1(image.encode()).hexdigest()[:16] + ".jpg"
            try:
                picture = load_image(image, min_size=THUMB_SIZE)
                picture.thumbnail((THUMB_SIZE, THUMB_SIZE))
                self.folder.mkdir(parents=True, exist_ok=True)
                picture.save(self.folder / name, "JPEG", quality=80)
                self.made[image] = f"{self.folder.name}/{name}"
            except (ImageError, OSError):
                self.made[image] = None
        return self.made[image]


def _figure(thumbs: _Thumbnails, image: str, caption: str) -> str:
    e = html.escape
    src = thumbs(image)
    picture = f'<img src="{e(quote(src))}" alt="{e(image)}" loading="lazy">' if src else "<em>no thumbnail</em>"
    return (f"<figure>{picture}<figcaption>{caption}<br><span class=\"path\">{e(image)}</span></figcaption>"
            "</figure>")


def _html(report: AuditReport, thumbs: _Thumbnails) -> str:
    e = html.escape
    counts = report.counts()
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>audit: {e(report.source)}</title><style>{_CSS}</style></head><body>",
           f"<h1>Audit of {e(report.source)}</h1>",
           f"<p>{report.images} images, tasks {e(', '.join(report.tasks))}; "
           f"{sum(report.seconds.values()):.1f} s ({e(', '.join(f'{k} {v:.1f}' for k, v in report.seconds.items()))})</p>",
           "<table><tr><th>finding</th><th>count</th></tr>"]
    for key, value in counts.items():
        out.append(f'<tr><td><a href="#{e(key)}">{e(key)}</a></td><td>{value}</td></tr>')
    out.append("</table>")
    if report.label_check:
        out.append("<table><tr><th>task</th><th>label check</th></tr>")
        for task, check in report.label_check.items():
            out.append(f"<tr><td>{e(task)}</td><td>{e(json.dumps(check))}</td></tr>")
        out.append("</table>")

    def heading(kind: str, title: str) -> list:
        items = report.of(kind)
        shown = min(len(items), SHOWN[kind])
        out.append(f'<h2 id="{kind}">{e(title)} ({shown} of {len(items)} shown)</h2>')
        return items[:shown]

    items = heading(LABEL, "Label issues, likeliest first")
    out.append('<div class="grid">')
    out += [_figure(thumbs, f.image, f"{e(f.task)}: {e(f.given)} → <b>{e(f.suggested)}</b> ({f.score:.2f})")
            for f in items]
    out.append("</div>")
    for group in heading(DUPLICATES, "Copies (conflicts and leaks first)"):
        flags = [name for name, on in (("conflict", group.conflict), ("leak", group.leak)) if on]
        out.append(f'<div class="group"><b>{"near" if group.near else "exact"} copies</b> '
                   f'<span class="flag">{e(" ".join(flags))}</span><div class="grid">')
        for image, label, split in zip(group.images, group.labels, group.splits, strict=True):
            text = label if isinstance(label, str) or label is None else ", ".join(f"{k}={v}" for k, v in label.items())
            out.append(_figure(thumbs, image, f"{e(str(text))}" + (f" ({e(split)})" if split else "")))
        out.append("</div></div>")
    items = heading(OUTLIER, "Outliers, farthest first")
    out.append('<div class="grid">')
    out += [_figure(thumbs, f.image, f"{f.score:.2f}") for f in items]
    out.append("</div>")
    out.append("<ul>" + "".join(f"<li>{e(f.image)}: {e(f.reason)}</li>"
                                for f in heading(UNREADABLE, "Unreadable")) + "</ul>")
    out.append("<ul>" + "".join(f"<li><b>{e(', '.join(f.columns))}</b>: {e(f.message)}</li>"
                                for f in heading(TABLE, "Table")) + "</ul>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def json_lines(report: AuditReport) -> list[str]:
    """One line per finding, grouped by kind in a fixed order."""
    return [json.dumps(f.to_json(), ensure_ascii=False) for kind in KINDS for f in report.of(kind)]


def write_report(report: AuditReport, out: str | Path) -> Path:
    """REPORT/index.html (thumbnails in REPORT/thumbs/), findings.jsonl and summary.json; returns the page."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "findings.jsonl", "".join(line + "\n" for line in json_lines(report)))
    write_text_atomic(out / "summary.json", json.dumps(summary(report), indent=2, ensure_ascii=False) + "\n")
    write_text_atomic(out / "index.html", _html(report, _Thumbnails(out / "thumbs")))
    return out / "index.html"
