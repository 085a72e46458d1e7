"""GIF stage: the chosen frames, cropped around the child's face, as a looping GIF under a byte budget.

The stage takes images and face boxes, not paths (the orchestrator re-reads the chosen frames with
``highlights.media.decode.read_frame_at``), so it can be called and tested on its own::

    info = build_gif([GifFrame(image, box) for image, box in chosen], out_dir / public_gif_name(lesson_id))

Framing: one square crop side for every frame, ``margin`` x the median face side (a child leaning
in looks closer, as in the video), centred on each face and shifted to stay inside the frame (no
black borders), clamped to the frame's shorter side, then resized to one output size.

Budget: the frames get one shared palette (median cut over all frames, no dithering: dithering
turns into noise that LZW compresses badly). Attempts go through the palettes (256, 128, 64
colours) at the largest size, then the same at each smaller size, until the file fits
``max_bytes``; frames are never dropped. Measured on nine noisy 360x360 webcam-like frames
(``bench/gif.py``): about 0.7 / 0.6 / 0.45 MB for 256 / 128 / 64 colours after the light
edge-preserving denoise, 0.95 MB without it.

The written file is read back and checked: frame count, size, loop forever, no transparency.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import imageio.v3 as iio
import numpy as np
from PIL import Image

from highlights.core.boxes import Box
from highlights.files import PUBLIC_MODE, write_bytes_atomic

log = logging.getLogger(__name__)


class GifError(RuntimeError):
    """The GIF could not be built within the budget, or the written file failed its check."""


@dataclass(frozen=True)
class GifFrame:
    image: np.ndarray  # H x W x 3 uint8 RGB, the full frame
    box: Box  # the child's face in that frame


@dataclass(frozen=True)
class GifOptions:
    """How the GIF is framed, timed and squeezed into its budget.

    max_bytes: 1,000,000 — email clients and the campaign tool cope with about 1 MB.
    frame_ms: 1200 ms per frame — long enough to take in a face, short enough that nine smiles
        keep moving (a ~12 s loop); first_frame_ms: 2000 — the best smile lingers (it is also the
        only frame Outlook for Windows shows).
    sizes: output square sides tried in turn, 360 px first (crisp at the snippet's 300 px display
        width, retina included up to 1.2x) down to 160 px.
    palettes: shared-palette sizes tried at each output size, 256 -> 128 -> 64 colours.
    margin: 2.2 — crop side over the median face side: head, hair and a bit of shoulders.
    denoise: a light bilateral filter before quantising: webcam sensor noise costs ~25% of the
        bytes and the filter keeps edges (the smile) sharp.
    """

    max_bytes: int = 1_000_000
    frame_ms: int = 1200
    first_frame_ms: int = 2000
    sizes: tuple[int, ...] = (360, 320, 280, 240, 200, 160)
    palettes: tuple[int, ...] = (256, 128, 64)
    margin: float = 2.2
    denoise: bool = True

    def __post_init__(self) -> None:
        if self.max_bytes <= 0:
            raise ValueError(f"max_bytes must be more than 0, not {self.max_bytes}")
        if self.frame_ms <= 0 or self.first_frame_ms <= 0:
            raise ValueError("frame_ms and first_frame_ms must be more than 0")
        if not self.sizes or min(self.sizes) < 16:
            raise ValueError(f"sizes must be output sides of 16 px or more, not {list(self.sizes)}")
        if not self.palettes or not all(2 <= colours <= 256 for colours in self.palettes):
            raise ValueError(f"palettes must be colour counts from 2 to 256, not {list(self.palettes)}")
        if self.margin <= 0:
            raise ValueError(f"margin must be more than 0, not {self.margin:g}")

    def durations(self, n_frames: int) -> list[int]:
        return [self.first_frame_ms] + [self.frame_ms] * (n_frames - 1)


@dataclass(frozen=True)
class GifInfo:
    path: Path
    width: int
    height: int
    n_frames: int
    bytes: int
    duration_ms: int  # one loop, all frames
    frame_ms: tuple[int, ...]
    palette_colors: int
    crop_side: int  # side of the square cut from the frames, in frame pixels
    encode_s: float


def public_gif_name(lesson_id: str, secret: bytes | str | None = None) -> str:
    """A file name for the public GIF that cannot be guessed from the lesson id.

    With ``secret``: an HMAC-SHA256 of the lesson id (128 bits, URL-safe base64), so reruns of the
    same lesson give the same name and a new secret rotates all names. Without: a random
    ``secrets.token_urlsafe(16)`` (128 bits); the caller stores it in the lesson's result and
    reuses it on reruns (or draws a new one to rotate the link). The lesson id never appears.
    """
    if secret is None:
        return f"{secrets.token_urlsafe(16)}.gif"
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, str(lesson_id).encode(), hashlib.sha256).digest()[:16]
    return f"{base64.urlsafe_b64encode(digest).rstrip(b'=').decode()}.gif"


def crop_side(frames: Sequence[GifFrame], margin: float) -> int:
    """The one crop side used for every frame: ``margin`` x the median face side."""
    sides = [max(b[2] - b[0], b[3] - b[1]) for b in (f.box for f in frames)]
    return max(int(round(float(np.median(sides)) * margin)), 8)


def gif_square(box: Box, side: int, width: int, height: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) in frame pixels of the ``side`` x ``side`` square centred on
    ``box``, shifted to lie inside a ``width`` x ``height`` frame: what :func:`crop_face` cuts
    (``bench/persons.py`` checks it against where the parent is drawn).

    Where the frame is smaller than ``side`` the square shrinks to the frame's shorter side, so
    the crop never holds black borders.
    """
    side = min(side, height, width)
    cx, cy = (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0
    left = int(round(min(max(cx - side / 2.0, 0), width - side)))
    top = int(round(min(max(cy - side / 2.0, 0), height - side)))
    return left, top, left + side, top + side


def crop_face(image: np.ndarray, box: Box, side: int) -> np.ndarray:
    """The square :func:`gif_square` places, cut from ``image``."""
    left, top, right, bottom = gif_square(box, side, image.shape[1], image.shape[0])
    return image[top:bottom, left:right]


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    interpolation = cv2.INTER_AREA if image.shape[0] > size else cv2.INTER_CUBIC
    return cv2.resize(image, (size, size), interpolation=interpolation)


def face_crops(frames: Sequence[GifFrame], size: int, margin: float = GifOptions.margin) -> list[np.ndarray]:
    """The frames framed as in the GIF, ``size`` x ``size`` RGB (also used for report thumbnails)."""
    side = crop_side(frames, margin)
    return [_resize(np.ascontiguousarray(crop_face(f.image, f.box, side)[:, :, :3]), size) for f in frames]


def quantise_shared(frames: Sequence[np.ndarray], colors: int) -> list[np.ndarray]:
    """Map every frame to one shared ``colors``-colour palette (median cut, no dithering).

    The palette is computed on the frames scaled to at most 128 px (fast; scaling averages away
    noise that would otherwise take palette entries), then every frame is mapped to it. Returns
    RGB arrays holding only palette colours, so the GIF writer stores them without loss.
    """
    small = [_resize(f, min(128, f.shape[0])) for f in frames]
    palette = Image.fromarray(np.concatenate(small, axis=0)).quantize(
        colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
    )
    return [
        np.asarray(Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE).convert("RGB"))
        for f in frames
    ]


def encode_gif(frames: Sequence[np.ndarray], durations_ms: Sequence[int]) -> bytes:
    """Encode RGB frames (already quantised) as an opaque GIF that loops forever.

    ``optimize=False`` stops Pillow from turning pixels unchanged since the previous frame into
    transparent ones; ``disposal=1`` keeps each frame fully drawn.
    """
    return iio.imwrite(
        "<bytes>",
        np.stack(frames),
        extension=".gif",
        plugin="pillow",
        duration=list(durations_ms),
        loop=0,
        optimize=False,
        disposal=1,
    )


def check_gif(data: bytes | Path, n_frames: int, size: int, max_bytes: int | None = None) -> None:
    """Raise :class:`GifError` unless the GIF has ``n_frames`` opaque ``size``² frames and loops forever."""
    raw = data.read_bytes() if isinstance(data, Path) else data
    problems = []
    if max_bytes is not None and len(raw) > max_bytes:
        problems.append(f"{len(raw)} bytes > budget {max_bytes}")
    with Image.open(io.BytesIO(raw)) as gif:
        if gif.format != "GIF":
            problems.append(f"format {gif.format}")
        if getattr(gif, "n_frames", 1) != n_frames:
            problems.append(f"{getattr(gif, 'n_frames', 1)} frames, expected {n_frames}")
        if gif.info.get("loop") != 0:
            problems.append(f"loop={gif.info.get('loop')!r}, expected 0 (forever)")
        if gif.size != (size, size):
            problems.append(f"size {gif.size}, expected {(size, size)}")
        for index in range(getattr(gif, "n_frames", 1)):
            gif.seek(index)
            if "transparency" in gif.info or gif.mode in ("RGBA", "PA", "LA"):
                problems.append(f"frame {index} has transparency")
                break
    decoded = iio.imread(raw, index=None, extension=".gif")
    if decoded.shape[0] != n_frames:
        problems.append(f"imageio reads {decoded.shape[0]} frames")
    if problems:
        raise GifError("GIF check failed: " + "; ".join(problems))


def build_gif(frames: Sequence[GifFrame], path: Path | str, options: GifOptions | None = None) -> GifInfo:
    """Write the highlight GIF of ``frames`` (in GIF order) to ``path`` atomically and check it.

    Tries the palettes, then smaller sizes, until the file fits ``options.max_bytes``; raises
    :class:`GifError` when even the smallest size and palette do not fit.
    """
    options = options or GifOptions()
    if not frames:
        raise ValueError("no frames to put in a GIF")
    path = Path(path)
    started = time.perf_counter()
    side = crop_side(frames, options.margin)
    sizes = sorted(options.sizes, reverse=True)
    base = face_crops(frames, sizes[0], options.margin)
    if options.denoise:
        base = [cv2.bilateralFilter(f, 5, 25, 5) for f in base]
    durations = options.durations(len(frames))
    attempts = []
    for size in sizes:
        scaled = base if size == sizes[0] else [_resize(f, size) for f in base]
        for colors in options.palettes:
            data = encode_gif(quantise_shared(scaled, colors), durations)
            attempts.append(f"{size}px/{colors}c={len(data)}B")
            if len(data) <= options.max_bytes:
                write_bytes_atomic(path, data, PUBLIC_MODE)  # the web server reads it
                check_gif(path, len(frames), size, options.max_bytes)
                info = GifInfo(
                    path=path,
                    width=size,
                    height=size,
                    n_frames=len(frames),
                    bytes=len(data),
                    duration_ms=sum(durations),
                    frame_ms=tuple(durations),
                    palette_colors=colors,
                    crop_side=min(side, *(min(f.image.shape[:2]) for f in frames)),
                    encode_s=time.perf_counter() - started,
                )
                log.debug("gif: %s in %d attempt(s), %.2f s", f"{size}px/{colors}c/{len(data)}B", len(attempts), info.encode_s)
                return info
    raise GifError(f"no size/palette fits {options.max_bytes} bytes: {', '.join(attempts)}")
