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

    Boxes are ``(x1, y1, x2, y2)``; returns the indices kept, highest score first.
    """
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1) * (y2 - y1)
    order = scores.argsort(descending=True)
    keep = []
    while order.numel() > 0:
        i = order[0]
        keep.append(i)
        if order.numel() == 1:
            break
        rest = order[1:]
        w = (torch.minimum(x2[i], x2[rest]) - torch.maximum(x1[i], x1[rest])).clamp(min=0)
        h = (torch.minimum(y2[i], y2[rest]) - torch.maximum(y1[i], y1[rest])).clamp(min=0)
        inter = w * h
        iou = inter / (areas[i] + areas[rest] - inter)
        order = rest[iou <= iou_threshold]
    return torch.stack(keep).to(torch.int64)


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
    """HWC image (PIL or ndarray) to a CHW float tensor, as ``torchvision.transforms.functional``."""
    array = np.asarray(pic)
    if array.ndim == 2:
        array = array[:, :, None]
    tensor = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))
    if tensor.dtype == torch.uint8:
        return tensor.float().div(255)
    return tensor.float() if not tensor.is_floating_point() else tensor


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
