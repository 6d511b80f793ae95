"""Image classification: train heads (or fine-tune) on a backbone, evaluate, predict, export."""

from fashionlens.classify.crossval import CrossValidation, cross_validate
from fashionlens.classify.evaluate import evaluate
from fashionlens.classify.export import export
from fashionlens.classify.inference import ImagePrediction, LabelScore, Predictor
from fashionlens.classify.model import Classifier, Heads, TaskSpec
from fashionlens.classify.model_io import LoadedModel, ModelError, load_model, save_model
from fashionlens.classify.train import TrainConfig, TrainResult, train

__all__ = [
    "Classifier",
    "CrossValidation",
    "Heads",
    "ImagePrediction",
    "LabelScore",
    "LoadedModel",
    "ModelError",
    "Predictor",
    "TaskSpec",
    "TrainConfig",
    "TrainResult",
    "cross_validate",
    "evaluate",
    "export",
    "load_model",
    "save_model",
    "train",
]
