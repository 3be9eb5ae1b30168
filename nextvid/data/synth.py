"""Moving Fashion-MNIST objects over real backgrounds: the label-carrying part of the embedded default.

A `Trajectory` gives, per frame, the object's centre, size and rotation; the motion benchmarks'
labels are decided only by how it changes over time (direction of translation, zoom, rotation
sense, and for sequences the order of two primitives), never by the object, its colour or where it
starts. Every random choice comes from the `numpy.random.Generator` passed in, so a sample is a pure
function of its seed. Image coordinates: x to the right, y down, angles in degrees with positive
= clockwise on screen.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

SIZE = 144  # written frame side: V-JEPA's eval resize (128 * 256/224 = 146) then a 128 centre crop
LO, HI = 32.0, 112.0  # object centres stay here, well inside the central 128 x 128 crop
SPRITE_RES = 112  # the 28 x 28 Fashion-MNIST image is upsampled 4x once, then warped per frame

MOTIONS = ("move_left", "move_right", "move_up", "move_down", "zoom_in", "zoom_out", "rotate_cw", "rotate_ccw")
PRIMITIVES = ("move_left", "move_right", "move_up", "move_down")
SEQUENCES = tuple((a, b) for a in PRIMITIVES for b in PRIMITIVES if a != b)  # both orders of every pair
_DIRECTIONS = {"move_left": (-1.0, 0.0), "move_right": (1.0, 0.0), "move_up": (0.0, -1.0), "move_down": (0.0, 1.0)}


@dataclass(frozen=True)
class Trajectory:
    """Per-frame object pose: centre (cx, cy) in pixels, side `size` of the 28-px canvas in pixels, angle."""

    cx: np.ndarray
    cy: np.ndarray
    size: np.ndarray
    angle: np.ndarray

    def __len__(self) -> int:
        return len(self.cx)

    def summary(self) -> dict:
        """First and last pose, rounded: what the per-sample metadata records."""
        pick = lambda a: [round(float(a[0]), 2), round(float(a[-1]), 2)]  # noqa: E731
        return {"cx": pick(self.cx), "cy": pick(self.cy), "size": pick(self.size), "angle": pick(self.angle)}


def sequence_name(pair: tuple[str, str]) -> str:
    return f"{pair[0]}_then_{pair[1]}"


# --- trajectories ---------------------------------------------------------------------------------


def still_pose(rng: np.random.Generator) -> Trajectory:
    """Images benchmark: one large, nearly upright object anywhere in the central region."""
    size = rng.uniform(64, 104)
    return _place(rng, np.zeros(1), np.zeros(1), np.full(1, size), np.full(1, rng.uniform(-20, 20)))


def appearance_trajectory(rng: np.random.Generator, frames: int) -> Trajectory:
    """Appearance benchmark: a nearly upright object drifting in a random direction (motion is a nuisance)."""
    t = np.linspace(0.0, 1.0, frames)
    heading, dist = rng.uniform(0, 2 * np.pi), rng.uniform(0, 40)
    size = rng.uniform(48, 80) * (1 + rng.uniform(-0.1, 0.1) * t)
    angle = rng.uniform(-20, 20) + rng.uniform(-15, 15) * t
    return _place(rng, dist * np.cos(heading) * t, dist * np.sin(heading) * t, size, angle)


def motion_trajectory(motion: str, rng: np.random.Generator, frames: int) -> Trajectory:
    """Motion benchmark: one of `MOTIONS` at constant speed; start angle uniform on the circle so a single
    frame does not reveal rotation, start size overlapping across classes so it does not reveal zoom."""
    t = np.linspace(0.0, 1.0, frames)
    zero = np.zeros(frames)
    angle0 = rng.uniform(0, 360)
    if motion in _DIRECTIONS:
        ux, uy = _DIRECTIONS[motion]
        dist = rng.uniform(40, 64)
        return _place(rng, ux * dist * t, uy * dist * t, np.full(frames, rng.uniform(40, 64)), np.full(frames, angle0))
    if motion in ("zoom_in", "zoom_out"):
        small, ratio = rng.uniform(32, 44), rng.uniform(1.6, 2.0)
        grow = small * ratio**t
        return _place(rng, zero, zero, grow if motion == "zoom_in" else grow[::-1].copy(), np.full(frames, angle0))
    if motion in ("rotate_cw", "rotate_ccw"):
        turn = rng.uniform(120, 240) * (1 if motion == "rotate_cw" else -1)
        return _place(rng, zero, zero, np.full(frames, rng.uniform(40, 64)), angle0 + turn * t)
    raise ValueError(f"unknown motion {motion!r} (choose from {', '.join(MOTIONS)})")


def sequence_trajectory(pair: tuple[str, str], rng: np.random.Generator, frames: int) -> tuple[Trajectory, int]:
    """Motion-sequence benchmark: primitive `pair[0]` then `pair[1]`, switching at a random frame near the
    middle; returns the trajectory and the switch frame. Reversing the order gives the other class, so
    only the temporal order separates e.g. left-then-up from up-then-left."""
    switch = int(rng.integers(frames * 3 // 8, frames * 5 // 8 + 1))  # the corner: frame of the turn
    vx, vy = np.zeros(frames), np.zeros(frames)
    for prim, seg in ((pair[0], slice(1, switch + 1)), (pair[1], slice(switch + 1, frames))):
        ux, uy = _DIRECTIONS[prim]
        speed = rng.uniform(32, 48) / (seg.stop - seg.start)
        vx[seg], vy[seg] = ux * speed, uy * speed
    dx, dy = np.cumsum(vx), np.cumsum(vy)
    traj = _place(rng, dx, dy, np.full(frames, rng.uniform(40, 60)), np.full(frames, rng.uniform(0, 360)))
    return traj, switch


def _place(rng: np.random.Generator, dx, dy, size, angle) -> Trajectory:
    """Shift the relative path by a start point drawn uniformly among those keeping it inside [LO, HI]."""

    def start(d: np.ndarray) -> float:
        lo, hi = LO - d.min(), HI - d.max()
        return float(rng.uniform(lo, hi)) if hi > lo else (lo + hi) / 2

    x0, y0 = start(dx), start(dy)
    return Trajectory(x0 + dx, y0 + dy, np.asarray(size, dtype=np.float64), np.asarray(angle, dtype=np.float64))


# --- sprites and rendering ------------------------------------------------------------------------


def random_tint(rng: np.random.Generator) -> tuple[int, int, int]:
    """A saturated, bright colour: the object stands out from most real backgrounds."""
    r, g, b = colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.45, 1.0), rng.uniform(0.75, 1.0))
    return int(r * 255), int(g * 255), int(b * 255)


def make_sprite(image28: np.ndarray, tint: tuple[int, int, int]) -> Image.Image:
    """RGBA sprite: the garment shaded in `tint` (its texture kept as brightness) with a dark outline,
    transparent elsewhere, so it is visible on light and dark backgrounds alike."""
    gray = np.asarray(Image.fromarray(image28).resize((SPRITE_RES, SPRITE_RES), Image.BICUBIC), dtype=np.float32) / 255
    alpha = np.clip((gray - 0.02) / 0.1, 0, 1)
    ring = (
        np.asarray(Image.fromarray((alpha * 255).astype(np.uint8)).filter(ImageFilter.MaxFilter(7)), dtype=np.float32)
        / 255
    )
    shade = 0.35 + 0.65 * gray
    colour = np.asarray(tint, dtype=np.float32)[None, None] * shade[..., None]
    outline = np.full(3, 20.0, dtype=np.float32)
    rgb = colour * alpha[..., None] + outline * (1 - alpha[..., None])
    a = np.maximum(alpha, 0.85 * ring)
    return Image.fromarray(np.dstack([rgb, a * 255]).round().clip(0, 255).astype(np.uint8), "RGBA")


def render(sprite: Image.Image, traj: Trajectory, background: np.ndarray) -> np.ndarray:
    """Composite the sprite along `traj` over `background` (T, H, W, 3) uint8; returns (T, H, W, 3) uint8."""
    if len(background) != len(traj):
        raise ValueError(f"background has {len(background)} frames, trajectory {len(traj)}")
    h, w = background.shape[1:3]
    out = np.empty_like(background)
    for i in range(len(traj)):
        layer = np.asarray(
            sprite.transform((w, h), Image.AFFINE, _inverse_affine(traj, i), resample=Image.BILINEAR), dtype=np.float32
        )
        a = layer[..., 3:] / 255
        bg = background[i].astype(np.float32)
        out[i] = (bg + (layer[..., :3] - bg) * a).round().clip(0, 255).astype(np.uint8)
    return out


def _inverse_affine(traj: Trajectory, i: int) -> tuple[float, ...]:
    """PIL wants output -> input: input = k R(-angle) (out - centre) + sprite centre, k = SPRITE_RES / size."""
    k = SPRITE_RES / traj.size[i]
    th = np.deg2rad(traj.angle[i])
    c, s = np.cos(th) * k, np.sin(th) * k
    cx, cy, half = traj.cx[i], traj.cy[i], SPRITE_RES / 2
    return (c, s, half - c * cx - s * cy, -s, c, half + s * cx - c * cy)
