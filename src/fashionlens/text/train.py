"""`train-text`: learn the text encoder and the image projection from image-title pairs, contrastively.

Images are embedded exactly as the catalogue stores them (the same embedder, features cached by content), so the
model reads any catalogue built with that embedder. Parts are chosen by a hash of each image's bytes: copies of
one image stay in one part, and a `test` fraction is never seen here (the benchmark scores it). PyTorch is used
for training only; the saved model runs on NumPy.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from pathlib import Path

import numpy as np

from fashionlens.data.samples import SkippedInput
from fashionlens.text.evaluate import attribute_precision, recall_at_k
from fashionlens.text.model import TextModel
from fashionlens.text.words import HashingConfig, words_of

DEFAULT_ATTRIBUTES = ("gender", "baseColour", "articleType")


@dataclass(frozen=True)
class TextTrainConfig:
    dim: int = 256
    epochs: int = 40
    batch_size: int = 512
    lr: float = 3e-3
    weight_decay: float = 1e-4
    temperature: float = 0.05  # of the text side's unit vectors; the image side's length is learned
    attribute_phrases: bool = True  # also pair each training image with its attribute values joined
    validation: float = 0.15  # parts by a hash of the image bytes
    test: float = 0.0  # held out from training and validation alike
    seed: int = 0
    hashing: HashingConfig = field(default_factory=HashingConfig)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TitledImages:
    paths: list[Path]
    titles: list[str]
    attributes: list[dict[str, str | None]]  # the table's other columns asked for, for attribute precision
    skipped: list[SkippedInput]  # rows not used, with why (empty title, missing image)


@dataclass
class TextTrainResult:
    model: TextModel
    folder: Path
    metrics: dict  # validation figures
    counts: dict[str, int]  # images per part
    skipped: list[SkippedInput]  # rows and images not used, with why
    seconds: dict[str, float]


def read_titles(table: str | Path, images_root: str | Path | None, image_column: str, text_column: str,
                attributes: list[str] = ()) -> TitledImages:
    """Image paths and titles from a table; a table without the text column is a ValueError naming its columns,
    a row with an empty title is skipped and reported by its line."""
    from fashionlens.data import read_table
    from fashionlens.data.tables import read_rows

    columns = read_rows(table, required=[image_column, text_column]).columns  # the clear error comes first
    attributes = [a for a in attributes if a in columns and a != text_column]
    data = read_table(table, image_column=image_column, tasks=[text_column, *attributes], images_root=images_root)
    paths, titles, attrs = [], [], []
    skipped = list(data.skipped)
    for sample in data.samples:
        title = sample.labels.get(text_column)
        if not title or not words_of(title):
            skipped.append(SkippedInput(f"{data.source}:{sample.row}",
                                        f"{'no word in' if title else 'empty'} {text_column!r}"))
            continue
        paths.append(sample.path)
        titles.append(title)
        attrs.append({a: sample.labels.get(a) for a in attributes})
    if not paths:
        raise ValueError(f"{table}: no row has both an image and a {text_column!r}")
    return TitledImages(paths, titles, attrs, skipped)


def part_of(sha256: str, validation: float, test: float) -> str:
    u = int(sha256[:8], 16) / 0xFFFFFFFF
    return "test" if u < test else "validation" if u < test + validation else "train"


def train_text(data: TitledImages, out: str | Path, embedder, config: TextTrainConfig = TextTrainConfig(), *,
               embedder_name: str = "default", progress: bool = False) -> TextTrainResult:
    """Embed the images (cached), train on the train part, score the validation part, save the model folder."""
    from fashionlens.embeddings import embed_paths

    start = time.perf_counter()
    embedded = embed_paths(data.paths, embedder, progress=progress)
    embed_seconds = time.perf_counter() - start
    titles = [data.titles[i] for i in embedded.indices]
    attrs = [data.attributes[i] for i in embedded.indices]
    parts = np.array([part_of(s, config.validation, config.test) for s in embedded.sha256])
    train = np.flatnonzero(parts == "train")
    if len(train) < 2:
        raise ValueError(f"{len(train)} training images: too few to learn from")
    texts, rows = [titles[i] for i in train], list(train)
    if config.attribute_phrases:  # "men navy blue shirts": the category names a shopper types
        phrases = [(i, " ".join(v for v in attrs[i].values() if v)) for i in train]
        texts += [p for _, p in phrases if words_of(p)]
        rows += [i for i, p in phrases if words_of(p)]
    vocabulary = Counter(w for t in texts for w in dict.fromkeys(words_of(t)))
    model = _fit(embedded.vectors[rows], texts, dict(vocabulary), config,
                 {"key": embedder.key, "dim": int(embedded.vectors.shape[1]), "model": embedder_name},
                 np.array(rows))
    val = np.flatnonzero(parts == "validation")
    metrics = {}
    if len(val):
        vectors = embedded.vectors[val]
        metrics = recall_at_k(model, vectors, [titles[i] for i in val], [embedded.sha256[i] for i in val])
        columns = list(attrs[0]) if attrs else []
        if columns:
            metrics["attribute_precision@10"] = attribute_precision(model, vectors, [attrs[i] for i in val], columns)
    counts = {p: int((parts == p).sum()) for p in ("train", "validation", "test")}
    seconds = {"embedding": round(embed_seconds, 1), "total": round(time.perf_counter() - start, 1)}
    model.info = {"training": {"config": config.to_dict(), "counts": counts, "titles": len(data.titles),
                               "seconds": seconds},
                  "metrics": {"validation": metrics}}
    folder = model.save(out)
    return TextTrainResult(model, folder, metrics, counts, data.skipped + embedded.failures, seconds)


class _TitleBags:
    """The titles' hashed features as EmbeddingBag inputs, with words dropped at random (each title keeps each
    word with a chance drawn between `keep` and 1, half the time all of them), so short queries ("red dress") look
    like what training saw. A bigram counts only when both its words are kept."""

    def __init__(self, word_lists: list[list[str]], hashing: HashingConfig, keep: float = 0.3):
        self.word_lists, self.keep = word_lists, keep
        own = {w: hashing.word_features(w) for w in {w for words in word_lists for w in words}}
        pairs = {p: hashing.bigram_bucket(*p) for words in word_lists for p in pairwise(words)} if hashing.bigrams else {}
        self.rows = np.array(sorted({b for f in own.values() for b in f} | set(pairs.values())), dtype=np.int64)
        place = {int(b): i for i, b in enumerate(self.rows)}
        self.own = {w: (np.array([place[b] for b in f], np.int64), np.array(list(f.values()), np.float32))
                    for w, f in own.items()}
        self.pairs = {p: place[b] for p, b in pairs.items()}

    def batch(self, items: np.ndarray, rng: np.random.Generator):
        """(indices, offsets, per-sample weights) tensors for these titles."""
        import torch

        ids, weights, offsets = [], [], []
        total = 0
        for i in items:
            words = self.word_lists[i]
            kept = np.ones(len(words), bool)
            if rng.random() < 0.5:
                kept = rng.random(len(words)) < rng.uniform(self.keep, 1.0)
                kept[rng.integers(len(words))] = True
            offsets.append(total)
            for word in (w for w, k in zip(words, kept, strict=True) if k):
                ids.append(self.own[word][0])
                weights.append(self.own[word][1])
                total += len(self.own[word][0])
            for j, pair in enumerate(pairwise(words)):
                if kept[j] and kept[j + 1] and pair in self.pairs:
                    ids.append(np.array([self.pairs[pair]]))
                    weights.append(np.ones(1, np.float32))
                    total += 1
        return (torch.from_numpy(np.concatenate(ids)), torch.tensor(offsets, dtype=torch.int64),
                torch.from_numpy(np.concatenate(weights)))


def _fit(embeddings: np.ndarray, titles: list[str], vocabulary: dict[str, int], config: TextTrainConfig,
         embedding: dict, images: np.ndarray | None = None) -> TextModel:
    """Symmetric InfoNCE between the titles' hashed features and a linear map of the embeddings; pairs whose
    texts have the same words (a shop lists one title many times), or whose image is the same (`images`: an id
    per pair, when an image has several texts), are each other's positives."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    word_lists = [words_of(t) for t in titles]
    bags = _TitleBags(word_lists, config.hashing)
    mean, std = embeddings.mean(0), embeddings.std(0) + 1e-6
    x = torch.from_numpy(((embeddings - mean) / std).astype(np.float32))
    same_title = np.unique([" ".join(w) for w in word_lists], return_inverse=True)[1]
    groups = torch.from_numpy(same_title.astype(np.int64))
    image_ids = torch.from_numpy(np.arange(len(x)) if images is None else np.asarray(images, np.int64))
    text = torch.nn.EmbeddingBag(len(bags.rows), config.dim, mode="sum")
    torch.nn.init.normal_(text.weight, std=0.1)
    image = torch.nn.Linear(x.shape[1], config.dim)
    optimizer = torch.optim.AdamW([*text.parameters(), *image.parameters()], lr=config.lr,
                                  weight_decay=config.weight_decay)
    steps = config.epochs * max(1, -(-len(x) // config.batch_size))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, config.lr, total_steps=steps, pct_start=0.1)
    for _ in range(config.epochs):
        for batch in np.array_split(rng.permutation(len(x)), max(1, -(-len(x) // config.batch_size))):
            if len(batch) < 2:
                continue
            indices, offsets, weights = bags.batch(batch, rng)
            t = F.normalize(text(indices, offsets, per_sample_weights=weights), dim=1)
            logits = image(x[batch]) @ t.T / config.temperature
            g, m = groups[batch], image_ids[batch]
            target = ((g[:, None] == g[None, :]) | (m[:, None] == m[None, :])).float()
            target = target / target.sum(1, keepdim=True)
            loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    with torch.no_grad():
        scale = 1 / config.temperature  # folded in: scores are the logits the model was trained on
        weight = image.weight.numpy().T / std[:, None] * scale  # [embedding_dim, dim], on raw embeddings
        bias = (image.bias.numpy() - mean / std @ image.weight.numpy().T) * scale
        return TextModel(config.hashing, vocabulary, bags.rows, text.weight.numpy().copy(),
                         weight.astype(np.float32), bias.astype(np.float32), embedding)
