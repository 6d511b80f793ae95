"""The parser's configuration: everything needed to rebuild the network, saved in the model manifest."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from fashionlens.parse.labels import CCP_GROUPS


@dataclass(frozen=True)
class ParserConfig:
    """Everything needed to rebuild the network; saved in the model manifest."""

    classes: tuple[str, ...] = tuple(CCP_GROUPS)
    groups: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(CCP_GROUPS))  # class -> merged names
    backbone: str = "efficientnet_lite0"
    input_size: tuple[int, int] = (384, 256)  # height, width: photos are letterboxed to it
    stages: tuple[int, ...] = (1, 2, 3, 4)  # strides 4, 8, 16, 32
    frozen_stages: int = 1  # stages 0..frozen_stages are frozen (and cached during training)
    channels: int = 64

    def to_dict(self) -> dict:
        return {**asdict(self), "groups": {k: list(v) for k, v in self.groups.items()}}

    @classmethod
    def from_dict(cls, data: dict) -> ParserConfig:
        data = dict(data)
        for key in ("classes", "input_size", "stages"):
            data[key] = tuple(data[key])
        data["groups"] = {k: tuple(v) for k, v in data["groups"].items()}
        return cls(**data)
