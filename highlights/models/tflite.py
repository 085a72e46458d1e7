"""Run a small float TFLite model in PyTorch: the file's graph, rebuilt as a ``torch.nn.Module``.

Why: MediaPipe's BlazeFace and selfie-segmentation models are small Apache-2.0 ``.tflite`` files,
but the ``mediapipe`` runtime that runs them (>= 0.10.35, including 1.2.2) sends usage logs to
``play.googleapis.com`` (google-ai-edge/mediapipe#6291), which is not acceptable for children's
video, and the last release without it (0.10.21) needs numpy < 2. The models use a dozen plain
ops, so this module reads the flatbuffer (with the pure-Python ``tflite`` schema bindings) and
runs the same arithmetic with torch: no TensorFlow, no MediaPipe, no network.

Scope: exactly the ops of those models (:data:`SUPPORTED_OPS`), float32 activations, weights
stored as float32 or float16 (``DEQUANTIZE`` of a constant is folded when the module is built).
Anything else raises :class:`UnsupportedModelError` when the module is built, never at run time.

Layout: TFLite tensors are NHWC, torch's convolutions want NCHW. Every rank-4 tensor is kept
NCHW inside the module (the layout-sensitive ops map their axes, paddings and reshapes), and
:meth:`TFLiteModule.forward` takes and returns tensors in the file's own layout, so outputs
compare one to one with a TFLite interpreter's. Shapes are the file's static shapes except the
batch dimension, which may be any size (the files say 1; reshapes keep dimension 0 as batch).

Arithmetic follows TFLite's reference kernels: SAME padding puts the odd pixel after (bottom /
right), average pooling does not count padding, RESIZE_BILINEAR honours ``align_corners`` and
``half_pixel_centers``, and MediaPipe's custom ``Convolution2DTransposeBias`` reads its options
as the C struct ``TfLiteTransposeConvParams`` {int32 padding (1 SAME, 2 VALID), int32
stride_width, int32 stride_height} from the operator's ``custom_options`` bytes (MediaPipe's
``transpose_conv_bias.cc`` casts those bytes to that struct). Outputs agree with LiteRT's
(XNNPACK) to float32 rounding: differences of about 1e-6 of the values' magnitude, from the
order of the sums.

Run time: the graph is a list of small layers walked in order; intermediates are freed after
their last reader, and activations / ADD / MUL overwrite an input nobody reads later (fewer
large allocations: they, not the arithmetic, dominate these tiny networks on a CPU). Run it
under ``torch.inference_mode()`` (:meth:`TFLiteModule.run` does); results are deterministic.
"""

from __future__ import annotations

import hashlib
import math
import os
import struct
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from highlights.models.face_cnn import WeightsError

SUPPORTED_OPS = (
    "ADD",
    "AVERAGE_POOL_2D",
    "CONCATENATION",
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "DEQUANTIZE",
    "HARD_SWISH",
    "LOGISTIC",
    "MAX_POOL_2D",
    "MEAN",
    "MUL",
    "PAD",
    "RELU",
    "RELU6",
    "RESHAPE",
    "RESIZE_BILINEAR",
    "TANH",
    "Convolution2DTransposeBias",
)
"""Operators :class:`TFLiteModule` can run (``Convolution2DTransposeBias`` is MediaPipe's custom op)."""

_TFL_TO_TORCH_AXIS = (0, 2, 3, 1)
"""A rank-4 TFLite axis (N, H, W, C) -> the same axis of the NCHW tensor kept in torch (also the
NCHW -> NHWC permutation)."""
_TORCH_TO_TFL_AXIS = (0, 3, 1, 2)
"""The inverse: torch dimension (N, C, H, W) -> TFLite axis (also the NHWC -> NCHW permutation)."""
_FLOAT32, _FLOAT16, _INT32, _INT64 = 0, 1, 2, 4
_NUMPY_TYPES = {_FLOAT32: np.float32, _FLOAT16: np.float16, _INT32: np.int32, _INT64: np.int64}
_SAME, _VALID = 0, 1  # tflite.Padding (the custom op's C enum differs: 1 SAME, 2 VALID)


# Activations run in place: on a fresh result (fused into CONV_2D, ADD, ...) or on an input
# that no later operator reads. Each is (out of place, in place); named functions so they pickle.
def _relu_(x: torch.Tensor) -> torch.Tensor:
    return x.relu_()


def _relu6_(x: torch.Tensor) -> torch.Tensor:
    return x.clamp_(0.0, 6.0)


def _relu_n1_to_1_(x: torch.Tensor) -> torch.Tensor:
    return x.clamp_(-1.0, 1.0)


def _tanh_(x: torch.Tensor) -> torch.Tensor:
    return x.tanh_()


def _sigmoid_(x: torch.Tensor) -> torch.Tensor:
    return x.sigmoid_()


def _hardswish_(x: torch.Tensor) -> torch.Tensor:
    return F.hardswish(x, inplace=True)  # x * relu6(x + 3) / 6, as TFLite's HARD_SWISH


_UNARY = {
    "RELU": (torch.relu, _relu_),
    "RELU6": (F.relu6, _relu6_),
    "TANH": (torch.tanh, _tanh_),
    "LOGISTIC": (torch.sigmoid, _sigmoid_),
    "HARD_SWISH": (F.hardswish, _hardswish_),
}
_FUSED_ACTIVATIONS: dict[int, Callable[[torch.Tensor], torch.Tensor] | None] = {
    0: None,  # tflite.ActivationFunctionType NONE
    1: _relu_,
    2: _relu_n1_to_1_,
    3: _relu6_,
    4: _tanh_,
}


class UnsupportedModelError(ValueError):
    """The file uses an operator, tensor type or option this runner does not implement."""


def read_model(source: bytes | str | os.PathLike, sha256: str | None = None) -> bytes:
    """A model file's bytes (``source`` may already be bytes), checked against ``sha256`` when
    given: a shipped file that is corrupt or replaced must fail loudly, not give wrong boxes."""
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source)
    path = Path(source)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise WeightsError(f"model file {path} cannot be read: {error.strerror or type(error).__name__}") from error
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise WeightsError(f"model file {path} fails its checksum (expected sha256 {sha256[:12]}...): corrupt or replaced")
    return data


def _to_torch_layout(x: torch.Tensor) -> torch.Tensor:
    return x.permute(*_TORCH_TO_TFL_AXIS) if x.dim() == 4 else x


def _to_tflite_layout(x: torch.Tensor) -> torch.Tensor:
    return x.permute(*_TFL_TO_TORCH_AXIS) if x.dim() == 4 else x


def _same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's SAME padding of one axis: (before, after), the odd pixel after."""
    effective = (kernel - 1) * dilation + 1
    total = max((math.ceil(size / stride) - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def _window_padding(padding: int, size_hw, kernel_hw, stride_hw, dilation_hw=(1, 1)) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) for ``F.pad`` of an NCHW tensor, from a tflite.Padding value."""
    if padding == _VALID:
        return (0, 0, 0, 0)
    if padding != _SAME:
        raise UnsupportedModelError(f"padding type {padding}")
    top, bottom = _same_padding(size_hw[0], kernel_hw[0], stride_hw[0], dilation_hw[0])
    left, right = _same_padding(size_hw[1], kernel_hw[1], stride_hw[1], dilation_hw[1])
    return (left, right, top, bottom)


class _Conv(nn.Module):
    """CONV_2D and DEPTHWISE_CONV_2D (a grouped convolution, one group per input channel)."""

    def __init__(self, weight, bias, stride, dilation, pads, groups, activation) -> None:
        super().__init__()
        self.register_buffer("weight", weight)
        self.register_buffer("bias", bias)
        self.stride, self.dilation, self.groups, self.activation = stride, dilation, groups, activation
        # Symmetric padding goes to the convolution itself; TF's odd pixel needs an explicit pad.
        left, right, top, bottom = pads
        self.pads = None if (left == right and top == bottom) else pads
        self.padding = (top, left) if self.pads is None else (0, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pads is not None:
            x = F.pad(x, self.pads)
        x = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        return self.activation(x) if self.activation else x


class _TransposeConv(nn.Module):
    """MediaPipe's Convolution2DTransposeBias: a transposed convolution plus bias, cropped as
    its kernel does (SAME: ``max(0, k - (in - 1) % s - 1)`` rows removed, half of them on top)."""

    def __init__(self, weight, bias, stride, crop, out_hw) -> None:
        super().__init__()
        self.register_buffer("weight", weight)
        self.register_buffer("bias", bias)
        self.stride, self.crop, self.out_hw = stride, crop, out_hw

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv_transpose2d(x, self.weight, self.bias, self.stride)
        (top, left), (height, width) = self.crop, self.out_hw
        return x[:, :, top : top + height, left : left + width]


class _Pool(nn.Module):
    """MAX_POOL_2D / AVERAGE_POOL_2D. TFLite's average ignores the padded cells: the sum over
    the zero-padded window is divided by the number of real cells (``divisor``, precomputed)."""

    def __init__(self, kind, kernel, stride, pads, activation, divisor=None) -> None:
        super().__init__()
        self.kind, self.kernel, self.stride, self.pads, self.activation = kind, kernel, stride, pads, activation
        self.register_buffer("divisor", divisor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "max":
            if any(self.pads):
                x = F.pad(x, self.pads, value=-math.inf)
            x = F.max_pool2d(x, self.kernel, self.stride)
        elif self.divisor is None:
            x = F.avg_pool2d(x, self.kernel, self.stride)
        else:
            x = F.avg_pool2d(F.pad(x, self.pads), self.kernel, self.stride, divisor_override=1) / self.divisor
        return self.activation(x) if self.activation else x


class _Unary(nn.Module):
    """RELU, RELU6, LOGISTIC, TANH, HARD_SWISH (in place when no later operator reads the input)."""

    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


class _Binary(nn.Module):
    """ADD and MUL with broadcasting and a fused activation. When an operand of the result's
    shape is read by no later operator, the result overwrites it (``inplace`` = its position):
    fewer large allocations, which dominate these small networks on a CPU."""

    def __init__(self, op: str, activation, inplace: int | None) -> None:
        super().__init__()
        self.op, self.activation, self.inplace = op, activation, inplace

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if self.inplace is not None:
            target, other = (a, b) if self.inplace == 0 else (b, a)  # both ops commute exactly
            x = target.add_(other) if self.op == "add" else target.mul_(other)
        else:
            x = torch.add(a, b) if self.op == "add" else torch.mul(a, b)
        return self.activation(x) if self.activation else x


class _Pad(nn.Module):
    def __init__(self, pads) -> None:
        super().__init__()
        self.pads = pads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, self.pads)


class _Reshape(nn.Module):
    """RESHAPE of the NHWC data: back to the file's layout, reshape (dimension 0 stays the
    batch), and to NCHW again if the result has rank 4."""

    def __init__(self, shape, keep_batch: bool) -> None:
        super().__init__()
        self.shape, self.keep_batch = tuple(shape), keep_batch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (x.shape[0], *self.shape[1:]) if self.keep_batch else self.shape
        return _to_torch_layout(_to_tflite_layout(x).reshape(shape))


class _Concat(nn.Module):
    def __init__(self, dim, activation) -> None:
        super().__init__()
        self.dim, self.activation = dim, activation

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        x = torch.cat(xs, self.dim)
        return self.activation(x) if self.activation else x


class _Mean(nn.Module):
    """MEAN over constant axes (global average pooling in the landscape segmentation model)."""

    def __init__(self, dims, keepdim: bool, rank: int) -> None:
        super().__init__()
        self.keepdim, self.rank = keepdim, rank
        # Kept rank-4 results stay NCHW: reduce the mapped axes. Otherwise reduce in NHWC order.
        self.dims = tuple(_TFL_TO_TORCH_AXIS[d] for d in dims) if (rank == 4 and keepdim) else tuple(dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.rank == 4 and not self.keepdim:
            x = _to_tflite_layout(x)
        return x.mean(self.dims, keepdim=self.keepdim)


class _ResizeBilinear(nn.Module):
    """RESIZE_BILINEAR. ``half_pixel_centers`` is torch's ``align_corners=False``; TFLite's
    legacy mode (neither flag: source = destination x in/out, no half-pixel offset) has no torch
    equivalent and is computed from gathered rows and columns."""

    def __init__(self, size, align_corners: bool, half_pixel_centers: bool) -> None:
        super().__init__()
        if align_corners and half_pixel_centers:
            raise UnsupportedModelError("RESIZE_BILINEAR with both align_corners and half_pixel_centers")
        self.size, self.align_corners, self.legacy = tuple(size), align_corners, not (align_corners or half_pixel_centers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.legacy:
            return F.interpolate(x, size=self.size, mode="bilinear", align_corners=self.align_corners)
        for dim, out in ((2, self.size[0]), (3, self.size[1])):
            n = x.shape[dim]
            pos = torch.arange(out, dtype=torch.float32) * (n / out)
            low = pos.floor().long().clamp(max=n - 1)
            high = (low + 1).clamp(max=n - 1)
            shape = [1, 1, 1, 1]
            shape[dim] = out
            frac = (pos - low).view(shape)
            x = x.index_select(dim, low) * (1 - frac) + x.index_select(dim, high) * frac
        return x


class TFLiteModule(nn.Module):
    """A single-subgraph float TFLite model as a torch module (see the module's docstring).

    ``TFLiteModule(path_or_bytes)`` parses the file once; weights become float32 buffers.
    ``module(x)`` takes the input in the file's layout (NHWC images: ``(B, H, W, C)``, any
    batch size) and returns a tuple of outputs in the file's layout and order
    (:attr:`output_names`). :meth:`run` is the numpy convenience, under ``torch.inference_mode``.
    """

    def __init__(self, model: bytes | str | os.PathLike) -> None:
        super().__init__()
        _Builder(self, read_model(model)).build()

    input_shape: tuple[int, ...]
    """The file's input shape (batch 1), e.g. ``(1, 128, 128, 3)``."""
    output_names: tuple[str, ...]
    output_shapes: tuple[tuple[int, ...], ...]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if tuple(x.shape[1:]) != self.input_shape[1:]:
            raise ValueError(f"input of shape {tuple(x.shape)}; this model takes (B, {', '.join(map(str, self.input_shape[1:]))})")
        x = _to_torch_layout(x.to(torch.float32))
        if x.dim() == 4 and 0 in x.stride():  # e.g. numpy's frame[None]: torch's convolutions slow down 2x
            x = torch.empty_like(x, memory_format=torch.channels_last).copy_(x)
        values: dict[int, torch.Tensor] = {self._input: x}
        for name, tensor in self.named_buffers(recurse=False):
            values[int(name[1:])] = tensor  # graph constants ("c<index>"), already in torch layout
        for layer, inputs, output, free in zip(self.layers, self._inputs, self._outputs, self._free):
            values[output] = layer(*(values[i] for i in inputs))
            for i in free:
                del values[i]
        return tuple(_to_tflite_layout(values[i]) for i in self._graph_outputs)

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        """Numpy in, numpy out (float32), without autograd bookkeeping."""
        with torch.inference_mode():
            return [y.numpy().copy() for y in self(torch.from_numpy(np.ascontiguousarray(x, np.float32)))]


class _Builder:
    """Reads the flatbuffer and fills a :class:`TFLiteModule` with layers and constants."""

    def __init__(self, module: TFLiteModule, data: bytes) -> None:
        import tflite  # flatbuffer schema bindings (pure Python); only needed to build

        self.tfl, self.module, self.data = tflite, module, data
        self.model = tflite.Model.GetRootAsModel(data, 0)
        if self.model.SubgraphsLength() != 1:
            raise UnsupportedModelError(f"{self.model.SubgraphsLength()} subgraphs (only single-subgraph models)")
        self.graph = self.model.Subgraphs(0)
        self.op_names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
        self.constants: dict[int, np.ndarray] = {}  # tensors known at build time (weights, shapes, axes)

    # ---- tensors ------------------------------------------------------------------------------

    def shape(self, index: int) -> tuple[int, ...]:
        tensor = self.graph.Tensors(index)
        return tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()

    def constant(self, index: int) -> np.ndarray | None:
        """The tensor's data if the file stores it (weights, shapes, axes), else None."""
        if index in self.constants:
            return self.constants[index]
        tensor = self.graph.Tensors(index)
        buffer = self.model.Buffers(tensor.Buffer())
        if buffer is None:
            return None
        if buffer.DataLength():
            raw = buffer.DataAsNumpy().tobytes()
        elif buffer.Offset() > 1:  # data stored after the flatbuffer (files over 2 GB)
            raw = self.data[buffer.Offset() : buffer.Offset() + buffer.Size()]
        else:
            return None
        if tensor.Type() not in _NUMPY_TYPES:
            raise UnsupportedModelError(f"constant tensor {tensor.Name().decode()!r} of TFLite type {tensor.Type()}")
        array = np.frombuffer(raw, _NUMPY_TYPES[tensor.Type()]).reshape(self.shape(index))
        self.constants[index] = array
        return array

    def weight(self, index: int) -> np.ndarray:
        array = self.constant(index)
        if array is None:
            raise UnsupportedModelError(f"tensor {index} must be a constant (weights computed at run time)")
        return array.astype(np.float32)

    def options(self, op, cls):
        table = op.BuiltinOptions()
        options = getattr(self.tfl, cls)()
        if table is not None:
            options.Init(table.Bytes, table.Pos)
        return options

    @staticmethod
    def activation(code: int):
        if code not in _FUSED_ACTIVATIONS:
            raise UnsupportedModelError(f"fused activation {code}")
        return _FUSED_ACTIVATIONS[code]

    # ---- graph --------------------------------------------------------------------------------

    def build(self) -> None:
        g, module = self.graph, self.module
        if g.InputsLength() != 1:
            raise UnsupportedModelError(f"{g.InputsLength()} inputs (only single-input models)")
        for index in (*g.InputsAsNumpy(), *g.OutputsAsNumpy()):
            if g.Tensors(int(index)).Type() != _FLOAT32:
                raise UnsupportedModelError(f"graph input/output {g.Tensors(int(index)).Name().decode()!r} is not float32")
        module._input = int(g.Inputs(0))
        module.input_shape = self.shape(module._input)
        module._graph_outputs = tuple(int(i) for i in g.OutputsAsNumpy())
        module.output_names = tuple(g.Tensors(i).Name().decode() for i in module._graph_outputs)
        module.output_shapes = tuple(self.shape(i) for i in module._graph_outputs)
        ops = []  # (index, name, operator, inputs, output) of every operator that runs
        for k in range(g.OperatorsLength()):
            op = g.Operators(k)
            code = self.model.OperatorCodes(op.OpcodeIndex())
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            name = code.CustomCode().decode() if code.CustomCode() else self.op_names.get(builtin, str(builtin))
            if name not in SUPPORTED_OPS:
                raise UnsupportedModelError(
                    f"operator {k} is {name}, which this runner does not implement (supported: {', '.join(SUPPORTED_OPS)})"
                )
            if op.OutputsLength() != 1:
                raise UnsupportedModelError(f"operator {k} ({name}) has {op.OutputsLength()} outputs")
            inputs, output = [int(i) for i in op.InputsAsNumpy()], int(op.Outputs(0))
            if name == "DEQUANTIZE":
                if self.constant(inputs[0]) is None:
                    raise UnsupportedModelError(f"operator {k}: DEQUANTIZE of a run-time tensor")
                if g.Tensors(inputs[0]).Type() != _FLOAT16:
                    raise UnsupportedModelError(f"operator {k}: DEQUANTIZE of TFLite type {g.Tensors(inputs[0]).Type()} (only float16)")
                self.constants[output] = self.weight(inputs[0])  # folded: float16 weights -> float32
                continue
            ops.append((k, name, op, inputs, output))
        # The last operator that reads each run-time tensor: after it the tensor is freed, and
        # that operator may overwrite it (never the graph's input or outputs, nor a constant).
        self.last_use = {i: step for step, (*_, inputs, _) in enumerate(ops) for i in inputs}
        self.keep = {module._input, *module._graph_outputs}
        # RESHAPE may return a view of its input: neither side is ever overwritten.
        self.aliased = {i for _, name, _, inputs, output in ops if name == "RESHAPE" for i in (inputs[0], output)}
        layers, module._inputs, module._outputs, module._free = [], [], [], []
        run_time_constants: dict[int, torch.Tensor] = {}
        for step, (_, name, op, inputs, output) in enumerate(ops):
            self.step = step  # read by dies_here()
            layer, data_inputs = getattr(self, "_" + name.lower())(op, inputs, output)
            for i in data_inputs:  # constant operands of ADD / MUL / CONCATENATION
                if i not in run_time_constants and self.constant(i) is not None:
                    run_time_constants[i] = self.broadcastable(i, self.shape(output))
            layers.append(layer)
            module._inputs.append(tuple(data_inputs))
            module._outputs.append(output)
            module._free.append(tuple({i for i in data_inputs if self.last_use[i] == step and i not in self.keep}))
        module.layers = nn.ModuleList(layers)
        for i, tensor in run_time_constants.items():
            module.register_buffer(f"c{i}", tensor)

    def dies_here(self, index: int) -> bool:
        """True when the operator being built may overwrite this tensor: its last reader, and
        the tensor is neither the graph's input or output, a constant, nor a view of another."""
        return (
            self.last_use.get(index) == self.step
            and index not in self.keep
            and index not in self.aliased
            and self.constant(index) is None
        )

    def broadcastable(self, index: int, out_shape: Sequence[int]) -> torch.Tensor:
        """A constant operand in torch layout: rank-4 results want NCHW, so a lower-rank constant
        (e.g. per-channel) is first given the result's rank, NumPy-style, then permuted."""
        array = self.weight(index)
        if len(out_shape) == 4:
            array = _to_torch_layout(torch.from_numpy(array.reshape((1,) * (4 - array.ndim) + array.shape))).numpy()
        return torch.from_numpy(np.ascontiguousarray(array))

    # ---- one method per operator: (layer, run-time inputs) ------------------------------------

    def _conv_2d(self, op, inputs, output):
        o = self.options(op, "Conv2DOptions")
        weight = self.weight(inputs[1])  # OHWI
        in_shape = self.shape(inputs[0])
        groups = in_shape[3] // weight.shape[3]
        return self._conv(op, inputs, weight.transpose(0, 3, 1, 2), groups, o), [inputs[0]]

    def _depthwise_conv_2d(self, op, inputs, output):
        o = self.options(op, "DepthwiseConv2DOptions")
        weight = self.weight(inputs[1])  # 1, H, W, C*multiplier; output channel c*m + j reads channel c
        in_channels = self.shape(inputs[0])[3]
        if weight.shape[3] % in_channels:
            raise UnsupportedModelError(f"DEPTHWISE_CONV_2D with {weight.shape[3]} outputs for {in_channels} channels")
        return self._conv(op, inputs, weight.transpose(3, 0, 1, 2), in_channels, o), [inputs[0]]

    def _conv(self, op, inputs, weight, groups, o):
        bias = self.weight(inputs[2]) if len(inputs) > 2 and inputs[2] >= 0 else np.zeros(weight.shape[0], np.float32)
        stride, dilation = (o.StrideH(), o.StrideW()), (o.DilationHFactor(), o.DilationWFactor())
        pads = _window_padding(o.Padding(), self.shape(inputs[0])[1:3], weight.shape[2:], stride, dilation)
        return _Conv(torch.from_numpy(np.ascontiguousarray(weight)), torch.from_numpy(bias), stride, dilation, pads, groups, self.activation(o.FusedActivationFunction()))

    def _convolution2dtransposebias(self, op, inputs, output):
        padding, stride_w, stride_h = struct.unpack("<3i", op.CustomOptionsAsNumpy().tobytes()[:12])
        weight = self.weight(inputs[1])  # OHWI
        _, in_h, in_w, _ = self.shape(inputs[0])
        _, k_h, k_w, _ = weight.shape
        if padding == 1:  # kTfLitePaddingSame
            pad_h, pad_w = max(0, k_h - (in_h - 1) % stride_h - 1), max(0, k_w - (in_w - 1) % stride_w - 1)
        elif padding == 2:  # kTfLitePaddingValid
            pad_h = pad_w = 0
        else:
            raise UnsupportedModelError(f"Convolution2DTransposeBias with padding {padding}")
        out_hw = (stride_h * (in_h - 1) + k_h - pad_h, stride_w * (in_w - 1) + k_w - pad_w)
        layer = _TransposeConv(
            torch.from_numpy(np.ascontiguousarray(weight.transpose(3, 0, 1, 2))),  # in, out, H, W
            torch.from_numpy(self.weight(inputs[2])),
            (stride_h, stride_w),
            (pad_h // 2, pad_w // 2),
            out_hw,
        )
        return layer, [inputs[0]]

    def _pool(self, op, inputs, kind):
        o = self.options(op, "Pool2DOptions")
        size, kernel, stride = self.shape(inputs[0])[1:3], (o.FilterHeight(), o.FilterWidth()), (o.StrideH(), o.StrideW())
        pads = _window_padding(o.Padding(), size, kernel, stride)
        divisor = None
        if kind == "avg" and any(pads):
            ones = F.pad(torch.ones(1, 1, *size), pads)
            divisor = F.avg_pool2d(ones, kernel, stride, divisor_override=1)
        return _Pool(kind, kernel, stride, pads, self.activation(o.FusedActivationFunction()), divisor), [inputs[0]]

    def _max_pool_2d(self, op, inputs, output):
        return self._pool(op, inputs, "max")

    def _average_pool_2d(self, op, inputs, output):
        return self._pool(op, inputs, "avg")

    def _binary(self, kind, options, op, inputs, output):
        out_shape = self.shape(output)
        targets = [n for n, i in enumerate(inputs) if self.dies_here(i) and self.shape(i) == out_shape and inputs.count(i) == 1]
        activation = self.activation(self.options(op, options).FusedActivationFunction())
        return _Binary(kind, activation, targets[0] if targets else None), inputs

    def _add(self, op, inputs, output):
        return self._binary("add", "AddOptions", op, inputs, output)

    def _mul(self, op, inputs, output):
        return self._binary("mul", "MulOptions", op, inputs, output)

    def _unary(self, name, inputs):
        out_of_place, in_place = _UNARY[name]
        return _Unary(in_place if self.dies_here(inputs[0]) else out_of_place), [inputs[0]]

    def _relu(self, op, inputs, output):
        return self._unary("RELU", inputs)

    def _relu6(self, op, inputs, output):
        return self._unary("RELU6", inputs)

    def _logistic(self, op, inputs, output):
        return self._unary("LOGISTIC", inputs)

    def _tanh(self, op, inputs, output):
        return self._unary("TANH", inputs)

    def _hard_swish(self, op, inputs, output):
        return self._unary("HARD_SWISH", inputs)

    def _pad(self, op, inputs, output):
        paddings = self.constant(inputs[1])
        if paddings is None:
            raise UnsupportedModelError("PAD with run-time paddings")
        rows = [paddings[i] for i in (_TORCH_TO_TFL_AXIS if len(paddings) == 4 else range(len(paddings)))]
        pads = tuple(int(v) for row in reversed(rows) for v in row)  # F.pad: last dimension first
        return _Pad(pads), [inputs[0]]

    def _reshape(self, op, inputs, output):
        in_shape, out_shape = self.shape(inputs[0]), self.shape(output)
        keep_batch = bool(in_shape) and bool(out_shape) and in_shape[0] == out_shape[0] == 1
        return _Reshape(out_shape, keep_batch), [inputs[0]]

    def _concatenation(self, op, inputs, output):
        o = self.options(op, "ConcatenationOptions")
        rank = len(self.shape(output))
        axis = o.Axis() % rank
        dim = _TFL_TO_TORCH_AXIS[axis] if rank == 4 else axis
        return _Concat(dim, self.activation(o.FusedActivationFunction())), inputs

    def _mean(self, op, inputs, output):
        axes = self.constant(inputs[1])
        if axes is None:
            raise UnsupportedModelError("MEAN with run-time axes")
        rank = len(self.shape(inputs[0]))
        dims = sorted({int(a) % rank for a in np.atleast_1d(axes)})
        return _Mean(dims, bool(self.options(op, "ReducerOptions").KeepDims()), rank), [inputs[0]]

    def _resize_bilinear(self, op, inputs, output):
        size = self.constant(inputs[1])
        if size is None:
            raise UnsupportedModelError("RESIZE_BILINEAR with a run-time size")
        o = self.options(op, "ResizeBilinearOptions")
        return _ResizeBilinear([int(v) for v in size], bool(o.AlignCorners()), bool(o.HalfPixelCenters())), [inputs[0]]


__all__ = ["SUPPORTED_OPS", "TFLiteModule", "UnsupportedModelError", "WeightsError", "read_model"]
