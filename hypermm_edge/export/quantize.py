"""int8 as explicit Q/DQ in the graph, calibrated on the user's own patients.

Uses ONNX Runtime's static quantizer (symmetric, per-channel weights, QDQ format), which is
what TensorRT's strongly typed builder and ONNX Runtime's CPU kernels both consume.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from hypermm_edge.config import ModelConfig
from hypermm_edge.errors import ConfigError, HyperMMError
from hypermm_edge.export.onnx_graphs import TRUNK_INPUT

log = logging.getLogger(__name__)


def calibration_batches(data_dir: Path, config: ModelConfig, max_inputs: int, max_slices: int
                        ) -> Iterator[np.ndarray]:
    """Trunk inputs [1, S, 3, H, W] from every patient folder below `data_dir` (labels not needed)."""
    from hypermm_edge.readers.patient import read_patient

    folders = sorted(p for p in Path(data_dir).iterdir() if p.is_dir() and not p.name.startswith("."))
    produced = 0
    for folder in folders:
        try:
            patient = read_patient(folder, config)
        except HyperMMError as exc:
            log.warning("calibration: skipping %s: %s", folder.name, exc)
            continue
        for x in patient.inputs:
            for b in range(x.slices.shape[0]):
                yield x.slices[b : b + 1, :max_slices]
                produced += 1
                if produced >= max_inputs:
                    return
    if produced == 0:
        raise ConfigError("no usable patient found for int8 calibration", path=data_dir)


def quantize_trunk(fp32_path: Path, out_path: Path, batches: Iterator[np.ndarray]) -> Path:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class _Reader(CalibrationDataReader):
        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(batches, None)
            return None if batch is None else {TRUNK_INPUT: batch}

    # Shape inference and graph clean-up first, as ONNX Runtime's quantizer recommends.
    prepared = out_path.with_name(out_path.stem + ".prep.onnx")
    quant_pre_process(str(fp32_path), str(prepared))
    quantize_static(
        str(prepared), str(out_path), _Reader(),
        quant_format=QuantFormat.QDQ, per_channel=True,
        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
        op_types_to_quantize=["Conv", "MaxPool", "Relu"],
        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True},
    )
    prepared.unlink()
    return out_path
