"""Markdown for the generated pages of the documentation site: the CLI reference from the Typer app, the HTTP
reference from the service's OpenAPI, and the results page from `benchmarks/results/*.json`.

Plain functions, so the site build (`pages.py`, run by mkdocs-gen-files) and the tests (which check that every
command and route is in the reference) render the same text. Nothing here is typed by hand: a new command, route
or results file shows up on the next build.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"


def _escape(text: str) -> str:
    """Help strings as Markdown text: no stray emphasis, HTML tags or table breaks."""
    text = re.sub(r"([\\*_\[\]|<>])", r"\\\1", text)
    return " ".join(text.split())


# --- CLI ---------------------------------------------------------------------------------------------------------


def _is_group(command) -> bool:
    return hasattr(command, "list_commands")


def _context(command, name: str):
    """A context for `command` from its own Click (Typer ships its own copy of Click)."""
    return command.context_class(command, info_name=name)


def cli_commands():
    """(path, command) for every command of `fashionlens`, groups included, in the order `--help` lists them."""
    import typer

    from fashionlens.cli import app

    def walk(command, path: tuple[str, ...]):
        yield path, command
        if _is_group(command):
            ctx = _context(command, " ".join(path))
            for name in command.list_commands(ctx):
                yield from walk(command.get_command(ctx, name), (*path, name))

    yield from walk(typer.main.get_command(app), ("fashionlens",))


def _param_line(param, ctx) -> str:
    """One option or argument as `--help` describes it (Typer's own help record: flags, metavar, default)."""
    record = param.get_help_record(ctx)
    if record is None:  # an argument without help text
        many = " ..." if param.nargs == -1 else ""
        return f"- `{(param.metavar or param.name).upper()}{many}` ({'required' if param.required else 'optional'})"
    flags, text = record
    return f"- `{flags}`{': ' + _escape(text) if text else ''}"


def cli_markdown() -> str:
    lines = ["# CLI reference", "",
             "Generated from the Typer app (`fashionlens.cli:app`) when the site is built; "
             "`fashionlens COMMAND --help` prints the same. Run it after `source .venv/bin/activate`.", ""]
    for path, command in cli_commands():
        name = " ".join(path)
        lines += [f"## `{name}`", ""]
        if command.help:
            lines += [_escape(command.help), ""]
        ctx = _context(command, name)
        lines += ["```text", command.get_usage(ctx), "```", ""]
        if _is_group(command):
            subs = command.list_commands(ctx)
            lines += ["Commands: " + ", ".join(f"[`{s}`](#{_anchor(f'{name} {s}')})" for s in subs), ""]
        params = [p for p in command.params if p.name != "help" and not getattr(p, "hidden", False)]
        if params:
            lines += [_param_line(p, ctx) for p in params] + [""]
    return "\n".join(lines)


def _anchor(title: str) -> str:
    """The id Python-Markdown's toc gives a heading `` `title` ``."""
    return re.sub(r"[-\s]+", "-", re.sub(r"[^\w\s-]", "", title).strip().lower())


# --- HTTP --------------------------------------------------------------------------------------------------------


def service_app():
    """The service's FastAPI app as `fashionlens serve` builds it; no model loads until its lifespan starts."""
    from fashionlens.service.app import create_app
    from fashionlens.service.settings import ServiceSettings

    return create_app(ServiceSettings(db="sqlite:///:memory:"))


def http_routes(app) -> list[tuple[str, str]]:
    """(method, path) of every route the app answers, documented in the OpenAPI or not; mounts as ("GET", path)."""
    from starlette.routing import Mount

    def walk(routes, prefix: str):
        for route in routes:
            if hasattr(route, "original_router"):  # a router included with include_router
                yield from walk(route.original_router.routes, prefix + route.include_context.prefix)
            elif isinstance(route, Mount):
                yield "GET", prefix + route.path + "/{path}"
            else:
                for method in sorted(getattr(route, "methods", None) or ()):
                    if method != "HEAD":
                        yield method, prefix + route.path

    return list(walk(app.routes, ""))


def _schema_name(schema: dict) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[`{name}`](#{_anchor(name)})"
    if schema.get("type") == "array":
        return f"array of {_schema_name(schema.get('items', {}))}"
    if "anyOf" in schema:
        return " or ".join(_schema_name(s) for s in schema["anyOf"])
    if schema.get("properties"):  # an inline object: its fields
        return "`object` with " + ", ".join(f"`{name}`" for name in schema["properties"])
    return f"`{schema.get('type', 'object')}`"


def http_markdown(app) -> str:
    spec = app.openapi()
    lines = ["# HTTP API reference", "",
             f"Generated from the service's OpenAPI ({spec['info']['title']} {spec['info']['version']}) when the site "
             "is built. A running service serves the same at `/docs` (Swagger UI), `/redoc` and `/openapi.json`; "
             "the file itself is [openapi.json](openapi.json). The [service guide](../guides/service.md) says which "
             "token each route needs.", ""]
    documented = set()
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            documented.add((method.upper(), path))
            lines += [f"## `{method.upper()} {path}`", ""]
            text = op.get("description") or op.get("summary") or ""
            if text:
                lines += [_escape(text), ""]
            params = op.get("parameters", [])
            if params:
                lines += ["| parameter | in | required | type | what |", "|---|---|---|---|---|"]
                for p in params:
                    lines.append(f"| `{p['name']}` | {p['in']} | {'yes' if p.get('required') else 'no'} | "
                                 f"{_schema_name(p.get('schema', {}))} | {_escape(p.get('description', ''))} |")
                lines.append("")
            body = op.get("requestBody", {}).get("content", {})
            if body:
                lines += ["Body: " + "; ".join(f"`{kind}` {_schema_name(c.get('schema', {}))}"
                                               for kind, c in body.items()), ""]
            lines += ["| status | what | body |", "|---|---|---|"]
            errors: dict[str, list[str]] = {}
            for status, answer in op.get("responses", {}).items():
                schemas = ", ".join(_schema_name(c["schema"]) for c in answer.get("content", {}).values()
                                    if "schema" in c)
                if status.startswith(("4", "5")):  # every error has one body: listed together
                    errors.setdefault(schemas, []).append(status)
                else:
                    lines.append(f"| {status} | {_escape(answer.get('description', ''))} | {schemas} |")
            lines += [f"| {', '.join(codes)} | errors, with a stable `code` | {schemas} |" for schemas, codes in errors.items()]
            lines.append("")
    others = [(m, p) for m, p in http_routes(app) if (m, p) not in documented]
    if others:
        lines += ["## Routes outside the OpenAPI", "",
                  "The metrics, the API documentation itself and the web page's files:", ""]
        lines += [f"- `{m} {p}`" for m, p in others] + [""]
    schemas = spec.get("components", {}).get("schemas", {})
    if schemas:
        lines += ["## Schemas", ""]
        for name, schema in schemas.items():
            lines += [f"### {name}", ""]
            if schema.get("description"):
                lines += [_escape(schema["description"]), ""]
            props = schema.get("properties", {})
            if props:
                required = set(schema.get("required", []))
                lines += ["| field | type | required |", "|---|---|---|"]
                lines += [f"| `{field}` | {_schema_name(s)} | {'yes' if field in required else 'no'} |"
                          for field, s in props.items()]
                lines.append("")
    return "\n".join(lines)


# --- Results -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """One measured figure of a results file, with where it came from."""

    area: str
    title: str
    name: str
    value: float | int | str
    unit: str
    target: str
    part: str
    command: str
    data: str
    date: str
    issue: int | None
    commit: str
    guide: str
    headline: bool
    source: str


REQUIRED = ("area", "title", "command", "data", "part", "date", "issue", "figures")


def read_results(folder: Path = RESULTS) -> list[Figure]:
    """Every figure of every `*.json` under `folder`; a figure may override its file's command, part, date, data and
    commit (one measured by another command than the file's last run: `benchmarks/record.py`).
    A file missing a field is an error naming the file and the field."""
    figures = []
    for path in sorted(folder.glob("*.json")):
        record = json.loads(path.read_text())
        missing = [k for k in REQUIRED if k not in record] + [
            f"figures[{i}].{k}" for i, f in enumerate(record.get("figures", [])) for k in ("figure", "value") if k not in f]
        if missing:
            raise ValueError(f"{path}: missing {', '.join(missing)}")
        for f in record["figures"]:
            figures.append(Figure(record["area"], record["title"], f["figure"], f["value"], f.get("unit", ""),
                                  f.get("target", ""), f.get("part", record["part"]), f.get("command", record["command"]),
                                  f.get("data", record["data"]), f.get("date", record["date"]), record["issue"],
                                  f.get("commit", record.get("commit", "")), record.get("guide", ""),
                                  bool(f.get("headline")), path.name))
    return figures


def format_value(figure: Figure) -> str:
    value = figure.value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        text = str(value)
    elif isinstance(value, int):
        text = f"{value:,}"
    elif abs(value) < 1:
        text = f"{value:.3f}"  # scores keep their three decimals: 0.900, not 0.9
    else:
        text = f"{value:,.3f}".rstrip("0").rstrip(".")
    return f"{text} {figure.unit}".strip()


def _issue(figure: Figure) -> str:
    return f"issue {figure.issue}" if figure.issue else "no issue recorded"


def results_markdown(folder: Path = RESULTS) -> str:
    figures = read_results(folder)
    lines = ["# Results", "",
             "Every figure on this page is read from a JSON file under `benchmarks/results/` when the site is built; "
             "none is typed here. Each names the command that measured it, the data, the part scored (a test part "
             "is scored once per kept change; validation, tuning and planted-error figures say so), the date, the "
             "issue and the commit that recorded it. All were measured on the project's 2-core machine without a "
             "GPU; speeds vary with the machine's load by more than 10%. How the figures moved over time: "
             "[results history](results-history.md).", ""]
    for area in _areas(figures):
        lines += [f"## {area}", ""]
        in_area = [f for f in figures if f.area == area]
        for source in dict.fromkeys(f.source for f in in_area):
            rows = [f for f in in_area if f.source == source]
            first = rows[0]
            guide = f" Guide: [{first.guide.split('/')[-1].removesuffix('.md')}]({first.guide})." if first.guide else ""
            lines += [f"### {first.title}", "",
                      f"Data: {_escape(first.data)}. Recorded {first.date}, {_issue(first)}"
                      f"{', commit ' + first.commit if first.commit else ''}; file `benchmarks/results/{source}`.{guide}",
                      "", "| figure | value | target | part | date |", "|---|---|---|---|---|"]
            lines += [f"| {_escape(f.name)} | **{_escape(format_value(f))}** | {_escape(f.target) or '-'} | {f.part} | "
                      f"{f.date} |" for f in rows]
            lines += [""]
            main = max(dict.fromkeys(f.command for f in rows), key=[f.command for f in rows].count)
            lines += ["Command:", "", "```bash", main, "```", ""]
            for f in rows:
                if f.command != main:
                    lines += [f"Command for *{_escape(f.name)}*:", "", "```bash", f.command, "```", ""]
                    if (f.data, f.commit) != (first.data, first.commit):
                        lines += [f"Data: {_escape(f.data)}{', commit ' + f.commit if f.commit else ''}.", ""]
    return "\n".join(lines)


AREAS = ("Classify", "Detect", "Parse", "Analyse (the whole pipeline)", "Colours", "Catalogue", "Duplicates and audit",
         "Service", "Scale-out")


def _areas(figures: list[Figure]) -> list[str]:
    """Areas in the order of the guides; one not listed in AREAS comes last."""
    seen = list(dict.fromkeys(f.area for f in figures))
    return sorted(seen, key=lambda a: AREAS.index(a) if a in AREAS else len(AREAS))


def readme_results_table(folder: Path = RESULTS) -> str:
    """The README's table of headline results: the figures marked `headline`, each linking to its results file
    (which holds the command, the data and the date; the site's results page renders the same files)."""
    figures = read_results(folder)
    lines = ["| area | result (links to its command and data) | value | target | part |", "|---|---|---|---|---|"]
    for area in _areas(figures):
        for f in figures:
            if f.area == area and f.headline:
                lines.append(f"| {area} | [{f.name}](benchmarks/results/{f.source}) | **{format_value(f)}** | "
                             f"{f.target or '-'} | {f.part} |")
    return "\n".join(lines)


README = ROOT / "README.md"
README_MARKERS = ("<!-- results:start -->", "<!-- results:end -->")


def readme_with_results(text: str, folder: Path = RESULTS) -> str:
    """The README's text with the block between its results markers replaced by the generated table."""
    start, end = README_MARKERS
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    if not rest or end not in rest:
        raise ValueError(f"README.md: the markers {start} and {end} are missing")
    return f"{head}{start}\n{readme_results_table(folder)}\n{end}{tail}"


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["--readme"]:
        raise SystemExit("usage: python docs/gen/render.py --readme   (rewrites README.md's table of headline results)")
    README.write_text(readme_with_results(README.read_text()))
