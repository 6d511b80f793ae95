"""Results files are written by runs: every figure's command is a benchmark that records that file with `--record`
(or a `fashionlens`/`make` command), and a run replaces only the figures it measured."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"


def _record_module():
    spec = importlib.util.spec_from_file_location("benchmarks_record", BENCHMARKS / "record.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


record = _record_module()


def _records(script: str, name: str) -> bool:
    """Whether benchmarks/`script` takes --record (record.add_flag) and names results/`name`.json to record()."""
    path = BENCHMARKS / script
    if not path.is_file():
        return False
    source = path.read_text()
    return ("add_flag(" in source and "record(" in source
            and re.search(rf"[\"']{re.escape(name)}[\"']", source) is not None)


def test_every_results_figure_names_a_command_that_records_it():
    paths = sorted((BENCHMARKS / "results").glob("*.json"))
    assert len(paths) >= 15
    for path in paths:
        saved = json.loads(path.read_text())
        for figure in saved["figures"]:
            command = figure.get("command", saved["command"])
            if re.match(r"(fashionlens|make) ", command):
                continue
            scripts = re.findall(r"python benchmarks/(\w+\.py)", command)
            assert scripts, f"{path.name}: {figure['figure']}: {command!r} names no benchmark"
            assert any(_records(s, path.stem) for s in scripts), \
                f"{path.name}: {figure['figure']}: none of {scripts} writes it with --record"


def test_the_record_check_refuses_a_benchmark_without_the_flag():
    assert _records("classify_inference.py", "classify-inference")
    assert not _records("classify_inference.py", "colors")
    assert not _records("without_torch.py", "classify-inference")


def _run(command: str, date: str, figures: list[dict], data: str = "d") -> dict:
    return {"area": "a", "title": "t", "command": command, "data": data, "part": "test", "date": date, "issue": None,
            "commit": command[-1], "guide": "", "figures": figures}


def test_a_run_replaces_its_figures_and_keeps_the_other_commands_figures():
    before = _run("python benchmarks/x.py --a", "2026-01-01", [
        {"figure": "A", "value": 1, "target": ">= 2", "headline": True},
        {"figure": "B", "value": 5, "command": "python benchmarks/y.py --b", "part": "speed"},
        {"figure": "C", "value": 7}])
    run = _run("python benchmarks/y.py --b", "2026-02-02", [{"figure": "B", "value": 6}, {"figure": "D", "value": 8}],
               data="e")
    merged = record.merge(before, run)
    by_name = {f["figure"]: f for f in merged["figures"]}
    assert [f["figure"] for f in merged["figures"]] == ["A", "B", "C", "D"]
    assert merged["command"] == "python benchmarks/y.py --b" and merged["date"] == "2026-02-02"
    assert by_name["B"] == {"figure": "B", "value": 6}  # measured now: the file's command, date and commit
    assert by_name["D"] == {"figure": "D", "value": 8}
    assert by_name["A"] == {"figure": "A", "value": 1, "target": ">= 2", "headline": True,
                            "command": "python benchmarks/x.py --a", "date": "2026-01-01", "commit": "a", "data": "d"}
    assert by_name["C"]["value"] == 7 and by_name["C"]["command"] == "python benchmarks/x.py --a"


def test_a_replaced_figure_keeps_its_headline_and_target(tmp_path, monkeypatch):
    monkeypatch.setattr(record, "RESULTS", tmp_path)
    monkeypatch.setattr(record, "_commit", lambda: "abc1234")
    monkeypatch.setattr(sys, "argv", ["benchmarks/x.py", "--n", "3", "--record"])
    (tmp_path / "x.json").write_text(json.dumps(_run("python benchmarks/old.py", "2026-01-01", [
        {"figure": "A", "value": 1, "target": ">= 2", "headline": True}, {"figure": "Z", "value": 0}])))
    record.record("x", area="a", title="t", data="d", part="test", issue=None, figures=[{"figure": "A", "value": 3}])
    saved = json.loads((tmp_path / "x.json").read_text())
    assert saved["command"] == "python benchmarks/x.py --n 3" and saved["commit"] == "abc1234"
    assert saved["figures"][0] == {"figure": "A", "value": 3, "headline": True, "target": ">= 2"}
    assert saved["figures"][1]["command"] == "python benchmarks/old.py" and saved["figures"][1]["commit"] == "y"
