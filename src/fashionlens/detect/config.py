"""The detector's configuration: everything needed to rebuild the network, saved in the model manifest."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class DetectorConfig:
    """Everything needed to rebuild the network; saved in the model manifest."""

    classes: tuple[str, ...]
    backbone: str = "efficientnet_lite0"
    input_size: tuple[int, int] = (480, 320)  # height, width letterboxed to (the shipped model's and the CLI's)
    stages: tuple[int, ...] = (2, 3, 4)  # backbone feature stages feeding the pyramid (strides 8, 16, 32)
    frozen_stages: int = 2  # stages 0..frozen_stages are frozen (and cached during training)
    channels: int = 128
    head_convs: int = 2
    score_thresh: float = 0.05
    nms_thresh: float = 0.6
    detections_per_img: int = 100

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> DetectorConfig:
        data = dict(data)
        for key in ("classes", "input_size", "stages"):
            data[key] = tuple(data[key])
        return cls(**data)
