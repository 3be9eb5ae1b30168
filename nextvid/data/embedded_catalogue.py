"""What the embedded default holds (docs/benchmarks.md): its four labelled benchmarks, the samples
per class at each scale, and the pretraining mixture; the constants every part of the build shares."""

from __future__ import annotations

from dataclasses import dataclass

from nextvid.data import synth

# Bump whenever a change alters any written byte or label; it is part of every file name and info JSON.
GENERATOR_VERSION = 1
FPS = 8  # synthetic clips: the paper samples 4 fps, i.e. a frame step of 2 here
SIZE = synth.SIZE
TRAIN_END, VAL_START = 0.70, 0.75  # each real video: train backgrounds from [0, 70%), val from [75%, 100%)
REAL_WINDOW_S, REAL_MIN_FRAMES = 8.0, 32  # real corpus clips: 8 s windows (half overlapping), >= 32 frames


@dataclass(frozen=True)
class Benchmark:
    name: str
    mirrors: str
    tests: str
    classes: tuple[str, ...]
    frames: int  # 1: a still image, written as PNG
    uid: int  # part of every sample's seed

    @property
    def is_image(self) -> bool:
        return self.frames == 1


FMNIST_CLASSES = (
    "t-shirt_top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle_boot",
)
BENCHMARKS = (
    Benchmark("images", "IN1K", "object class from a still image (image path)", FMNIST_CLASSES, 1, 1),
    Benchmark("appearance", "K400", "object class in a video with motion as nuisance", FMNIST_CLASSES, 32, 2),
    Benchmark("motion", "SSv2", "motion pattern; object class random: needs time", synth.MOTIONS, 32, 3),
    Benchmark(
        "motion_sequence",
        "Diving48",
        "ordered pair of motions over a clip twice as long: needs temporal order",
        tuple(synth.sequence_name(p) for p in synth.SEQUENCES),
        64,
        4,
    ),
)
# samples per class (train, val)
SCALES: dict[str, dict[str, tuple[int, int]]] = {
    "default": {"images": (200, 50), "appearance": (100, 40), "motion": (125, 50), "motion_sequence": (80, 30)},
    "smoke": {"images": (4, 2), "appearance": (3, 2), "motion": (3, 2), "motion_sequence": (2, 1)},
    # 10x the training samples, 2.5-4x val (one standard error ~1 point at 25 %): at the default size the
    # attentive probe itself is starved (docs/benchmarks.md, "More training images for the probe")
    "large": {"images": (2000, 200), "appearance": (1000, 100), "motion": (1250, 125), "motion_sequence": (800, 75)},
}
# pretraining sources and weights, by their role in the paper's mixture [paper Table 6, docs/method.md §4]
MIXTURE = (
    ("real", 0.50, "InternVid 0.20 + in-house 0.32: uncurated real footage"),
    ("images", 0.25, "ImageNet-1K 0.25: still images"),
    ("appearance", 0.10, "K400 0.18 + SSv2 0.05: the probe benchmarks' training splits (0.25 together)"),
    ("motion", 0.10, "K400 0.18 + SSv2 0.05: the probe benchmarks' training splits (0.25 together)"),
    ("motion_sequence", 0.05, "K400 0.18 + SSv2 0.05: the probe benchmarks' training splits (0.25 together)"),
)
