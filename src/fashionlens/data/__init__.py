"""Labelled image sets: where the images are and what each is called, before any pixel is read."""

from fashionlens.data.folders import read_folder
from fashionlens.data.samples import LabeledImages, Sample, SkippedInput
from fashionlens.data.tables import TableRows, parse_label_map, parse_where, read_rows, read_table

__all__ = [
    "LabeledImages",
    "Sample",
    "SkippedInput",
    "TableRows",
    "parse_label_map",
    "parse_where",
    "read_folder",
    "read_rows",
    "read_table",
]
