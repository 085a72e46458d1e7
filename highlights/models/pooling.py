"""Max pooling as strided maxima: torch's ``MaxPool2d(k, s, ceil_mode=True)``, the same numbers,
faster where MTCNN's P-net runs it (see :func:`strided_max_pool`). Its own module because it
imports torch, which ``highlights.models.detection`` only imports where a detector is built."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def max_pool_size(length: int, kernel: int, stride: int) -> int:
    """Output length of a max pool with ``ceil_mode=True`` (PyTorch's rule: the last window must
    start inside the input)."""
    out = -(-(length - kernel) // stride) + 1
    return out - 1 if (out - 1) * stride >= length else out


def strided_max_pool(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """``F.max_pool2d(x, kernel, stride, ceil_mode=True)``, exactly (a maximum is exact), as the
    elementwise maximum of ``kernel`` strided row slices, then of ``kernel`` column slices of
    that, with ``-inf`` where ceil mode's last window runs past the edge.

    Why: P-net runs over the whole frame at every pyramid level, and there torch's pool is a
    sizeable part of it. Measured 2026-12-02 (one thread, a 384x288 level in channels-last
    memory, as ``detection._normalised`` leaves it): P-net 13-14 -> 11.3 ms; the whole pyramid on
    bench-lesson frames 55.0 -> 46.3 ms, the same boxes. R- and O-net keep
    torch's pool: on their small channels-last crops it is the faster (R-net on 300 crops 31-37
    vs 46-47 ms this way).
    """
    channels_last = x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
    height, width = x.shape[-2:]
    if height < kernel or width < kernel:  # as torch: no window fits
        raise RuntimeError(f"max pool of kernel {kernel}: input {height}x{width} is too small")
    out_h, out_w = max_pool_size(height, kernel, stride), max_pool_size(width, kernel, stride)
    pad_h, pad_w = (out_h - 1) * stride + kernel - height, (out_w - 1) * stride + kernel - width
    if pad_h > 0 or pad_w > 0:
        x = F.pad(x, (0, max(pad_w, 0), 0, max(pad_h, 0)), value=float("-inf"))
    span_h, span_w = (out_h - 1) * stride + 1, (out_w - 1) * stride + 1
    rows = x[..., 0:span_h:stride, :]
    for i in range(1, kernel):
        rows = torch.maximum(rows, x[..., i : i + span_h : stride, :])
    out = rows[..., 0:span_w:stride]
    for j in range(1, kernel):
        out = torch.maximum(out, rows[..., j : j + span_w : stride])
    return out.contiguous(memory_format=torch.channels_last) if channels_last else out


class StridedMaxPool(nn.Module):
    """:func:`strided_max_pool` as a layer, in place of ``nn.MaxPool2d(kernel, stride, ceil_mode=True)``."""

    def __init__(self, kernel: int, stride: int) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return strided_max_pool(x, self.kernel, self.stride)
