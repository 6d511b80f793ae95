"""The README's one-minute tour, run as written: the CLI's `analyze --json`, the Python snippet, the HTTP call (through
a TestClient) and training on a folder of the samples. Each checks the shape the README shows, so an example
that the code no longer gives fails here. The getting-started guide carries the same examples."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import running_service

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
GUIDE = (ROOT / "docs" / "getting-started.md").read_text()

pytestmark = pytest.mark.slow

DOCUMENT_KEYS = {"width", "height", "sha256", "items", "models", "timings_ms"}
ITEM_KEYS = {"label", "score", "box", "source", "polygons", "area", "attributes", "colors", "similar"}


def _block(after: str, language: str, text: str = README) -> str:
    """The first fenced block of `language` after the line containing `after`."""
    tail = text.split(after, 1)[1]
    match = re.search(rf"```{language}\n(.*?)```", tail, flags=re.S)
    assert match, f"no ```{language} block after {after!r}"
    return match.group(1)


@pytest.fixture(scope="module")
def shell_env(tmp_path_factory) -> dict:
    """The README's commands as a user runs them in the active environment: `fashionlens` on PATH, here a script
    that runs this checkout's CLI with this interpreter (an installed entry point may belong to another checkout)."""
    bin_dir = tmp_path_factory.mktemp("bin")
    script = bin_dir / "fashionlens"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m fashionlens.cli "$@"\n')
    script.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(ROOT / "src"),
            "COLUMNS": "200"}


@pytest.fixture(scope="module")
def cli_document(shell_env) -> dict:
    shown = _block("**CLI.**", "text")
    command = re.search(r"^\$ (fashionlens analyze [^#\n]+?)\s*(#.*)?$", shown, flags=re.M).group(1)
    done = subprocess.run(command, shell=True, cwd=ROOT, env=shell_env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1  # one JSON document per photo
    return json.loads(lines[0])


def test_the_readme_analyze_example_gives_what_it_shows(cli_document):
    shown = _block("**CLI.**", "text")
    assert DOCUMENT_KEYS <= cli_document.keys()
    assert f'"width": {cli_document["width"]}, "height": {cli_document["height"]}' in shown
    for item in cli_document["items"]:
        assert ITEM_KEYS <= item.keys(), item.keys()
        assert len(item["box"]) == 4 and 0 <= item["score"] <= 1
        for color in item["colors"]:
            assert {"name", "family", "hex", "fraction"} <= color.keys()
    shown_labels = re.findall(r'\{"label": "(\w+)", (?:"score": [\d.]+, "box"|\.\.\.\})', shown)
    assert shown_labels == [item["label"] for item in cli_document["items"]], "README's garments are stale"
    for stage in re.findall(r'"(\w+)": [\d.]+', shown.split('"timings_ms"', 1)[1]):
        assert stage in cli_document["timings_ms"]


def test_the_readme_python_snippet_runs_and_prints_each_garment(cli_document):
    snippet = _block("**Python.**", "python")
    assert snippet in GUIDE
    out = io.StringIO()
    namespace: dict = {}
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(snippet, "README.md", "exec"), namespace)
    finally:
        os.chdir(cwd)
    printed = out.getvalue().splitlines()
    assert [line.split()[0] for line in printed] == [item["label"] for item in cli_document["items"]]
    document = namespace["document"]
    assert DOCUMENT_KEYS - {"sha256"} <= document.keys()
    assert [item["label"] for item in document["items"]] == [item["label"] for item in cli_document["items"]]


def test_the_readme_http_call_answers_the_same_document(tmp_path, cli_document):
    command = _block("**HTTP.**", "bash")
    assert command.split("#")[0].strip() in GUIDE
    photo = re.search(r"file=@(\S+)", command).group(1)
    route = re.search(r"http://127\.0\.0\.1:8000(/\S+)", command).group(1)
    with running_service(tmp_path) as client:
        with open(ROOT / photo, "rb") as f:
            answer = client.post(route, files={"file": (Path(photo).name, f, "image/jpeg")})
    assert answer.status_code == 201, answer.text
    document = answer.json()
    assert {"id", "width", "height", "items", "models", "timings_ms"} <= document.keys()
    assert [item["label"] for item in document["items"]] == [item["label"] for item in cli_document["items"]]
    for item in document["items"]:
        assert ITEM_KEYS - {"polygons", "area"} <= item.keys()


def test_the_readme_trains_a_model_on_a_folder_and_predicts_with_it(tmp_path, shell_env):
    script = _block("**Train on your own folder.**", "bash")
    assert _commands(script) == _commands(_block("From the samples:", "bash", GUIDE))
    (tmp_path / "samples").symlink_to(ROOT / "samples")
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=shell_env, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    manifest = json.loads((tmp_path / "my-model" / "manifest.json").read_text())
    assert "dress" in json.dumps(manifest)
    assert len(list((tmp_path / "my-photos").iterdir())) == 10  # one folder per class of the samples
    assert "dress_1.jpg" in done.stdout  # predict's table for the photo


def _commands(block: str) -> list[str]:
    """A shell block's commands without their comments."""
    return [line.split("  #", 1)[0].strip() for line in block.splitlines() if line.strip()]
