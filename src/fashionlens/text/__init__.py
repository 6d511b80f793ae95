"""Search by words: a text encoder and a projection of the catalogue's stored image embeddings into one space,
learned contrastively from the shop's own product titles (`train-text`), used by `catalog search --text`,
`POST /v1/search {"text": ...}` and `tag`.

Names are imported on first use, so `fashionlens --help` loads neither PyTorch nor the model.
"""

from fashionlens.lazy import lazy_exports

_EXPORTS = {
    "TextModel": "model", "ParsedText": "model", "UnknownWords": "model", "load_text_model": "model",
    "TextTrainConfig": "train", "TextTrainResult": "train", "train_text": "train",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
