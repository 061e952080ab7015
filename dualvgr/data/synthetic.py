"""The embedded demo dataset: synthetic videos in the exact MSVD-QA on-disk format.

Each video shows one to three identical shapes moving in one direction over a background; every attribute is
drawn independently per video, and every video gets the same question templates, so a question's text never
tells its answer: only the video does. Attributes and the question types that ask for them:

- what:  "what color is the shape?"            -> the shapes' colour          (appearance)
- who:   "who is in the video?"                -> the shape (circle, square, triangle) (appearance)
- how:   "how many shapes are there?"          -> one / two / three           (appearance)
- how:   "how does the shape move?"            -> left / right / up / down    (motion)
- when:  "when does this happen?"              -> day / night (background brightness)
- where: "where is the shape?"                 -> sea / forest / desert (background hue)

The answer prior per question type therefore scores about 1/2 to 1/4 per type, and a model that looks at the
video can do much better. Output layout (dualvgr-original.md §1.1): ``video/<name>.avi`` (MJPG, readable by
OpenCV), ``youtube_mapping.txt`` (``<name> vid<k>``) and ``{train,val,test}_qa.json`` with ``answer``, ``id``,
``question``, ``video_id``; QA ids run globally over train, val, test as in the MSVD-QA release.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from dualvgr.core.errors import DataError
from dualvgr.core.schema import SyntheticSpec

COLORS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (50, 80, 230), "yellow": (235, 220, 50)}
SHAPES = ("circle", "square", "triangle")
COUNTS = ("one", "two", "three")
DIRECTIONS = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
TIMES = ("day", "night")
PLACES = {"sea": (40, 110, 170), "forest": (40, 120, 50), "desert": (190, 160, 100)}

# (question type, question text, attribute the answer is)
TEMPLATES = (
    ("what", "what color is the shape?", "color"),
    ("who", "who is in the video?", "shape"),
    ("how", "how many shapes are there?", "count"),
    ("how", "how does the shape move?", "direction"),
    ("when", "when does this happen?", "time"),
    ("where", "where is the shape?", "place"),
    ("what", "what is the color of the shape?", "color"),
    ("who", "who is moving in the video?", "shape"),
)
MARKER = ".dualvgr-synthetic.json"


@dataclass(frozen=True)
class VideoScene:
    name: str
    video_id: int
    color: str
    shape: str
    count: str
    direction: str
    time: str
    place: str
    positions: tuple[tuple[float, float], ...]  # start centres, as fractions of width/height
    speed: float  # pixels per frame


def plan_scenes(config: SyntheticSpec) -> list[VideoScene]:
    """Draw every video's attributes from ``config.seed`` (deterministic, independent attributes)."""
    rng = np.random.default_rng(config.seed)
    scenes = []
    for k in range(1, config.num_videos + 1):
        count = int(rng.integers(1, 4))
        tag = "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"), 11))
        start = int(rng.integers(0, 60))
        positions = tuple(
            (float(rng.uniform(0.3, 0.7)), float(rng.uniform(0.3, 0.7))) for _ in range(count)
        )
        scenes.append(
            VideoScene(
                name=f"{tag}_{start}_{start + max(1, config.frames // max(config.fps, 1))}",
                video_id=k,
                color=str(rng.choice(list(COLORS))),
                shape=str(rng.choice(SHAPES)),
                count=COUNTS[count - 1],
                direction=str(rng.choice(list(DIRECTIONS))),
                time=str(rng.choice(TIMES)),
                place=str(rng.choice(list(PLACES))),
                positions=_spread(positions),
                speed=float(rng.uniform(0.8, 1.4)),
            )
        )
    return scenes


def _spread(positions: tuple[tuple[float, float], ...]) -> tuple[tuple[float, float], ...]:
    """Place several shapes on a diagonal grid so they do not overlap (the count must stay visible)."""
    if len(positions) == 1:
        return positions
    slots = np.linspace(0.25, 0.75, len(positions))
    return tuple((float(slots[i]), float(y if i % 2 else 1 - y)) for i, (_, y) in enumerate(positions))


def render_frames(scene: VideoScene, config: SyntheticSpec) -> np.ndarray:
    """(frames, height, width, 3) uint8 BGR frames of one scene."""
    height, width = config.height, config.width
    base = np.array(PLACES[scene.place], dtype=np.float32)
    if scene.time == "night":
        base = base * 0.3
    rng = np.random.default_rng(scene.video_id)
    texture = rng.normal(0.0, 6.0, size=(height, width, 1)).astype(np.float32)
    background = np.clip(base[None, None, :] + texture, 0, 255).astype(np.uint8)[..., ::-1]  # RGB -> BGR
    radius = max(3, min(width, height) // 6)  # large enough that colour and shape survive global pooling
    dx, dy = DIRECTIONS[scene.direction]
    color = tuple(int(c) for c in COLORS[scene.color][::-1])
    frames = np.empty((config.frames, height, width, 3), dtype=np.uint8)
    travel = scene.speed * config.frames
    for t in range(config.frames):
        frame = background.copy()
        for fx, fy in scene.positions:
            # Start so that the whole path stays inside the frame.
            cx = fx * width + dx * (scene.speed * t - travel / 2)
            cy = fy * height + dy * (scene.speed * t - travel / 2)
            _draw_shape(frame, scene.shape, int(round(cx)), int(round(cy)), radius, color)
        frames[t] = frame
    return frames


def _draw_shape(frame: np.ndarray, shape: str, cx: int, cy: int, radius: int, color: tuple[int, int, int]) -> None:
    if shape == "circle":
        cv2.circle(frame, (cx, cy), radius, color, thickness=-1, lineType=cv2.LINE_AA)
    elif shape == "square":
        cv2.rectangle(frame, (cx - radius, cy - radius), (cx + radius, cy + radius), color, thickness=-1)
    else:
        points = np.array([(cx, cy - radius), (cx - radius, cy + radius), (cx + radius, cy + radius)], np.int32)
        cv2.fillPoly(frame, [points], color, lineType=cv2.LINE_AA)


def write_video(path: Path, frames: np.ndarray, fps: int) -> None:
    height, width = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), float(fps), (width, height))
    if not writer.isOpened():
        raise DataError(f"OpenCV cannot write MJPG video {path}; check the opencv-python-headless install")
    for frame in frames:
        writer.write(frame)
    writer.release()


def split_scenes(scenes: list[VideoScene], config: SyntheticSpec) -> dict[str, list[VideoScene]]:
    """Split by video, as MSVD-QA does: no video appears in two splits."""
    order = np.random.default_rng(config.seed + 1).permutation(len(scenes))
    n_test = max(1, round(len(scenes) * config.test_fraction))
    n_val = max(1, round(len(scenes) * config.val_fraction))
    if n_test + n_val >= len(scenes):
        raise DataError(
            f"dataset.synthetic.num_videos={len(scenes)} is too small for val_fraction={config.val_fraction} "
            f"and test_fraction={config.test_fraction}: no training video would be left"
        )
    test, val, train = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]
    return {name: [scenes[i] for i in sorted(ix)] for name, ix in (("train", train), ("val", val), ("test", test))}


def questions_for(scene: VideoScene, config: SyntheticSpec) -> list[tuple[str, str]]:
    """(question, answer) pairs of one video: the first ``questions_per_video`` templates."""
    attributes = asdict(scene)
    return [(text, attributes[attribute]) for _, text, attribute in TEMPLATES[: config.questions_per_video]]


def generate_dataset(root: Path, config: SyntheticSpec, progress: bool = True) -> dict[str, int]:
    """Write the dataset under ``root`` (replacing an earlier synthetic dataset there); returns split sizes.

    Written into a sibling temporary folder and renamed, so an interrupted run never leaves half a dataset.
    A folder that exists without our marker file is someone's data and is never overwritten.
    """
    root = Path(root)
    if config.questions_per_video > len(TEMPLATES) or config.questions_per_video < 1:
        raise DataError(
            f"dataset.synthetic.questions_per_video must be between 1 and {len(TEMPLATES)}, "
            f"got {config.questions_per_video}"
        )
    if root.exists() and any(root.iterdir()) and not (root / MARKER).is_file():
        raise DataError(
            f"{root} exists and is not a synthetic dataset written by the harness (no {MARKER}); refusing to "
            f"overwrite it. Point dataset.root at an empty or new folder."
        )
    staging = root.with_name(root.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "video").mkdir(parents=True)

    scenes = plan_scenes(config)
    for scene in tqdm(scenes, desc="synthetic videos", unit="video", disable=not progress):
        write_video(staging / "video" / f"{scene.name}.avi", render_frames(scene, config), config.fps)
    mapping = "\n".join(f"{scene.name} vid{scene.video_id}" for scene in scenes)
    (staging / "youtube_mapping.txt").write_text(mapping, encoding="utf-8")  # no final newline, as the release

    sizes, next_id = {}, 0
    for split, members in split_scenes(scenes, config).items():
        items = []
        for scene in members:
            for question, answer in questions_for(scene, config):
                items.append({"answer": answer, "id": next_id, "question": question, "video_id": scene.video_id})
                next_id += 1
        (staging / f"{split}_qa.json").write_text(json.dumps(items), encoding="utf-8")
        sizes[split] = len(items)
    (staging / MARKER).write_text(json.dumps(asdict(config), sort_keys=True), encoding="utf-8")

    if root.exists():
        shutil.rmtree(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    staging.rename(root)
    return sizes
