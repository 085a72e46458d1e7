"""Weights loading: a good file loads; a corrupt, truncated, replaced or wrong-task file gives a
WeightsError that names the file."""

from __future__ import annotations

import json
import re

import pytest
import torch

from highlights.models import face_cnn as models
from highlights.models.face_cnn import (
    FaceCNN,
    WeightsError,
    file_sha256,
    load_face_model,
    save_face_model,
)

SMALL = (8, 8, 16, 16)  # a narrow FaceCNN: the loader does not care about width, tests stay fast


@pytest.fixture(scope="module")
def smile_file(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "smile.pt"
    sha = save_face_model(path, FaceCNN(SMALL), "smile", 0.6, data="synthetic")
    return path, sha


def test_good_file_loads_with_meta_threshold_and_version(smile_file):
    path, sha = smile_file
    model = load_face_model("smile", path, expected_sha256=sha)
    assert model.task == "smile" and model.threshold == 0.6 and model.sha256 == sha
    assert model.version == f"smile-{sha[:12]}"
    assert model.meta["data"] == "synthetic" and model.network.widths == SMALL
    assert not model.network.training
    probs = model.probabilities(torch.rand(3, 1, 64, 64))
    assert probs.shape == (3,) and ((probs >= 0) & (probs <= 1)).all()
    assert model.probabilities(torch.rand(0, 1, 64, 64)).shape == (0,)
    # Same weights, same outputs: the file round-trips the network exactly.
    reloaded = load_face_model("smile", path)
    batch = torch.rand(2, 1, 64, 64)
    assert torch.equal(model.probabilities(batch), reloaded.probabilities(batch))


def test_folded_copy_answers_as_the_network_and_leaves_the_model_alone(smile_file):
    """The copy the scorer runs (batch norms folded, channels-last) gives the network's
    probabilities; the model it came from keeps its batch norms and its own weights."""
    path, sha = smile_file
    model = load_face_model("smile", path, expected_sha256=sha)
    with torch.no_grad():  # non-trivial batch-norm statistics, so that folding has work to do
        for module in model.network.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
    batch = torch.rand(5, 1, 64, 64)
    folded = model.folded()
    torch.testing.assert_close(folded.probabilities(batch), model.probabilities(batch), atol=1e-5, rtol=0)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.network.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.network.modules())
    assert folded.version == model.version and folded.threshold == model.threshold
    before = folded.probabilities(batch)
    with torch.no_grad():  # training the model afterwards does not reach the copy
        for parameter in model.network.parameters():
            parameter.mul_(0.7)
    assert torch.equal(folded.probabilities(batch), before)
    import pickle  # the executors send the scorer, and so its models, to workers pickled

    torch.testing.assert_close(pickle.loads(pickle.dumps(folded)).probabilities(batch), before)


def test_missing_file(tmp_path):
    with pytest.raises(WeightsError, match="not found.*nowhere.pt"):
        load_face_model("smile", tmp_path / "nowhere.pt")


def test_corrupt_file(tmp_path, smile_file):
    path = tmp_path / "smile.pt"
    data = bytearray(smile_file[0].read_bytes())
    data[-200:] = b"\xff" * 200  # the zip's central directory
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="cannot be loaded") as error:
        load_face_model("smile", path)
    assert "smile.pt" in str(error.value)


def test_silently_corrupt_weights_are_caught_only_by_the_checksum(tmp_path, smile_file):
    # Bytes flipped inside the tensor data: torch loads such a file without complaint (it does
    # not check the zip CRCs), so only the sha256 stands between it and wrong scores.
    path = tmp_path / "smile.pt"
    data = bytearray(smile_file[0].read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(255 - b for b in data[middle : middle + 64])
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match=r"smile\.pt fail their checksum"):
        load_face_model("smile", path, expected_sha256=smile_file[1])


def test_garbage_file(tmp_path):
    path = tmp_path / "age.pt"
    path.write_bytes(b"this is not a torch file")
    with pytest.raises(WeightsError, match=r"age\.pt.*cannot be loaded"):
        load_face_model("age", path)


def test_truncated_file(tmp_path, smile_file):
    path = tmp_path / "smile_cut.pt"
    path.write_bytes(smile_file[0].read_bytes()[:1000])
    with pytest.raises(WeightsError, match=r"smile_cut\.pt.*cannot be loaded"):
        load_face_model("smile", path)


def test_truncated_file_caught_by_checksum_before_unpickling(tmp_path, smile_file):
    path = tmp_path / "smile.pt"
    path.write_bytes(smile_file[0].read_bytes()[:-10])
    with pytest.raises(WeightsError, match=r"smile\.pt fail their checksum"):
        load_face_model("smile", path, expected_sha256=smile_file[1])


def test_expected_sha256_mismatch(smile_file):
    path, sha = smile_file
    wrong = "0" * 64
    with pytest.raises(WeightsError, match="checksum") as error:
        load_face_model("smile", path, expected_sha256=wrong)
    assert str(path) in str(error.value) and sha[:12] in str(error.value)


def test_wrong_task(smile_file):
    path, sha = smile_file
    with pytest.raises(WeightsError, match=r"smile\.pt holds a 'smile' model, not a 'age' model"):
        load_face_model("age", path, expected_sha256=sha)


def test_wrong_architecture_in_file(tmp_path):
    # meta says one width, the tensors another: a shape error must become a WeightsError.
    path = tmp_path / "smile.pt"
    save_face_model(path, FaceCNN(SMALL), "smile", 0.5)
    payload = torch.load(path, weights_only=True)
    payload["meta"]["widths"] = [16, 16, 32, 32]
    torch.save(payload, path)
    with pytest.raises(WeightsError, match=r"smile\.pt cannot be loaded"):
        load_face_model("smile", path)


@pytest.fixture
def shipped_dir(tmp_path, monkeypatch, smile_file):
    """A stand-in for highlights/models/weights with smile.pt and a checksums.json naming it."""
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "smile.pt").write_bytes(smile_file[0].read_bytes())
    (weights / "checksums.json").write_text(json.dumps({"smile.pt": smile_file[1]}))
    monkeypatch.setattr(models, "WEIGHTS_DIR", weights.resolve())
    monkeypatch.setattr(models, "CHECKSUMS_FILE", weights / "checksums.json")
    return weights


def test_shipped_default_loads_and_is_verified(shipped_dir, smile_file):
    model = load_face_model("smile")
    assert model.path == shipped_dir.resolve() / "smile.pt" and model.sha256 == smile_file[1]


def test_shipped_file_replaced_fails_its_recorded_checksum(shipped_dir):
    torch.manual_seed(1)
    save_face_model(shipped_dir / "smile.pt", FaceCNN(SMALL), "smile", 0.5)  # a valid, other file
    with pytest.raises(WeightsError, match=r"smile\.pt fail their checksum") as error:
        load_face_model("smile")
    assert "retrain or reinstall" in str(error.value)


def test_shipped_checksum_under_another_name_does_not_vouch(shipped_dir, smile_file):
    # checksums.json records smile.pt; an age.pt next to it has no entry and is not checked,
    # but a copy under the recorded name with other bytes is.
    (shipped_dir / "smile.pt").write_bytes(b"x" + smile_file[0].read_bytes())
    with pytest.raises(WeightsError, match="checksum"):
        load_face_model("smile", shipped_dir / "smile.pt")
    assert models.shipped_checksum(shipped_dir / "age.pt") is None


def test_shipped_default_missing_names_the_file(shipped_dir):
    with pytest.raises(WeightsError, match=r"age model weights not found: .*age\.pt"):
        load_face_model("age")


def test_file_sha256_matches_save(smile_file):
    assert file_sha256(smile_file[0]) == smile_file[1]


@pytest.mark.parametrize("content", ["text", "dict", "video"])
def test_a_file_that_is_no_weights_file_is_named_on_one_line_that_says_so(tmp_path, content):
    # Before: "cannot be loaded: 101", "cannot be loaded: 'meta'", or torch's ten lines advising
    # weights_only=False, i.e. running code from the file.
    path = tmp_path / "age.pt"
    if content == "text":
        path.write_text("hello\n")
    elif content == "dict":
        torch.save({"a": 1}, path)
    else:
        path.write_bytes(b"\x00\x00\x00\x20ftypisom" + bytes(range(256)) * 8)  # an MP4's start
    with pytest.raises(WeightsError) as error:
        load_face_model("age", path)
    message = str(error.value)
    assert "\n" not in message and "weights_only" not in message, message
    assert re.search(r"age\.pt cannot be loaded: not a usable weights file of `highlights train` \((UnpicklingError|KeyError)", message), message


def test_a_folder_given_as_weights_is_called_a_folder(tmp_path):
    with pytest.raises(WeightsError, match=r"not found: .* is a folder"):
        load_face_model("age", tmp_path)


def test_a_weights_file_this_user_cannot_read_is_named_on_one_line(tmp_path, monkeypatch):
    # A root-owned 0600 file and a service user: a PermissionError traceback before. (Raised by
    # hand: the tests may run as root, who reads any file.)
    path = tmp_path / "age.pt"
    path.write_bytes(b"x")

    def refuse(_path):
        raise PermissionError(13, "Permission denied", str(_path))

    monkeypatch.setattr(models, "file_sha256", refuse)
    with pytest.raises(WeightsError, match=r"age model weights .*age\.pt cannot be read: Permission denied$"):
        load_face_model("age", path)


def test_a_weights_file_without_its_threshold_is_no_weights_file(tmp_path):
    path = tmp_path / "age.pt"
    torch.save({"state_dict": models.FaceCNN().state_dict(), "meta": {"task": "age"}}, path)
    with pytest.raises(WeightsError, match=r"cannot be loaded: not a usable weights file .*KeyError"):
        load_face_model("age", path)
