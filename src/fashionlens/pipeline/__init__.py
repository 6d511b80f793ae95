"""The analysis pipeline: a photo in, each garment's box, attributes, colours, embedding and similar items out."""

from fashionlens.pipeline.analyzer import Analyzer, Description, PipelineConfig
from fashionlens.pipeline.result import Analysis, Garment

__all__ = ["Analysis", "Analyzer", "Description", "Garment", "PipelineConfig"]
