"""Where the shared data is, and a timer; nothing else is shared between benchmarks."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from pathlib import Path

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def dataset(name: str) -> Path:
    path = DATASETS / name
    if not path.is_dir():
        sys.exit(f"{path} not found: the benchmarks need ../shared/datasets beside the repository")
    return path


@contextmanager
def timed(result: dict, key: str):
    start = time.perf_counter()
    yield
    result[key] = time.perf_counter() - start


def print_metrics(title: str, metrics: dict) -> None:
    print(f"\n{title}")
    print(f"{'task':<16}{'accuracy':>10}{'top-3':>9}{'macro-F1':>10}{'n':>7}")
    for task, m in metrics.items():
        print(f"{task:<16}{m['accuracy']:>10.4f}{m['top3']:>9.4f}{m['macro_f1']:>10.4f}{m['n']:>7}")
