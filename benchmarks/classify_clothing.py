"""clothing-small: train on train/ (15% of it held out for early stopping), score on validation/.

Times `train` end to end with a cold and a warm feature cache, for each mode asked; every model is scored on
validation/ both with and without test-time flips (`--tta` also trains with them: the saved model predicts
with them by default, and fine-tuning picks its best epoch by them).

    .venv/bin/python benchmarks/classify_clothing.py [--backbone efficientnet_lite1] [--finetune [--record]]

--record writes the fine-tuned model's accuracy (with test-time flips if --tta, as the model predicts) to
benchmarks/results/classify-clothing-small.json.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from _shared import dataset, print_metrics, timed
from record import add_flag, record


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backbone", default="efficientnet_lite1")
    parser.add_argument("--hidden", type=int, default=0)
    parser.add_argument("--standardize", action="store_true", help="heads see standardised features")
    parser.add_argument("--finetune", action="store_true", help="also run --mode finetune (tens of minutes)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None, help="fine-tuning learning rate (default 3e-4)")
    parser.add_argument("--image-size", type=int, default=None, help="square input size (default: the backbone's)")
    parser.add_argument("--resize", default="crop", choices=["crop", "pad"])
    parser.add_argument("--finetune-blocks", type=int, default=2)
    parser.add_argument("--patience", type=int, default=None, help="fine-tuning epochs without a better score (3)")
    parser.add_argument("--freeze-norm", action="store_true", help="fine-tuning keeps batch-norm statistics")
    parser.add_argument("--tta", action="store_true", help="train with test-time flips (the models' default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="keep the fine-tuned model here")
    add_flag(parser)
    args = parser.parse_args()
    if args.record and not args.finetune:
        parser.error("--record writes the fine-tuned model's figure: add --finetune")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["FASHIONLENS_CACHE"] = str(Path(tmp) / "cache")  # before fashionlens reads it
        from fashionlens.classify import TrainConfig, train
        from fashionlens.data import read_folder

        data = read_folder(dataset("clothing-small") / "train")
        unseen = read_folder(dataset("clothing-small") / "validation")
        times: dict[str, float] = {}
        shape = {"image_size": args.image_size, "resize": args.resize, "tta": args.tta, "seed": args.seed,
                 "standardize": args.standardize}
        config = TrainConfig(backbone=args.backbone, hidden=args.hidden, progress=False, **shape)
        with timed(times, "cold"):
            cold = train(data, Path(tmp) / "linear-cold", config)
        with timed(times, "warm"):
            warm = train(data, Path(tmp) / "linear-warm", config)
        print(f"images: {len(data)} ({cold.split.summary()})")
        print(f"linear, cold cache: {times['cold']:.1f} s; warm cache: {times['warm']:.1f} s; ratio {times['cold'] / times['warm']:.1f}x")
        score_both(warm.model_dir, unseen, Path(tmp) / "report-linear", f"linear ({args.backbone})")
        if args.finetune:
            ft_config = TrainConfig(mode="finetune", backbone=args.backbone, hidden=args.hidden, epochs=args.epochs,
                                    lr=args.lr, finetune_blocks=args.finetune_blocks, freeze_norm=args.freeze_norm,
                                    patience=args.patience,
                                    progress=False, **shape)
            with timed(times, "finetune"):
                tuned = train(data, args.out or Path(tmp) / "finetune", ft_config)
            print(f"\nfinetune: {times['finetune']:.0f} s; {tuned.metrics.get('validation', {})}")
            scores = score_both(tuned.model_dir, unseen, Path(tmp) / "report-finetune", f"finetune ({args.backbone})")
            if args.record:
                size = f" at {args.image_size} px" if args.image_size else ""
                norm = ", batch-norm frozen" if args.freeze_norm else ""
                record("classify-clothing-small", area="Classify", title="Garment classifier on clothing-small",
                       data=f"clothing-small: trained on train/ ({len(data):,} photos), scored on validation/ "
                            f"({len(unseen)} photos)", part="validation", issue=None, guide="guides/classify.md",
                       figures=[{"figure": f"Fine-tuned last {args.finetune_blocks} stages{size}{norm}: accuracy",
                                 "value": round(next(iter(scores[args.tta].values()))["accuracy"], 3)}])


def score_both(model_dir: Path, unseen, out: Path, title: str) -> dict[bool, dict]:
    """The same model on validation/ without and with test-time flips: {tta: metrics per task}."""
    from fashionlens.classify import evaluate

    both = {}
    for tta in (False, True):
        both[tta] = evaluate(model_dir, unseen, out.with_name(f"{out.name}-tta{int(tta)}"), tta=tta, progress=False)
        print_metrics(f"{title} on validation/, {'with' if tta else 'without'} test-time flips", both[tta])
    return both


if __name__ == "__main__":
    main()
