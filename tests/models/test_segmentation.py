"""Selfie segmentation in torch (highlights/models/segmentation.py) and the TFLite runner under both models (highlights/models/tflite.py): one-operator
models built here check the semantics the shipped files do not exercise (legacy and
align-corners resizing, depth multipliers, dilation, the transposed convolution's crop) and the
error for an operator it does not implement.

Needs nothing from ../shared: the person is scikit-image's astronaut photo. The reference
figures were measured with mediapipe 1.2.2's ImageSegmenter on the same frame.
"""

from __future__ import annotations

import pickle
import struct

import numpy as np
import pytest

from highlights.models.segmentation import PersonSegmenter, resize_mask
from highlights.models.tflite import TFLiteModule, UnsupportedModelError

# mediapipe 1.2.2 ImageSegmenter on astronaut_frame(): mean of the 640x480 confidence mask, and
# the fraction of pixels >= 0.5.
MEDIAPIPE_MASK = {"square": (0.39962497, 0.39521158854166666), "landscape": (0.41065982, 0.40952473958333335)}


def astronaut_frame() -> np.ndarray:
    """640x480: the astronaut photo (head, orange suit, helmet) on a gray background."""
    photo = pytest.importorskip("skimage.data").astronaut()
    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[0:448, 64:576] = photo[16:464]
    return frame


@pytest.fixture(scope="module", params=["square", "landscape"])
def segmenter(request) -> PersonSegmenter:
    import torch

    torch.set_num_threads(1)
    return PersonSegmenter(request.param)


def test_mask_sizes(segmenter):
    frame = astronaut_frame()
    expected = {"square": (256, 256), "landscape": (144, 256)}[segmenter.variant]
    mask = segmenter.mask(frame)
    assert segmenter.mask_size == expected and mask.shape == expected and mask.dtype == np.float32
    assert 0.0 <= mask.min() and mask.max() <= 1.0
    assert segmenter.mask(frame, full_size=True).shape == (480, 640)
    assert resize_mask(mask, (480, 640)).shape == (480, 640)


def test_mask_covers_the_astronaut_not_the_background(segmenter):
    mask = segmenter.mask(astronaut_frame(), full_size=True)
    assert mask[60:140, 250:330].mean() > 0.95  # face
    assert mask[250:440, 120:400].mean() > 0.95  # orange suit
    assert mask[0:120, 380:430].mean() < 0.05  # studio backdrop beside the shuttle model
    assert mask[452:, :].mean() < 0.1 and mask[:, 600:].mean() < 0.05  # the gray frame around the photo
    mean, covered = MEDIAPIPE_MASK[segmenter.variant]
    assert mask.mean() == pytest.approx(mean, abs=1e-5)
    assert (mask >= 0.5).mean() == pytest.approx(covered, abs=1e-4)


@pytest.mark.parametrize("value", [0, 90, 255])
def test_nobody_on_a_blank_frame(segmenter, value):
    assert segmenter.mask(np.full((480, 640, 3), value, np.uint8)).max() < 0.01


def test_a_batch_gives_each_frame_its_own_mask(segmenter):
    frame = astronaut_frame()
    frames = [frame, np.zeros((200, 300, 3), np.uint8), np.ascontiguousarray(frame[:, ::-1])]
    for batched, single in zip(segmenter.mask_batch(frames), frames):
        np.testing.assert_allclose(batched, segmenter.mask(single), atol=1e-5)


def test_pickles_as_bytes_and_rebuilds(segmenter):
    copy = pickle.loads(pickle.dumps(segmenter))
    frame = astronaut_frame()
    np.testing.assert_array_equal(copy.mask(frame), segmenter.mask(frame))


def test_unknown_variant():
    with pytest.raises(ValueError, match="square, landscape"):
        PersonSegmenter("portrait")


# --------------------------------------------------------------------------- the TFLite runner, on one-operator models


def tiny_model(op: int | str, inputs: list, output_shape: tuple, options=None, custom_options: bytes = b"") -> bytes:
    """A TFLite flatbuffer with one operator. ``op``: a BuiltinOperator code or a custom op's
    name; ``inputs``: the graph input's shape (a tuple) or constant arrays (float32 / int32);
    ``options``: (BuiltinOptions type, function(builder) -> options table)."""
    import flatbuffers
    import tflite

    b = flatbuffers.Builder(1024)
    tensors, op_inputs, buffers, graph_input = [], [], [b""], None
    for item in inputs:
        if isinstance(item, tuple):
            graph_input = len(tensors)
            tensors.append((item, 0, 0))
        else:
            array = np.ascontiguousarray(item)
            buffers.append(array.tobytes())
            tensors.append((array.shape, 2 if array.dtype == np.int32 else 0, len(buffers) - 1))
        op_inputs.append(len(tensors) - 1)
    output = len(tensors)
    tensors.append((output_shape, 0, 0))

    def vector(start, offsets):
        start(b, len(offsets))
        for offset in reversed(offsets):
            b.PrependUOffsetTRelative(offset)
        return b.EndVector()

    def ints(values):
        return b.CreateNumpyVector(np.asarray(values, np.int32))

    buffer_tables = []
    for data in buffers:
        vec = b.CreateByteVector(data) if data else None
        tflite.BufferStart(b)
        if vec:
            tflite.BufferAddData(b, vec)
        buffer_tables.append(tflite.BufferEnd(b))
    tensor_tables = []
    for k, (shape, dtype, buffer) in enumerate(tensors):
        name, shape_vec = b.CreateString(f"t{k}"), ints(shape)
        tflite.TensorStart(b)
        tflite.TensorAddShape(b, shape_vec)
        tflite.TensorAddType(b, dtype)
        tflite.TensorAddBuffer(b, buffer)
        tflite.TensorAddName(b, name)
        tensor_tables.append(tflite.TensorEnd(b))
    option_table = options[1](b) if options else None
    custom = b.CreateByteVector(custom_options) if custom_options else None
    op_in, op_out = ints(op_inputs), ints([output])
    tflite.OperatorStart(b)
    tflite.OperatorAddOpcodeIndex(b, 0)
    tflite.OperatorAddInputs(b, op_in)
    tflite.OperatorAddOutputs(b, op_out)
    if options:
        tflite.OperatorAddBuiltinOptionsType(b, options[0])
        tflite.OperatorAddBuiltinOptions(b, option_table)
    if custom:
        tflite.OperatorAddCustomOptions(b, custom)
    operator = tflite.OperatorEnd(b)
    tensor_vec, operator_vec = vector(tflite.SubGraphStartTensorsVector, tensor_tables), vector(tflite.SubGraphStartOperatorsVector, [operator])
    graph_in, graph_out = ints([graph_input]), ints([output])
    tflite.SubGraphStart(b)
    tflite.SubGraphAddTensors(b, tensor_vec)
    tflite.SubGraphAddInputs(b, graph_in)
    tflite.SubGraphAddOutputs(b, graph_out)
    tflite.SubGraphAddOperators(b, operator_vec)
    subgraph = tflite.SubGraphEnd(b)
    custom_code = b.CreateString(op) if isinstance(op, str) else None
    code = tflite.BuiltinOperator.CUSTOM if custom_code else op
    tflite.OperatorCodeStart(b)
    tflite.OperatorCodeAddBuiltinCode(b, code)
    tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
    if custom_code:
        tflite.OperatorCodeAddCustomCode(b, custom_code)
    tflite.OperatorCodeAddVersion(b, 1)
    opcode = tflite.OperatorCodeEnd(b)
    codes, subgraphs = vector(tflite.ModelStartOperatorCodesVector, [opcode]), vector(tflite.ModelStartSubgraphsVector, [subgraph])
    buffer_vec = vector(tflite.ModelStartBuffersVector, buffer_tables)
    tflite.ModelStart(b)
    tflite.ModelAddVersion(b, 3)
    tflite.ModelAddOperatorCodes(b, codes)
    tflite.ModelAddSubgraphs(b, subgraphs)
    tflite.ModelAddBuffers(b, buffer_vec)
    b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def test_an_unsupported_operator_is_named_when_the_model_is_built():
    import tflite

    model = tiny_model(tflite.BuiltinOperator.SOFTMAX, [(1, 4, 4, 2)], (1, 4, 4, 2))
    with pytest.raises(UnsupportedModelError, match=r"operator 0 is SOFTMAX, which this runner does not implement \(supported: ADD, "):
        TFLiteModule(model)
    with pytest.raises(UnsupportedModelError, match="MaxPoolingWithArgmax2D"):
        TFLiteModule(tiny_model("MaxPoolingWithArgmax2D", [(1, 4, 4, 2)], (1, 4, 4, 2)))


def test_inputs_and_outputs_keep_the_files_layout_and_any_batch():
    import tflite

    module = TFLiteModule(tiny_model(tflite.BuiltinOperator.RELU, [(1, 3, 5, 2)], (1, 3, 5, 2)))
    assert module.input_shape == (1, 3, 5, 2) and module.output_shapes == ((1, 3, 5, 2),)
    x = np.random.default_rng(0).normal(size=(4, 3, 5, 2)).astype(np.float32)
    (y,) = module.run(x)
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    assert x.min() < 0  # the caller's array is not overwritten by the in-place activations
    with pytest.raises(ValueError, match=r"this model takes \(B, 3, 5, 2\)"):
        module.run(x[:, :2])


def tflite_resize(x: np.ndarray, size, align_corners: bool, half_pixel_centers: bool) -> np.ndarray:
    """TFLite's reference RESIZE_BILINEAR on one NHWC image (reference_ops.h), in numpy."""

    def axis(n_in, n_out):
        scale = (n_in - 1) / (n_out - 1) if align_corners and n_out > 1 else n_in / n_out
        pos = (np.arange(n_out) + 0.5) * scale - 0.5 if half_pixel_centers else np.arange(n_out) * scale
        low = np.maximum(np.floor(pos), 0).astype(int)
        high = np.minimum(np.ceil(pos), n_in - 1).astype(int)
        return low, high, pos - low

    (y0, y1, fy), (x0, x1, fx) = axis(x.shape[1], size[0]), axis(x.shape[2], size[1])
    fy, fx = fy[None, :, None, None], fx[None, None, :, None]
    top = x[:, y0][:, :, x0] * (1 - fx) + x[:, y0][:, :, x1] * fx
    bottom = x[:, y1][:, :, x0] * (1 - fx) + x[:, y1][:, :, x1] * fx
    return top * (1 - fy) + bottom * fy


@pytest.mark.parametrize(("align_corners", "half_pixel_centers"), [(False, True), (True, False), (False, False)])
@pytest.mark.parametrize("size", [(7, 10), (2, 3)])
def test_resize_bilinear_modes(align_corners, half_pixel_centers, size):
    import tflite

    def options(b):
        tflite.ResizeBilinearOptionsStart(b)
        tflite.ResizeBilinearOptionsAddAlignCorners(b, align_corners)
        tflite.ResizeBilinearOptionsAddHalfPixelCenters(b, half_pixel_centers)
        return tflite.ResizeBilinearOptionsEnd(b)

    model = tiny_model(
        tflite.BuiltinOperator.RESIZE_BILINEAR, [(1, 4, 5, 3), np.array(size, np.int32)], (1, *size, 3),
        options=(tflite.BuiltinOptions.ResizeBilinearOptions, options),
    )
    x = np.random.default_rng(1).normal(size=(2, 4, 5, 3)).astype(np.float32)
    (y,) = TFLiteModule(model).run(x)
    np.testing.assert_allclose(y, tflite_resize(x, size, align_corners, half_pixel_centers), atol=1e-5)


def test_depthwise_convolution_with_a_depth_multiplier_and_dilation():
    import tflite

    def options(b):
        tflite.DepthwiseConv2DOptionsStart(b)
        tflite.DepthwiseConv2DOptionsAddPadding(b, tflite.Padding.SAME)
        tflite.DepthwiseConv2DOptionsAddStrideW(b, 1)
        tflite.DepthwiseConv2DOptionsAddStrideH(b, 1)
        tflite.DepthwiseConv2DOptionsAddDepthMultiplier(b, 2)
        tflite.DepthwiseConv2DOptionsAddDilationWFactor(b, 2)
        tflite.DepthwiseConv2DOptionsAddDilationHFactor(b, 2)
        return tflite.DepthwiseConv2DOptionsEnd(b)

    rng = np.random.default_rng(2)
    weight = rng.normal(size=(1, 3, 2, 6)).astype(np.float32)  # 3 channels x multiplier 2, a 3x2 kernel
    bias = rng.normal(size=6).astype(np.float32)
    model = tiny_model(
        tflite.BuiltinOperator.DEPTHWISE_CONV_2D, [(1, 6, 7, 3), weight, bias], (1, 6, 7, 6),
        options=(tflite.BuiltinOptions.DepthwiseConv2DOptions, options),
    )
    x = rng.normal(size=(1, 6, 7, 3)).astype(np.float32)
    (y,) = TFLiteModule(model).run(x)
    # TFLite: output channel c * multiplier + j reads input channel c; SAME with the dilated
    # kernel (5 rows, 3 columns): 2 rows above, 1 column left (the odd pixel goes after).
    padded = np.pad(x[0], ((2, 2), (1, 1), (0, 0)))
    expected = np.tile(bias, (6, 7, 1))
    for fy in range(3):
        for fx in range(2):
            patch = padded[fy * 2 : fy * 2 + 6, fx * 2 : fx * 2 + 7]
            expected += np.repeat(patch, 2, axis=2) * weight[0, fy, fx]
    np.testing.assert_allclose(y[0], expected, atol=1e-5)


def test_mediapipes_transposed_convolution_crops_as_its_kernel():
    """Convolution2DTransposeBias, SAME, stride 2, 3x3 kernel on 4x5: MediaPipe's loop
    (transpose_conv_bias.cc) writes output row ``in_y * 2 - pad // 2 + filter_y``."""
    rng = np.random.default_rng(3)
    weight = rng.normal(size=(2, 3, 3, 4)).astype(np.float32)  # OHWI
    bias = rng.normal(size=2).astype(np.float32)
    options = struct.pack("<3i", 1, 2, 2)  # TfLiteTransposeConvParams: padding SAME, stride_w, stride_h
    pad_h, pad_w = max(0, 3 - (4 - 1) % 2 - 1), max(0, 3 - (5 - 1) % 2 - 1)
    out_h, out_w = 2 * 3 + 3 - pad_h, 2 * 4 + 3 - pad_w
    model = tiny_model("Convolution2DTransposeBias", [(1, 4, 5, 4), weight, bias], (1, out_h, out_w, 2), custom_options=options)
    x = rng.normal(size=(1, 4, 5, 4)).astype(np.float32)
    (y,) = TFLiteModule(model).run(x)
    expected = np.tile(bias, (out_h, out_w, 1)).astype(np.float64)
    for iy in range(4):
        for ix in range(5):
            for fy in range(3):
                for fx in range(3):
                    oy, ox = iy * 2 - pad_h // 2 + fy, ix * 2 - pad_w // 2 + fx
                    if 0 <= oy < out_h and 0 <= ox < out_w:
                        expected[oy, ox] += weight[:, fy, fx] @ x[0, iy, ix]
    assert y.shape == (1, out_h, out_w, 2)
    np.testing.assert_allclose(y[0], expected, atol=1e-5)


def test_channel_padding_and_a_mean_without_kept_dimensions():
    import tflite

    paddings = np.array([[0, 0], [1, 0], [0, 2], [0, 3]], np.int32)  # N, H, W, C
    pad = TFLiteModule(tiny_model(tflite.BuiltinOperator.PAD, [(1, 2, 3, 2), paddings], (1, 3, 5, 5)))
    x = np.arange(12, dtype=np.float32).reshape(1, 2, 3, 2)
    np.testing.assert_array_equal(pad.run(x)[0], np.pad(x, paddings))

    def reducer(b):
        tflite.ReducerOptionsStart(b)
        tflite.ReducerOptionsAddKeepDims(b, False)
        return tflite.ReducerOptionsEnd(b)

    mean = TFLiteModule(tiny_model(
        tflite.BuiltinOperator.MEAN, [(1, 2, 3, 2), np.array([1, 2], np.int32)], (1, 2),
        options=(tflite.BuiltinOptions.ReducerOptions, reducer),
    ))
    np.testing.assert_allclose(mean.run(x)[0], x.mean(axis=(1, 2)))
