"""The analysis pipeline: a photo in, each garment's box, attributes, colours, embedding and similar items out.

Names are imported on first use, so `fashionlens --help` does not load the models' stack."""

from fashionlens.lazy import lazy_exports

_EXPORTS = {"Analyzer": "analyzer", "Description": "analyzer", "PipelineConfig": "analyzer", "Analysis": "result",
            "Garment": "result"}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
