"""fashion-products: every label column, held-out test split that keeps duplicate images together.

    .venv/bin/python benchmarks/classify_products.py --resize pad --pool-stages 1 2 3 4 --colour-bins 8 --no-balance

Fine-tuning at the thumbnails' own scale (they are 60x80 px; 240 px input only upscales them):

    .venv/bin/python benchmarks/classify_products.py --mode finetune --image-size 128 --resize pad --no-balance \
        --colour-jitter 0 --tasks articleType gender baseColour --pool-stages 1 2 3 4 --colour-bins 8 \
        --finetune-blocks 3 --lr 1e-4 --epochs 8 --freeze-norm
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _shared import dataset, print_metrics
from record import add_flag, record

COLUMNS = ["articleType", "gender", "baseColour", "masterCategory", "subCategory", "season", "usage"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", default="linear")
    parser.add_argument("--backbone", default="efficientnet_lite1")
    parser.add_argument("--hidden", type=int, default=0)
    parser.add_argument("--standardize", action="store_true", help="heads see standardised features")
    parser.add_argument("--resize", default="crop", choices=["crop", "pad"])
    parser.add_argument("--pool-stages", type=int, nargs="*", default=[])
    parser.add_argument("--colour-bins", type=int, default=0)
    parser.add_argument("--colour-space", default="rgb", choices=["rgb", "hsv"])
    parser.add_argument("--no-balance", action="store_true", help="no class weights: plain accuracy over macro recall")
    parser.add_argument("--dropout", type=float, default=0.5)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--image-size", type=int, default=None, help="square input size (default: the backbone's)")
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--finetune-blocks", type=int, default=2)
    parser.add_argument("--freeze-norm", action="store_true", help="fine-tuning keeps batch-norm statistics")
    parser.add_argument("--colour-jitter", type=float, default=0.2, help="fine-tuning light jitter; 0 keeps colours")
    parser.add_argument("--tta", action="store_true", help="test-time flips (also reports the test split without)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--label-smoothing", type=float, default=0.1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--patience", type=int, default=None)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--tasks", nargs="+", default=COLUMNS)
    parser.add_argument("--out", type=Path, default=None, help="keep the model and report here")
    add_flag(parser)
    args = parser.parse_args()
    from fashionlens.classify import TrainConfig, train
    from fashionlens.data import read_table

    root = dataset("fashion-products")
    data = read_table(root / "styles.csv", image_column="id", images_root=root / "images", tasks=args.tasks)
    config = TrainConfig(mode=args.mode, backbone=args.backbone, hidden=args.hidden, standardize=args.standardize, dropout=args.dropout,
                         resize=args.resize, image_size=args.image_size, pool_stages=tuple(args.pool_stages),
                         colour_bins=args.colour_bins, colour_space=args.colour_space, balance=not args.no_balance, epochs=args.epochs, lr=args.lr,
                         finetune_blocks=args.finetune_blocks, freeze_norm=args.freeze_norm,
                         colour_jitter=args.colour_jitter, batch_size=args.batch_size, patience=args.patience,
                         workers=args.workers, tta=args.tta, seed=args.seed, label_smoothing=args.label_smoothing,
                         validation=0.1, test=0.2, min_class_count=5, progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = train(data, args.out or Path(tmp) / "model", config)
        seconds = time.perf_counter() - start
    print(f"images: {len(data)}; split {result.split.summary()}; {seconds:.0f} s")
    print(f"recipe: {vars(args)}")
    if "test_no_tta" in result.metrics:
        print_metrics("test split, without test-time flips", result.metrics["test_no_tta"])
    test = result.metrics["test"]
    print_metrics(f"test split{', with test-time flips' if args.tta else ''}", test)
    if args.record:
        record("classify-fashion-products", area="Classify", title="fashion-products, frozen features with MLP heads",
               data=f"fashion-products: {len(data):,} thumbnails, 20% held out by whole duplicate groups "
                    f"({next(iter(test.values()))['n']:,} test images)", part="test", issue=None,
               guide="guides/classify.md",
               figures=[{"figure": f"{task} accuracy", "value": round(m["accuracy"], 3)} for task, m in test.items()])


if __name__ == "__main__":
    main()
