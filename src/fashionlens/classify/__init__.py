"""Image classification: train heads (or fine-tune) on a backbone, evaluate, predict, export.

Names are imported on first use: predicting needs only ONNX Runtime and numpy, training needs the `train` extra."""

from fashionlens.lazy import lazy_exports

_EXPORTS = {"CrossValidation": "crossval", "cross_validate": "crossval", "evaluate": "evaluate", "export": "export",
            "ImagePrediction": "inference", "LabelScore": "inference", "Predictor": "inference",
            "Classifier": "model", "Heads": "model", "TaskSpec": "tasks", "LoadedModel": "model_io",
            "ModelError": "model_io", "load_model": "model_io", "save_model": "model_io", "TrainConfig": "train",
            "TrainResult": "train", "train": "train"}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
