"""Per-epoch metrics, written as CSV and as TensorBoard event files in one place."""

from __future__ import annotations

import csv
from pathlib import Path


class EpochLog:
    """`<stage>.csv` (one per stage: heads, finetune) and TensorBoard scalars under `<stage>/<metric>`."""

    def __init__(self, folder: Path):
        from torch.utils.tensorboard import SummaryWriter  # slow import: only when training

        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.writer = SummaryWriter(str(folder))

    def log(self, stage: str, epoch: int, values: dict[str, float]) -> None:
        row = {"epoch": epoch, **{k: round(float(v), 6) for k, v in values.items()}}
        path = self.folder / f"{stage}.csv"
        new = not path.exists()
        with open(path, "a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)
        for key, value in values.items():
            self.writer.add_scalar(f"{stage}/{key}", float(value), epoch)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
