"""The two torchvision functions facenet-pytorch's MTCNN needs, for machines without torchvision.

The registry's torchvision is a CUDA build that fails to import next to the CPU torch this
project pins, and facenet-pytorch imports it at module level for exactly two functions:
``torchvision.ops.boxes.batched_nms`` and ``torchvision.transforms.functional.to_tensor``.
:func:`install` registers small stand-ins under those module names, and steps aside when a
working torchvision is importable.
"""

from __future__ import annotations

import importlib
import sys
import types

import numpy as np
import torch


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression, same contract as ``torchvision.ops.nms``.

    Boxes are ``(x1, y1, x2, y2)``; a box is dropped when its IoU with a kept, higher-scoring box
    exceeds ``iou_threshold``. Returns the indices kept, highest score first. The loop runs in
    NumPy: MTCNN calls this a dozen times per frame on a few hundred boxes, where per-op torch
    overhead made a torch loop about 5x slower (about 20% of a full-HD detection).
    """
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    coords = boxes.detach().cpu().numpy()
    x1, y1, x2, y2 = coords.T
    areas = (x2 - x1) * (y2 - y1)
    order = np.argsort(-scores.detach().cpu().numpy(), kind="stable")
    keep = []
    while order.size > 0:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = np.maximum(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0)
        h = np.maximum(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0)
        inter = w * h
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = inter / (areas[i] + areas[rest] - inter)
        order = rest[~(iou > iou_threshold)]  # NaN (two empty boxes) keeps, as torchvision does
    return torch.as_tensor(np.asarray(keep, dtype=np.int64), device=boxes.device)


def batched_nms(
    boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float
) -> torch.Tensor:
    """NMS done independently per category ``idxs``, as ``torchvision.ops.boxes.batched_nms``."""
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    # The coordinate trick torchvision uses: offset each category so boxes never overlap across.
    offsets = idxs.to(boxes) * (boxes.max() + 1)
    return nms(boxes + offsets[:, None], scores, iou_threshold)


def to_tensor(pic) -> torch.Tensor:
    """HWC image (PIL or ndarray) to a CHW tensor, as ``torchvision.transforms.functional``:
    uint8 becomes float in [0, 1], other dtypes keep theirs."""
    array = np.asarray(pic)
    if array.ndim == 2:
        array = array[:, :, None]
    tensor = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))
    if tensor.dtype == torch.uint8:
        return tensor.to(torch.get_default_dtype()).div(255)
    return tensor


def _real_torchvision_works() -> bool:
    try:
        importlib.import_module("torchvision.ops.boxes")
        importlib.import_module("torchvision.transforms.functional")
        return True
    except Exception:  # noqa: BLE001 - a broken CUDA build raises RuntimeError, absent ImportError
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        return False


def install() -> bool:
    """Make ``import torchvision.ops.boxes`` and ``...transforms.functional`` work.

    Returns True when the stand-ins were installed, False when a real torchvision is used.
    """
    existing = sys.modules.get("torchvision")
    if existing is not None and getattr(existing, "__highlights_shim__", False):
        return True
    if _real_torchvision_works():
        return False
    root = types.ModuleType("torchvision")
    root.__highlights_shim__ = True
    root.__path__ = []  # a package, so submodule imports resolve through sys.modules
    ops = types.ModuleType("torchvision.ops")
    ops.__path__ = []
    boxes = types.ModuleType("torchvision.ops.boxes")
    boxes.batched_nms = batched_nms
    boxes.nms = nms
    ops.boxes = boxes
    ops.batched_nms = batched_nms
    ops.nms = nms
    transforms = types.ModuleType("torchvision.transforms")
    transforms.__path__ = []
    functional = types.ModuleType("torchvision.transforms.functional")
    functional.to_tensor = to_tensor
    transforms.functional = functional
    root.ops = ops
    root.transforms = transforms
    sys.modules.update(
        {
            "torchvision": root,
            "torchvision.ops": ops,
            "torchvision.ops.boxes": boxes,
            "torchvision.transforms": transforms,
            "torchvision.transforms.functional": functional,
        }
    )
    return True
