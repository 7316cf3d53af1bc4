"""The three graph kinds, written directly from weight arrays with onnx.helper.

Writing the graphs by hand (rather than tracing torch) keeps them minimal and predictable for
TensorRT: Conv/Relu/MaxPool/ReduceMax/Gemm only, opset 17, fp32 I/O. With `fp16`, weights are
stored in half precision and the graph casts at its edges, so precision lives in the graph.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from hypermm_edge.config import TRUNK_CHANNELS

OPSET = 17
TRUNK_INPUT, TRUNK_OUTPUT = "slices", "features"
HEAD_INPUT, HEAD_OUTPUT = "features", "embedding"
RHO_INPUT, RHO_OUTPUT = "aggregate", "logits"
_POOL_AFTER = {0, 1, 3, 5, 7}  # VGG11: a 2x2 max-pool follows these convs (by position)


class _Graph:
    """Small builder: tracks nodes and constants, and the compute dtype."""

    def __init__(self, fp16: bool) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.fp16 = fp16
        self._n = 0

    def name(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}_{self._n}"

    def const(self, prefix: str, array: np.ndarray, compute: bool = True) -> str:
        name = self.name(prefix)
        dtype = np.float16 if (compute and self.fp16 and array.dtype.kind == "f") else array.dtype
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array.astype(dtype)), name))
        return name

    def op(self, op_type: str, inputs: list[str], **attrs: Any) -> str:
        out = self.name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def to_compute(self, x: str) -> str:
        return self.op("Cast", [x], to=TensorProto.FLOAT16) if self.fp16 else x

    def to_float(self, x: str) -> str:
        return self.op("Cast", [x], to=TensorProto.FLOAT) if self.fp16 else x

    def finish(self, name: str, inputs: list, outputs: list, last: str, output_name: str) -> onnx.ModelProto:
        self.nodes.append(helper.make_node("Identity", [last], [output_name], name="output"))
        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="hypermm-edge")
        model.ir_version = 8  # readable by TensorRT 10.3's parser and every ONNX Runtime >= 1.14
        onnx.checker.check_model(model)
        return model


def trunk_graph(convs: list[tuple[np.ndarray, np.ndarray]], size: int, fp16: bool = False) -> onnx.ModelProto:
    """[B, S, 3, H, W] -> VGG11 conv trunk on every slice -> max over S -> [B, 512, h, w]."""
    g = _Graph(fp16)
    hw = size // 32
    shape_bs = g.op("Shape", [TRUNK_INPUT], start=0, end=2)  # [B, S]
    x = g.op("Reshape", [TRUNK_INPUT, g.const("flat_shape", np.array([-1, 3, size, size], np.int64))])
    x = g.to_compute(x)
    for i, (w, b) in enumerate(convs):
        x = g.op("Conv", [x, g.const("w", w), g.const("b", b)], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
        x = g.op("Relu", [x])
        if i in _POOL_AFTER:
            x = g.op("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
    tail = g.const("feat_shape", np.array([TRUNK_CHANNELS, hw, hw], np.int64))
    x = g.op("Reshape", [x, g.op("Concat", [shape_bs, tail], axis=0)])
    x = g.op("ReduceMax", [x], axes=[1], keepdims=0)
    x = g.to_float(x)
    return g.finish(
        "hypermm_trunk",
        [helper.make_tensor_value_info(TRUNK_INPUT, TensorProto.FLOAT, ["batch", "slices", 3, size, size])],
        [helper.make_tensor_value_info(TRUNK_OUTPUT, TensorProto.FLOAT, ["batch", TRUNK_CHANNELS, hw, hw])],
        x, TRUNK_OUTPUT,
    )


def head_graph(weight: np.ndarray, bias: np.ndarray, hw: int, fp16: bool = False) -> onnx.ModelProto:
    """[B, 512, h, w] -> this modality's generated 1x1 conv (constants) -> flatten -> [B, D]."""
    g = _Graph(fp16)
    x = g.to_compute(HEAD_INPUT)
    x = g.op("Conv", [x, g.const("w", weight.reshape(*weight.shape, 1, 1)), g.const("b", bias)],
             kernel_shape=[1, 1])
    x = g.to_float(g.op("Flatten", [x], axis=1))
    c = TRUNK_CHANNELS
    return g.finish(
        "hypermm_head",
        [helper.make_tensor_value_info(HEAD_INPUT, TensorProto.FLOAT, ["batch", c, hw, hw])],
        [helper.make_tensor_value_info(HEAD_OUTPUT, TensorProto.FLOAT, ["batch", c * hw * hw])],
        x, HEAD_OUTPUT,
    )


def rho_graph(layers: list[tuple[np.ndarray, np.ndarray]], fp16: bool = False) -> onnx.ModelProto:
    """[N, D] aggregates -> MLP (ReLU between layers; dropout is identity at inference) -> logits."""
    g = _Graph(fp16)
    x = g.to_compute(RHO_INPUT)
    for i, (w, b) in enumerate(layers):
        x = g.op("Gemm", [x, g.const("w", w), g.const("b", b)], transB=1)
        if i < len(layers) - 1:
            x = g.op("Relu", [x])
    x = g.to_float(x)
    return g.finish(
        "hypermm_rho",
        [helper.make_tensor_value_info(RHO_INPUT, TensorProto.FLOAT, ["n", layers[0][0].shape[1]])],
        [helper.make_tensor_value_info(RHO_OUTPUT, TensorProto.FLOAT, ["n", layers[-1][0].shape[0]])],
        x, RHO_OUTPUT,
    )


def io_shapes(model: onnx.ModelProto) -> tuple[dict[str, list], dict[str, list]]:
    def dims(vi: onnx.ValueInfoProto) -> list:
        return [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]

    return ({vi.name: dims(vi) for vi in model.graph.input}, {vi.name: dims(vi) for vi in model.graph.output})
