"""dlib's 128-D face descriptor ResNet (``dlib_face_recognition_resnet_model_v1.dat``) in PyTorch.

Why: ``dlib.face_recognition_model_v1`` runs the network with dlib's own matrix code, which the
``dlib-bin`` wheel builds without BLAS: about 95-100 ms per face on one core, the largest CPU cost
of a lesson. The same network in torch (oneDNN convolutions, batches of chips) gives the same
descriptors to float32 rounding in a twentieth of the time (``bench/embedding.py``).

The file is read here, not converted ahead: it stays the only source of the weights (nothing is
derived, cached or shipped). dlib writes a network as nested objects, the outermost layer first
and each layer's own fields after the whole network below it (``dlib/dnn/core.h``):

- ``add_loss_layer``: int version 1, the loss's fields, the network below;
- ``add_layer``: int version (1-2; 2-3 for the layer on the input), the network below (or the
  input layer's fields), the layer's fields, three bools, then the tensors ``x_grad``,
  ``cached_output`` and ``params_grad`` (``grad_final`` and an int ``_sample_expansion_factor``
  on the input's layer), all empty in a saved model but read and skipped whatever their size;
- ``add_tag_layer`` / ``add_skip_layer``: int version 1, the network below. Their ids (``tag1``,
  ``skip2``) are in the C++ type only, so the network's shape must be known to read the file:
  :data:`FACE_RESNET` spells out the ``anet_type`` of dlib's ``face_recognition.cpp``, and every
  layer's version string, sizes and strides in the file are checked against it.

Encodings (``dlib/serialize.h``): an integer is a control byte (bit 7: negative, low 4 bits: the
byte count, 1-8; 0 is ``01 00``) then that many little-endian bytes; a bool is the character
``'0'`` or ``'1'``; a string is its length (an integer) then its bytes; a scalar float is two
integers, an int64 mantissa and an int16 exponent (``mantissa * 2**exponent``, exponents
32000-32002 meaning inf, -inf, NaN: ``dlib/float_details.h``). A tensor (``dlib/cuda/tensor.h``,
version 2) is its num_samples, k, nr, nc as integers then its values as raw little-endian
IEEE float32, so the 5.6M weights are read with one ``np.frombuffer``: no per-float decoding.

Arithmetic follows dlib's CPU code (``dlib/cuda/cpu_dlib.cpp``): convolutions are
cross-correlations with the padding the file records (the stride-2 ones have none), windows of
pooling start at ``-padding`` and fit inside the image here (no padding), and ``add_prev`` adds
tensors of different sizes by reading zeros outside the smaller one: the block of a
downsampling unit (stride-2 convolution without padding) is smaller than the 2x2 average of its
shortcut at 8x8 and 4x4 inputs, and has more channels than it. Each ``affine`` (dlib's batch
norm, folded to a per-channel scale and shift) is folded into the convolution before it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

INPUT_SIZE = 150
"""The network's input: 150x150 RGB chips (``input_rgb_image_sized<150>``)."""
DESCRIPTOR_SIZE = 128


class DlibModelError(ValueError):
    """The file is not the network this module knows (other layers, sizes or versions), or is cut
    short or corrupt."""


# --------------------------------------------------------------------------- the network's shape


@dataclass(frozen=True)
class Node:
    """One layer of a dlib network type, as the C++ template names it.

    ``kind``: ``con``, ``affine``, ``relu``, ``max_pool``, ``avg_pool`` (``size`` 0: the whole
    plane, ``avg_pool_everything``), ``fc`` (no bias), ``add_prev`` / ``tag`` / ``skip`` (with
    their ``tag`` id), ``input_rgb`` and ``loss_metric``. ``outputs``, ``size`` and ``stride`` are
    what the file must say (0 where they do not apply)."""

    kind: str
    outputs: int = 0
    size: int = 0
    stride: int = 0
    tag: int = 0


def _block(outputs: int, stride: int) -> list[Node]:
    """``block<N,affine,stride>`` = affine<con<N,3,3,1,1,relu<affine<con<N,3,3,stride,stride>>>>>,
    outermost first."""
    return [Node("affine"), Node("con", outputs, 3, 1), Node("relu"), Node("affine"), Node("con", outputs, 3, stride)]


def _ares(outputs: int) -> list[Node]:
    """``ares<N>`` = relu<add_prev1<block<N,1,tag1<...>>>>: the block plus its input."""
    return [Node("relu"), Node("add_prev", tag=1), *_block(outputs, 1), Node("tag", tag=1)]


def _ares_down(outputs: int) -> list[Node]:
    """``ares_down<N>`` = relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,2,tag1<...>>>>>>>:
    the stride-2 block plus the 2x2 average of its input."""
    return [Node("relu"), Node("add_prev", tag=2), Node("avg_pool", size=2, stride=2), Node("skip", tag=1),
            Node("tag", tag=2), *_block(outputs, 2), Node("tag", tag=1)]


FACE_RESNET: tuple[Node, ...] = (
    Node("loss_metric"),
    Node("fc", DESCRIPTOR_SIZE),
    Node("avg_pool", size=0, stride=1),
    *_ares_down(256),                                           # alevel0
    *_ares(256), *_ares(256), *_ares_down(256),                 # alevel1
    *_ares(128), *_ares(128), *_ares_down(128),                 # alevel2
    *_ares(64), *_ares(64), *_ares(64), *_ares_down(64),        # alevel3
    *_ares(32), *_ares(32), *_ares(32),                         # alevel4
    Node("max_pool", size=3, stride=2),
    Node("relu"),
    Node("affine"),
    Node("con", 32, 7, 2),
    Node("input_rgb", size=INPUT_SIZE),
)
"""dlib's ``anet_type`` (``tools/python/src/face_recognition.cpp``), outermost layer first:
loss_metric<fc_no_bias<128,avg_pool_everything<alevel0<...alevel4<max_pool<3,3,2,2,relu<affine<
con<32,7,7,2,2,input_rgb_image_sized<150>>>>>>>>>>>>>."""


# --------------------------------------------------------------------------- what the file holds


@dataclass
class Layer:
    """One layer as read, in the order data flows through it (the input first)."""

    kind: str
    tag: int = 0
    weight: np.ndarray | None = None
    """con: (outputs, inputs, rows, cols); fc: (inputs, outputs), dlib's orientation."""
    bias: np.ndarray | None = None
    """con: (outputs,); affine: the shift (beta)."""
    scale: np.ndarray | None = None
    """affine: the per-channel scale (gamma)."""
    size: tuple[int, int] = (0, 0)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    mean_rgb: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """input_rgb: the mean subtracted from each channel (the input is then divided by 256)."""


@dataclass
class DlibNetwork:
    """A dlib network file's layers (input first) and the loss's settings."""

    layers: list[Layer]
    loss: dict[str, float] = field(default_factory=dict)


class _Reader:
    """dlib's serialization primitives over a file's bytes (see the module's docstring)."""

    def __init__(self, data: bytes, name: str) -> None:
        self.data, self.name, self.at = data, name, 0

    def fail(self, what: str) -> DlibModelError:
        return DlibModelError(f"{self.name}: {what} (at byte {self.at})")

    def take(self, count: int) -> bytes:
        if count < 0 or self.at + count > len(self.data):
            raise self.fail("the file ends early")
        chunk = self.data[self.at:self.at + count]
        self.at += count
        return chunk

    def integer(self) -> int:
        control = self.take(1)[0]
        count = control & 0x0F  # bits 4-6 are reserved, bit 7 is the sign
        if not 1 <= count <= 8:
            raise self.fail(f"an integer's control byte 0x{control:02x} is not dlib's")
        value = int.from_bytes(self.take(count), "little")
        return -value if control & 0x80 else value

    def boolean(self) -> bool:
        char = self.take(1)
        if char not in (b"0", b"1"):
            raise self.fail(f"a bool is {char!r}, not '0' or '1'")
        return char == b"1"

    def string(self) -> str:
        return self.take(self.integer()).decode("latin-1")

    def real(self) -> float:
        if self.data[self.at] & 0x70:  # dlib's pre-2013 ASCII floats have these bits set
            raise self.fail("a float in dlib's old text encoding")
        mantissa, exponent = self.integer(), self.integer()
        special = {32000: math.inf, 32001: -math.inf, 32002: math.nan}
        return special[exponent] if exponent in special else math.ldexp(mantissa, exponent)

    def version(self, expected: Sequence[int], what: str) -> int:
        version = self.integer()
        if version not in expected:
            raise self.fail(f"{what} version {version}, not {' or '.join(map(str, expected))}")
        return version

    def label(self, expected: Sequence[str]) -> str:
        label = self.string()
        if label not in expected:
            raise self.fail(f"layer {label!r} where {' or '.join(expected)} was expected")
        return label

    def tensor(self) -> np.ndarray:
        """A ``resizable_tensor``: float32 values, shape (num_samples, k, nr, nc)."""
        self.version((2,), "tensor")
        shape = tuple(self.integer() for _ in range(4))
        if min(shape) < 0:
            raise self.fail(f"a tensor of shape {shape}")
        count = math.prod(shape)
        start = self.at
        self.take(4 * count)  # moves on, and says so if the file is shorter than the tensor
        return np.frombuffer(self.data, dtype="<f4", count=count, offset=start).reshape(shape)

    def alias(self) -> tuple[int, int, int, int]:
        """An ``alias_tensor``: only a shape (a view into the layer's ``params``)."""
        self.version((1,), "alias_tensor")
        return tuple(self.integer() for _ in range(4))  # type: ignore[return-value]


def _split(params: np.ndarray, *shapes: tuple[int, ...]) -> list[np.ndarray]:
    """``params`` cut into consecutive views of these shapes (dlib's alias tensors)."""
    flat, out, at = params.reshape(-1), [], 0
    for shape in shapes:
        count = math.prod(shape)
        out.append(flat[at:at + count].reshape(shape))
        at += count
    if at != flat.size:
        raise DlibModelError(f"a layer's parameters hold {flat.size} values, its parts {at}")
    return out


def _read_details(reader: _Reader, node: Node) -> Layer:
    """One layer's own fields (``dlib/dnn/layers.h``, ``input.h``), checked against ``node``."""
    kind = node.kind
    if kind == "con":
        label = reader.label(("con_4", "con_5", "con_6"))
        params = reader.tensor()
        outputs, rows, cols = reader.integer(), reader.integer(), reader.integer()
        stride = (reader.integer(), reader.integer())
        padding = (reader.integer(), reader.integer())
        filters, biases = reader.alias(), reader.alias()
        for _ in range(4):  # learning rate and weight decay multipliers: training only
            reader.real()
        use_bias = reader.boolean() if label in ("con_5", "con_6") else True
        if label == "con_6" and reader.boolean():
            raise reader.fail("a convolution with a fused relu (con_6 use_relu), which this network does not have")
        if (outputs, rows, cols, stride) != (node.outputs, node.size, node.size, (node.stride, node.stride)):
            raise reader.fail(f"con {outputs} {rows}x{cols} stride {stride}, the network has con {node.outputs} "
                              f"{node.size}x{node.size} stride {node.stride}")
        if not (0 <= padding[0] < rows and 0 <= padding[1] < cols):
            raise reader.fail(f"con padding {padding}")
        if filters[0] != outputs or filters[2:] != (rows, cols) or (use_bias and math.prod(biases) != outputs):
            raise reader.fail(f"con filters {filters} and biases {biases} for {outputs} outputs")
        weight, bias = _split(params, filters, (outputs,) if use_bias else (0,))
        return Layer("con", weight=weight, bias=bias if use_bias else None, size=(rows, cols), stride=stride,
                     padding=padding)
    if kind == "affine":
        label = reader.label(("affine_", "affine_2"))
        params = reader.tensor()
        gamma, beta = reader.alias(), reader.alias()
        mode = reader.integer()
        if label == "affine_2" and reader.boolean():
            raise reader.fail("a disabled affine layer")
        if mode != 0:  # CONV_MODE: one scale and shift per channel
            raise reader.fail(f"affine in mode {mode}, not per channel (0)")
        scale, shift = _split(params, gamma, beta)
        return Layer("affine", scale=scale.reshape(-1), bias=shift.reshape(-1))
    if kind == "relu":
        if reader.label(("relu_", "relu_2")) == "relu_2" and reader.boolean():
            raise reader.fail("a disabled relu")
        return Layer("relu")
    if kind in ("max_pool", "avg_pool"):
        reader.label((f"{kind}_2",))
        rows, cols = reader.integer(), reader.integer()
        stride = (reader.integer(), reader.integer())
        padding = (reader.integer(), reader.integer())
        if (rows, cols, stride) != (node.size, node.size, (node.stride, node.stride)):
            raise reader.fail(f"{kind} {rows}x{cols} stride {stride}, the network has {node.size}x{node.size} "
                              f"stride {node.stride}")
        if padding != (0, 0):  # dlib's windows would then be clipped at the edges; none here
            raise reader.fail(f"{kind} padding {padding}: this network pools without padding")
        return Layer(kind, size=(rows, cols), stride=stride, padding=padding)
    if kind == "fc":
        label = reader.label(("fc_2", "fc_3"))
        outputs, inputs = reader.integer(), reader.integer()
        params = reader.tensor()
        weights, _ = reader.alias(), reader.alias()  # the biases' shape: fc_no_bias has none
        bias_mode = reader.integer()
        for _ in range(4):
            reader.real()
        if label == "fc_3":
            reader.boolean()  # use_bias: fc_no_bias has no biases whatever it says
        if bias_mode != 1 or outputs != node.outputs or weights[:2] != (inputs, outputs):  # 1: FC_NO_BIAS
            raise reader.fail(f"fc {inputs}->{outputs} (weights {weights}), bias mode {bias_mode}: "
                              f"not fc_no_bias<{node.outputs}>")
        (weight,) = _split(params, (inputs, outputs))
        return Layer("fc", weight=weight)
    if kind == "add_prev":
        reader.label(("add_prev_",))
        return Layer("add_prev", tag=node.tag)
    if kind == "input_rgb":
        reader.label(("input_rgb_image_sized",))
        mean = (reader.real(), reader.real(), reader.real())
        rows, cols = reader.integer(), reader.integer()
        if (rows, cols) != (node.size, node.size):
            raise reader.fail(f"input {rows}x{cols}, the network takes {node.size}x{node.size}")
        return Layer("input_rgb", size=(rows, cols), mean_rgb=mean)
    raise reader.fail(f"no reader for a {kind} layer")


def _skip_layer_state(reader: _Reader, on_input: bool, version: int) -> None:
    """The fields ``add_layer`` writes after the layer's own: training state, empty in a model."""
    for _ in range(3):  # this_layer_setup_called, gradient_input_is_stale, get_output_..._disabled
        reader.boolean()
    reader.tensor()  # x_grad
    reader.tensor()  # cached_output
    if on_input:
        reader.tensor()  # grad_final
        if version >= 3:
            reader.integer()  # _sample_expansion_factor
    elif version >= 2:
        reader.tensor()  # params_grad


def read_network(source: bytes | str | os.PathLike, shape: Sequence[Node] = FACE_RESNET) -> DlibNetwork:
    """The layers of a dlib network file whose type is ``shape`` (outermost first), in the order
    data flows through them. Raises :class:`DlibModelError` if the file does not match."""
    if isinstance(source, bytes | bytearray | memoryview):
        data, name = bytes(source), "dlib network"
    else:
        path = Path(source)
        try:
            data, name = path.read_bytes(), path.name
        except OSError as error:
            raise DlibModelError(f"{path}: cannot be read: {error.strerror or type(error).__name__}") from error
    nodes = list(shape)
    if len(nodes) < 3 or nodes[0].kind != "loss_metric" or nodes[-1].kind != "input_rgb":
        raise DlibModelError("a network shape is loss_metric first and input_rgb last")
    reader = _Reader(data, name)
    loss: dict[str, float] = {}
    # The headers, outermost first: each wrapper's version comes before the network below it.
    reader.version((1,), "add_loss_layer")
    if reader.label(("loss_metric_", "loss_metric_2")) == "loss_metric_2":
        loss = {"margin": reader.real(), "distance_threshold": reader.real()}
    versions: list[int] = []
    for node in nodes[1:-2]:
        versions.append(reader.version((1,), node.kind) if node.kind in ("tag", "skip") else reader.version((1, 2), "add_layer"))
    # The innermost layer sits on the input layer: its version, the input's fields, its own.
    first_version = reader.version((2, 3), "add_layer on the input")
    layers = [_read_details(reader, nodes[-1]), _read_details(reader, nodes[-2])]
    _skip_layer_state(reader, on_input=True, version=first_version)
    # Then each layer's own fields, innermost first: the order data flows.
    for node, version in zip(reversed(nodes[1:-2]), reversed(versions)):
        if node.kind in ("tag", "skip"):
            layers.append(Layer(node.kind, tag=node.tag))
            continue
        layers.append(_read_details(reader, node))
        _skip_layer_state(reader, on_input=False, version=version)
    if reader.at != len(data):
        raise reader.fail(f"{len(data) - reader.at} bytes left after the network")
    return DlibNetwork(layers=layers, loss=loss)


# --------------------------------------------------------------------------- the torch module


def _tensor(values: np.ndarray) -> torch.Tensor:
    """A float32 torch copy (the file's arrays are read-only views of its bytes)."""
    return torch.from_numpy(np.array(values, dtype=np.float32))


class _Conv(nn.Module):
    """A convolution with its bias; weights are buffers (inference only, nothing to train)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, stride: tuple[int, int],
                 padding: tuple[int, int]) -> None:
        super().__init__()
        # Channels-last, as the activations: oneDNN's fastest layout on a CPU (about 1.5x at
        # one chip a pass, a few % at 16).
        self.register_buffer("weight", weight.contiguous(memory_format=torch.channels_last))
        self.register_buffer("bias", bias.contiguous())
        self.stride, self.padding = stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)


class _Linear(nn.Module):
    """dlib's ``fc_no_bias``: ``x @ W`` with W (inputs, outputs), kept transposed for torch."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("weight", weight.t().contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.flatten(1), self.weight)


def _add_zero_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's ``add_prev`` of tensors of different sizes: the sum over the larger of each
    dimension, reading zeros outside the smaller tensor (past its channels, its bottom and right
    edges). Never in place."""
    channels, rows, cols = (max(a.shape[i], b.shape[i]) for i in (1, 2, 3))

    def pad(x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, (0, cols - x.shape[3], 0, rows - x.shape[2], 0, channels - x.shape[1]))

    return pad(a) + pad(b)


class DlibFaceResNet(nn.Module):
    """dlib's face descriptor network, from its ``.dat`` file, as a torch module.

    :meth:`forward` takes uint8 RGB chips ``(N, 150, 150, 3)`` (``dlib.get_face_chips``) and
    returns ``(N, 128)`` float32 descriptors: those of ``compute_face_descriptor`` to float32
    rounding (``tests/models/test_dlib_resnet.py`` measures it on real chips).

    The layers run as a list, in the file's order; ``tag`` keeps the running tensor for a later
    ``add_prev`` / ``skip`` of the same id (dlib's ``layer<tagN>`` is the nearest one below, that
    is the latest one run). Weights are buffers: the module is for inference only."""

    def __init__(self, network: DlibNetwork) -> None:
        super().__init__()
        layers = network.layers
        if len(layers) < 2 or layers[0].kind != "input_rgb" or layers[-1].kind != "fc":
            raise DlibModelError("the network must run from an input_rgb layer to an fc layer")
        self.register_buffer("mean", torch.tensor(layers[0].mean_rgb, dtype=torch.float32).view(1, 3, 1, 1))
        self.input_size = layers[0].size
        self.output_size = int(layers[-1].weight.shape[1])  # type: ignore[union-attr]
        self.steps = nn.ModuleList()
        self.plan: list[tuple[str, int]] = []
        """(operation, argument): ``step`` (an index into :attr:`steps`), ``relu``, and ``tag`` /
        ``skip`` / ``add`` (a tag id)."""
        index = 1
        while index < len(layers):
            layer = layers[index]
            if layer.kind == "con":
                weight = _tensor(layer.weight)  # type: ignore[arg-type]
                bias = _tensor(layer.bias) if layer.bias is not None else torch.zeros(weight.shape[0])
                if index + 1 < len(layers) and layers[index + 1].kind == "affine":
                    # affine(con(x)) = gamma * (w * x + b) + beta: one convolution with gamma * w
                    # and gamma * b + beta (the same to float32 rounding, a pass fewer per layer).
                    affine = layers[index + 1]
                    gamma, beta = _tensor(affine.scale), _tensor(affine.bias)  # type: ignore[arg-type]
                    weight, bias = weight * gamma.view(-1, 1, 1, 1), bias * gamma + beta
                    index += 1
                self._step(_Conv(weight, bias, layer.stride, layer.padding))
            elif layer.kind == "relu":
                self.plan.append(("relu", 0))
            elif layer.kind == "max_pool":
                self._step(nn.MaxPool2d(layer.size, layer.stride, layer.padding))
            elif layer.kind == "avg_pool":
                everything = layer.size == (0, 0)  # avg_pool_everything: the mean of each plane
                self._step(nn.AdaptiveAvgPool2d(1) if everything else nn.AvgPool2d(layer.size, layer.stride, layer.padding))
            elif layer.kind in ("tag", "skip", "add_prev"):
                self.plan.append(({"add_prev": "add"}.get(layer.kind, layer.kind), layer.tag))
            elif layer.kind == "fc":
                self._step(_Linear(_tensor(layer.weight)))  # type: ignore[arg-type]
            else:  # an affine without a convolution before it, or a layer this module lacks
                raise DlibModelError(f"no torch counterpart for a {layer.kind} layer here")
            index += 1

    def _step(self, module: nn.Module) -> None:
        self.plan.append(("step", len(self.steps)))
        self.steps.append(module)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> DlibFaceResNet:
        """The network of ``dlib_face_recognition_resnet_model_v1.dat`` (:data:`FACE_RESNET`)."""
        return cls(read_network(path)).eval()

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        """``(N, rows, cols, 3)`` uint8 RGB -> ``(N, 128)`` float32 descriptors."""
        # dlib's input layer: (pixel - mean) / 256 in float32. The chips' own NHWC order, seen as
        # NCHW, is torch's channels-last layout: no copy, and the convolutions' fast layout.
        x = (chips.permute(0, 3, 1, 2).to(torch.float32) - self.mean) / 256.0
        x = x.contiguous(memory_format=torch.channels_last)
        tagged: dict[int, torch.Tensor] = {}

        def shared(t: torch.Tensor) -> bool:  # a tag still holds it: it must not change in place
            return any(t is kept for kept in tagged.values())

        for operation, argument in self.plan:
            if operation == "step":
                x = self.steps[argument](x)
            elif operation == "relu":
                x = x.relu() if shared(x) else x.relu_()
            elif operation == "tag":
                tagged[argument] = x
            elif operation == "skip":
                x = tagged[argument]
            elif operation == "add":
                other = tagged[argument]
                if x.shape != other.shape:
                    x = _add_zero_padded(x, other)
                else:
                    x = x + other if shared(x) else x.add_(other)
        return x

    @torch.inference_mode()
    def descriptors(self, chips: Sequence[np.ndarray], batch_size: int = 16) -> np.ndarray:
        """``(N, 128)`` float32 descriptors of uint8 RGB chips, ``batch_size`` per forward pass,
        on torch's threads as the process set them (``torch.set_num_threads``)."""
        rows, cols = self.input_size
        out = np.zeros((len(chips), self.output_size), np.float32)
        for start in range(0, len(chips), batch_size):
            batch = np.stack([np.asarray(chip) for chip in chips[start:start + batch_size]])
            if batch.dtype != np.uint8 or batch.shape[1:] != (rows, cols, 3):
                raise ValueError(f"chips must be {rows}x{cols} RGB uint8 (dlib.get_face_chips), "
                                 f"not {batch.shape[1:]} {batch.dtype}")
            out[start:start + len(batch)] = self(torch.from_numpy(batch)).numpy()
        return out


__all__ = ["DESCRIPTOR_SIZE", "FACE_RESNET", "INPUT_SIZE", "DlibFaceResNet", "DlibModelError", "DlibNetwork", "Layer",
           "Node", "read_network"]
