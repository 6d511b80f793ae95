"""The documentation site's generated pages: every CLI command and option and every HTTP route is in the
reference, every results file is complete and every figure on the results page comes from one, and the README's
table of headline results matches the files."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _render():
    spec = importlib.util.spec_from_file_location("docs_render", ROOT / "docs" / "gen" / "render.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


render = _render()


def _typer_commands():
    """Every command path of the Typer app, read from the app itself (not from the renderer's walk)."""
    import typer

    from fashionlens.cli import app

    def walk(command, path):
        yield path, command
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            yield from walk(sub, f"{path} {name}")

    return list(walk(typer.main.get_command(app), "fashionlens"))


@pytest.fixture(scope="module")
def cli_page() -> str:
    return render.cli_markdown()


def test_every_cli_command_and_option_is_in_the_reference(cli_page):
    headings = set(re.findall(r"^## `([^`]+)`$", cli_page, flags=re.M))
    commands = _typer_commands()
    assert len(commands) > 20
    for path, command in commands:
        assert path in headings, f"{path} is missing from the CLI reference"
        section = cli_page.split(f"## `{path}`\n", 1)[1].split("\n## ", 1)[0]
        for param in command.params:
            if param.param_type_name == "option" and not param.hidden:
                assert param.opts[0] in section, f"{path} {param.opts[0]} is missing from the CLI reference"


def test_the_cli_reference_says_what_each_option_does(cli_page):
    section = cli_page.split("## `fashionlens catalog search`\n", 1)[1].split("\n## ", 1)[0]
    assert "Usage: fashionlens catalog search" in section
    assert re.search(r"`--where[^`]*`: Only items with KEY=VALUE", section)
    assert "default: 10" in section  # --top-k's default, as --help prints it


@pytest.fixture(scope="module")
def service_app():  # importing the service's stack takes seconds
    return render.service_app()


@pytest.mark.slow
def test_every_http_route_is_in_the_reference(service_app):
    page = render.http_markdown(service_app)
    spec = service_app.openapi()
    documented = [(m.upper(), p) for p, ops in spec["paths"].items() for m in ops]
    assert ("POST", "/v1/analyze") in documented and ("GET", "/v1/items/{item_id}") in documented
    for method, path in documented:
        assert f"## `{method} {path}`" in page, f"{method} {path} is missing from the HTTP reference"
    routes = render.http_routes(service_app)
    assert ("GET", "/metrics") in routes and ("GET", "/") in routes  # outside the OpenAPI, still listed
    for method, path in routes:
        assert f"`{method} {path}`" in page, f"{method} {path} is missing from the HTTP reference"
    for name in spec["components"]["schemas"]:
        assert f"### {name}\n" in page


def test_results_files_name_command_data_part_date_and_issue():
    paths = sorted(render.RESULTS.glob("*.json"))
    assert len(paths) >= 15
    for path in paths:
        record = json.loads(path.read_text())
        for field in render.REQUIRED:
            assert field in record, f"{path.name}: no {field}"
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", record["date"]), path.name
        assert record["figures"], path.name
        for figure in record["figures"]:
            command = figure.get("command", record["command"])
            assert re.match(r"(fashionlens|python benchmarks/|make )", command), f"{path.name}: {command}"


def test_a_results_file_missing_a_field_is_refused(tmp_path):
    (tmp_path / "bad.json").write_text(json.dumps({"area": "x", "title": "t", "figures": [{"figure": "f"}]}))
    with pytest.raises(ValueError, match=r"bad.json: missing command, data, part, date, issue, figures\[0\].value"):
        render.read_results(tmp_path)


def test_every_figure_on_the_results_page_comes_from_a_results_file():
    page = render.results_markdown()
    figures = render.read_results()
    for figure in figures:
        assert f"**{render._escape(render.format_value(figure))}**" in page, figure
        assert figure.command in page
    shown = re.findall(r"\| \*\*([^*]+)\*\* \|", page)
    assert len(shown) == len(figures)  # nothing on the page that no file holds


def test_the_readme_table_of_results_matches_the_files():
    readme = (ROOT / "README.md").read_text()
    assert render.readme_with_results(readme) == readme, "run: python docs/gen/render.py --readme"
    assert readme.count("benchmarks/results/") >= sum(f.headline for f in render.read_results())


def test_the_readme_stays_short_and_says_to_activate():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    assert "source .venv/bin/activate" in readme
    assert ".venv/bin/fashionlens" not in readme  # one way to run it: `fashionlens` in the active environment


def test_every_guide_and_page_is_in_the_site_nav():
    import yaml

    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())

    def pages(nav):
        for entry in nav:
            for value in entry.values():
                yield from pages(value) if isinstance(value, list) else [value]

    listed = set(pages(config["nav"]))
    written = {str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md")}
    generated = {"reference/cli.md", "reference/http.md", "results.md"}
    assert written | generated == listed


def _documented_command_lines() -> list[tuple[str, str]]:
    """(file, command line) of every `fashionlens ...` the README and the written pages show, in code blocks and
    inline code; the results history (commands as they were run then) is left out."""
    pages = [ROOT / "README.md", *(p for p in (ROOT / "docs").rglob("*.md") if p.name != "results-history.md")]
    found = []
    for page in pages:
        text = page.read_text()
        blocks = re.findall(r"```(?:bash|text)\n(.*?)```", text, flags=re.S)
        lines = [line.removeprefix("$ ") for block in blocks for line in block.splitlines()]
        lines += re.findall(r"`(fashionlens [^`]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
        for line in lines:
            line = line.split("  #", 1)[0].split(";", 1)[-1].strip()
            if line.startswith("fashionlens ") or line == "fashionlens":
                found.append((page.name, line))
    return found


def test_every_documented_command_line_names_real_commands_and_options():
    import shlex

    commands = dict(_typer_commands())
    lines = _documented_command_lines()
    assert len(lines) > 40
    for page, line in lines:
        words = shlex.split(line.replace("|", " "))
        if len(words) > 1 and words[1].isupper():  # a placeholder: `fashionlens COMMAND --help`
            continue
        path = "fashionlens"
        while len(words) > 1 and f"{path} {words[1]}" in commands:
            path = f"{path} {words.pop(1)}"
        command = commands[path]
        flags = {flag for p in command.params for flag in (*p.opts, *p.secondary_opts)} | {"--help"}
        for word in words[1:]:
            if word.startswith("--"):
                assert word.split("=", 1)[0] in flags, f"{page}: `{line}`: {path} has no {word}"
        if len(words) > 1 and path == "fashionlens" and not words[1].startswith("-"):
            raise AssertionError(f"{page}: `{line}`: no command {words[1]!r}")
