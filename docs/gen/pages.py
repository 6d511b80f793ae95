"""Run by mkdocs-gen-files at every build: writes the CLI and HTTP references and the results page."""

import json
import sys
from pathlib import Path

import mkdocs_gen_files

sys.path.insert(0, str(Path(__file__).resolve().parent))
import render  # noqa: E402

app = render.service_app()
with mkdocs_gen_files.open("reference/cli.md", "w") as page:
    page.write(render.cli_markdown())
with mkdocs_gen_files.open("reference/http.md", "w") as page:
    page.write(render.http_markdown(app))
with mkdocs_gen_files.open("reference/openapi.json", "w") as page:
    page.write(json.dumps(app.openapi(), indent=1))
with mkdocs_gen_files.open("results.md", "w") as page:
    page.write(render.results_markdown())
