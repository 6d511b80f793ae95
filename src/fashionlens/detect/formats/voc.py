"""Pascal VOC: `Annotations/*.xml` (one file per image) beside `JPEGImages/`, classes in `labels.txt`.

Coordinates are read as written (no 1-based shift), as torchvision and most labelling tools do. The
`difficult` flag is read but not kept: such boxes become ordinary boxes (colorful-fashion has none), since
`Detections` has no ignore flag; say so when comparing with VOC-protocol figures.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from fashionlens.atomic import write_text_atomic
from fashionlens.data.samples import SkippedInput
from fashionlens.detect.detections import AnnotatedImage, DetectionDataset
from fashionlens.detect.formats.checks import ImageBuilder, find_image, image_size, read_class_file
from fashionlens.detect.formats.output import place_image, relative_names
from fashionlens.progress import progress_bar

CLASS_FILES = ("labels.txt", "classes.txt")


def _number(element: ET.Element, tag: str) -> float:
    text = element.findtext(tag)
    if text is None or not text.strip():
        raise ValueError(f"<{tag}> missing")
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"<{tag}> is not a number: {text.strip()!r}") from None


def _parse(xml_path: Path) -> tuple[str | None, tuple[int, int] | None, list[tuple[str, list[float] | str]]]:
    """(filename, declared size, [(class name, box or why it has none)]); raises ValueError on bad XML."""
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as exc:
        raise ValueError(f"bad XML ({exc})") from None
    if root.tag != "annotation":
        raise ValueError(f"root element is <{root.tag}>, not <annotation>")
    size = root.find("size")
    declared = None
    if size is not None:
        try:
            declared = (int(_number(size, "width")), int(_number(size, "height")))
        except ValueError:
            declared = None  # many tools write <size> with zeros or blanks; the image header decides
    objects: list[tuple[str, list[float] | str]] = []
    for obj in root.iter("object"):
        name = (obj.findtext("name") or "").strip()
        bndbox = obj.find("bndbox")
        if bndbox is None:
            objects.append((name, "no <bndbox>"))
            continue
        try:
            objects.append((name, [_number(bndbox, t) for t in ("xmin", "ymin", "xmax", "ymax")]))
        except ValueError as exc:
            objects.append((name, str(exc)))
    filename = (root.findtext("filename") or "").strip() or None
    return filename, declared, objects


def read_voc(root: str | Path, classes: list[str] | None = None, progress: bool = False) -> DetectionDataset:
    """Read a VOC folder; broken files and boxes are reported in `skipped` (path and reason), never fatal.

    Classes come from `classes`, else `labels.txt`/`classes.txt` in `root`, else the sorted names found;
    with a class list, objects of other classes are reported as unknown. An image is kept only with at
    least one usable box.
    """
    root = Path(root)
    annotations_dir, images_dir = root / "Annotations", root / "JPEGImages"
    if not annotations_dir.is_dir():
        raise FileNotFoundError(f"{root}: no Annotations/ folder (expected Annotations/*.xml and JPEGImages/)")
    if classes is None:
        class_file = next((root / n for n in CLASS_FILES if (root / n).is_file()), None)
        classes = read_class_file(class_file) if class_file else None
    xml_paths = sorted(annotations_dir.rglob("*.xml"))
    if not xml_paths:
        raise ValueError(f"{annotations_dir}: no .xml annotation files")

    skipped: list[SkippedInput] = []
    parsed = []
    with progress_bar("reading VOC annotations", len(xml_paths), enabled=progress) as advance:
        for xml_path in xml_paths:
            advance()
            try:
                filename, declared, objects = _parse(xml_path)
                image_path = find_image(images_dir / xml_path.parent.relative_to(annotations_dir), filename, xml_path.stem)
                if image_path is None:
                    raise ValueError(f"image {filename or xml_path.stem} not found in {images_dir}")
                width, height = image_size(image_path)
            except ValueError as exc:
                skipped.append(SkippedInput(str(xml_path), str(exc)))
                continue
            if declared and declared != (width, height) and declared != (height, width) and 0 not in declared:
                skipped.append(SkippedInput(str(xml_path), f"annotation says {declared[0]}x{declared[1]} but "
                                                           f"{image_path.name} is {width}x{height}"))
                continue
            parsed.append((xml_path, image_path, width, height, objects))

    names = classes or sorted({name for *_, objects in parsed for name, _ in objects if name})
    index = {name: i for i, name in enumerate(names)}
    images: list[AnnotatedImage] = []
    for xml_path, image_path, width, height, objects in parsed:
        builder = ImageBuilder(str(xml_path), width, height, skipped)
        if not objects:
            skipped.append(SkippedInput(str(xml_path), "no <object> in the annotation"))
            continue
        for number, (name, box) in enumerate(objects, 1):
            if isinstance(box, str):
                skipped.append(SkippedInput(f"{xml_path} (object {number})", box))
            else:
                builder.add(box, index.get(name), f"object {number}", name)
        if builder.boxes:
            images.append(builder.build(image_path))
        else:
            skipped.append(SkippedInput(str(xml_path), "no usable box left (see the object reports)"))
    return DetectionDataset(list(names), images, str(root), skipped)


def voc_xml(image: AnnotatedImage, classes: list[str], filename: str) -> str:
    """One image's annotation as VOC XML text."""
    root = ET.Element("annotation")
    ET.SubElement(root, "filename").text = filename
    size = ET.SubElement(root, "size")
    for tag, value in (("width", image.width), ("height", image.height), ("depth", 3)):
        ET.SubElement(size, tag).text = str(value)
    for box, class_id in zip(image.detections.xyxy.tolist(), image.detections.class_id.tolist(), strict=True):
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = classes[class_id]
        ET.SubElement(obj, "difficult").text = "0"
        bndbox = ET.SubElement(obj, "bndbox")
        for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), box, strict=True):
            ET.SubElement(bndbox, tag).text = f"{value:g}"
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


def write_voc(dataset: DetectionDataset, out_dir: str | Path, link_images: bool = False) -> Path:
    """Write `out_dir/Annotations`, `JPEGImages` (copies, or symlinks) and `labels.txt`; returns `out_dir`."""
    out_dir = Path(out_dir)
    for image, name in zip(dataset.images, relative_names([i.path for i in dataset.images]), strict=True):
        place_image(image.path, out_dir / "JPEGImages" / name, link_images)
        write_text_atomic(out_dir / "Annotations" / name.with_suffix(".xml"), voc_xml(image, dataset.classes, name.name))
    write_text_atomic(out_dir / "labels.txt", "".join(f"{c}\n" for c in dataset.classes))
    return out_dir
