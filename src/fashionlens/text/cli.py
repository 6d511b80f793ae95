"""`fashionlens train-text` (learn to search by words from a table of images and titles) and `fashionlens tag`
(score images against phrases); `catalog search --text` lives with the other catalogue commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from fashionlens.cli_common import DataArg, console, fail

TextModelOpt = Annotated[Path, typer.Option("--text-model", help="Text model folder (from train-text).")]


def load_text_model_or_fail(folder: Path):
    from fashionlens.model_folder import ModelError
    from fashionlens.text import load_text_model

    try:
        return load_text_model(folder)
    except ModelError as exc:
        fail(str(exc))


def train_text(
    data: DataArg,
    labels: Annotated[Path, typer.Option("--labels", help="CSV/TSV table with an image column and a text column.")],
    out: Annotated[Path, typer.Option("--out", help="Model folder to write.")],
    image_column: Annotated[str, typer.Option("--image-column", help="Table column naming each image (path or bare file name).")] = "image",
    text_column: Annotated[str, typer.Option("--text-column", help="Table column holding each image's title.")] = "title",
    attribute: Annotated[Optional[list[str]], typer.Option("--attribute", help="Columns whose values, joined, make the validation's attribute queries (repeatable; default: gender, baseColour, articleType where present).")] = None,
    attribute_phrases: Annotated[bool, typer.Option("--attribute-phrases/--titles-only", help="Also pair each training image with its --attribute values joined ('Men Navy Blue Shirts'), the category names shoppers type (where the table has those columns).")] = True,
    model: Annotated[str, typer.Option("--model", help="The catalogue's embedding: 'default', 'backbone' or a classifier folder; the one the catalogue was built with.")] = "default",
    validation: Annotated[float, typer.Option(min=0.0, max=0.5, help="Fraction held out for validation (by a hash of the image bytes).")] = 0.15,
    test: Annotated[float, typer.Option(min=0.0, max=0.5, help="Fraction held out of training and validation alike (0: none).")] = 0.0,
    epochs: Annotated[int, typer.Option(min=1)] = 40,
    dim: Annotated[int, typer.Option(min=8, help="Size of the shared text-image space.")] = 256,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as one JSON line.")] = False,
) -> None:
    """Learn to search the catalogue by words: a text encoder and a projection of the stored image embeddings,
    trained contrastively on image-title pairs; reports text-to-image recall@10 and attribute precision on the
    validation part."""
    import sys

    from fashionlens.backbones import BackboneError
    from fashionlens.cli_common import report_skipped
    from fashionlens.embeddings import embedder_named
    from fashionlens.model_folder import ModelError
    from fashionlens.text.train import DEFAULT_ATTRIBUTES, TextTrainConfig, read_titles
    from fashionlens.text.train import train_text as run

    try:
        titled = read_titles(labels, data, image_column, text_column, list(attribute or DEFAULT_ATTRIBUTES))
        embedder = embedder_named(model)
        result = run(titled, out, embedder, TextTrainConfig(dim=dim, epochs=epochs, validation=validation, test=test,
                                                                attribute_phrases=attribute_phrases),
                     embedder_name=model, progress=not json_out and sys.stderr.isatty())
    except (FileNotFoundError, ValueError, ModelError, BackboneError) as exc:
        fail(str(exc))
    if json_out:
        print(json.dumps({"model": str(result.folder), "counts": result.counts, "validation": result.metrics,
                          "seconds": result.seconds, "skipped": [{"source": s.source, "reason": s.reason}
                                                                 for s in result.skipped]}, ensure_ascii=False))
        return
    report_skipped(result.skipped)
    console.print(f"images: {result.counts['train']} train, {result.counts['validation']} validation, "
                  f"{result.counts['test']} test; {len(result.model.vocabulary)} words; "
                  f"{result.seconds['total']:.0f} s ({result.seconds['embedding']:.0f} s embedding)", highlight=False)
    m = result.metrics
    if m:
        console.print(f"validation: text->image recall@10 {m['recall@10']:.3f} over {m['titles']} titles", highlight=False)
        ap = m.get("attribute_precision@10", {})
        if ap.get("queries"):
            each = ", ".join(f"{k} {v:.3f}" for k, v in ap.items() if k not in ("queries", "all"))
            console.print(f"validation: attribute precision@10 over {ap['queries']} queries: all {ap['all']:.3f}; "
                          f"{each}", highlight=False)
    console.print(f"wrote {result.folder}", highlight=False)


def tag(
    images: Annotated[list[str], typer.Argument(help="Images, folders or globs.")],
    text_model: TextModelOpt,
    phrases: Annotated[str, typer.Option("--phrases", help="Comma-separated phrases, e.g. 'striped,floral,checked,denim'.")],
    json_out: Annotated[bool, typer.Option("--json", help="JSON output, one line per image.")] = False,
) -> None:
    """Score each image against each phrase (zero-shot tags from the text model's space), using only the words the
    model knows; a phrase with none of them is refused."""
    from fashionlens.cli_common import image_paths
    from fashionlens.embeddings import embed_paths, embedder_named
    from fashionlens.model_folder import ModelError

    model = load_text_model_or_fail(text_model)
    wanted = [p.strip() for p in phrases.split(",") if p.strip()]
    if not wanted:
        fail("--phrases: give at least one phrase")
    vectors, parsed = model.text_vectors(wanted)
    for p in parsed:
        if p.unknown:
            console.print(f"[yellow]unknown words[/yellow] in {p.text!r}: {', '.join(p.unknown)}", highlight=False)
    usable = [i for i, p in enumerate(parsed) if p.words]
    if not usable:
        fail("the text model knows no word of any phrase")
    files = image_paths(images)
    try:
        embedder = embedder_named(model.embedding.get("model", "default"))
        model.check_space(embedder.key)
    except (ModelError, ValueError) as exc:
        fail(str(exc))
    embedded = embed_paths(files, embedder, progress=False)
    scores = model.image_vectors(embedded.vectors) @ vectors[usable].T
    for failure in embedded.failures:
        console.print(f"[yellow]skipped[/yellow] {failure.source}: {failure.reason}", highlight=False)
    for row, index in enumerate(embedded.indices):
        tags = {parsed[i].text: round(float(s), 4) for i, s in zip(usable, scores[row], strict=True)}
        if json_out:
            print(json.dumps({"image": str(files[index]), "scores": tags}, ensure_ascii=False))
        else:
            best = sorted(tags.items(), key=lambda kv: -kv[1])
            print(f"{files[index]}\t" + "  ".join(f"{k} {v:.2f}" for k, v in best))
    if not embedded.indices:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("train-text")(train_text)
    app.command("tag")(tag)
