"""Fine-tuning the last blocks of the backbone with augmentation; checkpointed every epoch, resumable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from fashionlens.checkpoints import TrainingState, end_epoch, load_checkpoint
from fashionlens.classify.model import Classifier, flip_average, mirrored
from fashionlens.images import load_image
from fashionlens.progress import progress_bar
from fashionlens.classify.heads import LABEL_SMOOTHING, accuracies, class_weights, multitask_loss
from fashionlens.epoch_log import EpochLog


class LabeledImageDataset(Dataset):
    def __init__(self, paths: list[Path], labels: np.ndarray, transform, min_size: int):
        self.paths, self.labels, self.transform, self.min_size = paths, labels, transform, min_size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        image = load_image(self.paths[i], min_size=self.min_size)
        return self.transform(image), torch.from_numpy(self.labels[i]).long()


def unfreeze_last_blocks(classifier: Classifier, blocks: int) -> list[torch.nn.Parameter]:
    """Train the last `blocks` stages and everything after them; earlier layers stay frozen, BN included."""
    model = classifier.backbone.net
    for p in model.parameters():
        p.requires_grad = False
    stages = list(model.blocks) if hasattr(model, "blocks") else []
    trainable: list[torch.nn.Module] = stages[len(stages) - blocks :] if stages and blocks > 0 else [model]
    for name in ("conv_head", "bn2", "head", "norm", "fc_norm"):
        if stages and blocks > 0 and isinstance(getattr(model, name, None), torch.nn.Module):
            trainable.append(getattr(model, name))
    for module in trainable:
        for p in module.parameters():
            p.requires_grad = True
    classifier._trainable_modules = trainable  # train() mode only for these
    return [p for p in model.parameters() if p.requires_grad]


def _set_train_mode(classifier: Classifier, freeze_norm: bool = False) -> None:
    """Trainable modules in train mode; with `freeze_norm`, batch norm keeps its ImageNet statistics (its scale
    and shift still train), so the features the warm-started heads were fitted on do not shift under them."""
    classifier.eval()
    classifier.heads.train()
    for module in getattr(classifier, "_trainable_modules", [classifier.backbone]):
        module.train()
        if freeze_norm:
            for layer in module.modules():
                if isinstance(layer, torch.nn.modules.batchnorm._BatchNorm):
                    layer.eval()


def finetune(
    classifier: Classifier,
    train_paths: list[Path],
    y_train: np.ndarray,
    val_paths: list[Path],
    y_val: np.ndarray,
    *,
    checkpoint_dir: Path,
    config_key: str,
    epochs: int = 6,
    blocks: int = 2,
    lr: float = 3e-4,
    weight_decay: float = 1e-4,
    batch_size: int = 32,
    patience: int = 3,
    balance: bool = True,
    colour_jitter: float = 0.2,
    freeze_norm: bool = False,
    tta: bool = False,
    label_smoothing: float = LABEL_SMOOTHING,
    workers: int = 1,
    seed: int = 0,
    progress: bool = True,
    log: EpochLog | None = None,
) -> dict:
    """Train in place; `classifier` ends with the weights of its best validation epoch."""
    torch.manual_seed(seed)
    tasks = classifier.tasks
    pre = classifier.backbone_info.preprocess
    backbone_params = unfreeze_last_blocks(classifier, blocks)
    classifier.to(memory_format=torch.channels_last)  # depthwise convolutions run ~10x faster on CPU this way
    optimizer = torch.optim.AdamW(
        [{"params": backbone_params, "lr": lr}, {"params": classifier.heads.parameters(), "lr": lr * 3}],
        weight_decay=weight_decay,
    )
    steps = epochs * max(1, -(-len(train_paths) // batch_size))
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[lr, lr * 3], total_steps=steps, pct_start=0.1)
    weights = {t.name: class_weights(y_train[:, i], len(t.classes)) for i, t in enumerate(tasks)} if balance else None
    train_loader = DataLoader(
        LabeledImageDataset(train_paths, y_train, pre.train_transform(colour_jitter), pre.short_side),
        batch_size=batch_size, shuffle=True, num_workers=workers, drop_last=len(train_paths) > batch_size,
        generator=torch.Generator().manual_seed(seed), persistent_workers=workers > 0,
    )
    val_loader = DataLoader(
        LabeledImageDataset(val_paths, y_val, pre.eval_transform(), pre.short_side),
        batch_size=batch_size * 2, num_workers=workers,
    )
    resumed = load_checkpoint(checkpoint_dir, classifier, optimizer, scheduler, config_key)
    state = TrainingState(config_key)
    best = {k: v.clone() for k, v in classifier.state_dict().items()}
    if resumed:
        state, best = resumed
        if scheduler.total_steps != steps and state.epoch < epochs:
            # resumed with more epochs than the checkpoint was made for: the same one cycle, stretched to the
            # new length from the step reached (the restored schedule would run out of steps)
            scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[lr, lr * 3], total_steps=steps,
                                                            pct_start=0.1, last_epoch=scheduler.last_epoch - 1)
    for epoch in range(state.epoch + 1, epochs + 1):
        if state.since_best >= patience:
            break
        _set_train_mode(classifier, freeze_norm)
        total = 0.0
        with progress_bar(f"fine-tune epoch {epoch}/{epochs}", len(train_loader.dataset), progress) as advance:
            for images, targets in train_loader:
                images = images.contiguous(memory_format=torch.channels_last)
                loss = multitask_loss(classifier(images), targets, tasks, weights, label_smoothing)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                if scheduler.last_epoch + 1 < steps:
                    scheduler.step()
                total += loss.item() * len(images)
                advance(len(images))
        classifier.eval()
        logits: dict[str, list[torch.Tensor]] = {t.name: [] for t in tasks}
        with torch.inference_mode():
            for images, _ in val_loader:
                if tta:  # scored as it will predict: the mean probability of each image and its mirror
                    both = torch.cat([images, mirrored(images)]).contiguous(memory_format=torch.channels_last)
                    out = flip_average({k: torch.softmax(v, -1) for k, v in classifier(both).items()}, len(images))
                else:
                    out = classifier(images.contiguous(memory_format=torch.channels_last))
                for name, value in out.items():
                    logits[name].append(value)
        joined = {k: torch.cat(v) for k, v in logits.items()}
        acc = accuracies(joined, torch.from_numpy(y_val).long(), tasks)
        score = float(np.mean(list(acc.values()))) if acc else 0.0
        if log:
            log.log("finetune", epoch, {"train_loss": total / len(train_loader.dataset),
                                        **{f"val_acc_{k}": v for k, v in acc.items()}})
        best = end_epoch(checkpoint_dir, classifier, optimizer, scheduler, state, best, epoch, score)
    classifier.load_state_dict(best)
    classifier.to(memory_format=torch.contiguous_format)
    classifier.eval()
    for p in classifier.parameters():
        p.requires_grad = True
    return {"best_epoch": state.best_epoch, "epochs_run": state.epoch, "val_accuracy": state.best_score}
