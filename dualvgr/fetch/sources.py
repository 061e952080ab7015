"""What an experiment needs from outside, where each piece can be had, and where it goes (plain data).

:data:`SOURCES` is the table of what can be downloaded (name -> URL, expected sha256 or size, what to unpack);
tests point its URLs at a local server. :func:`plan_inputs` reads the experiment's keys and turns each outside
input into an :class:`Input`: downloadable (a source and the paths it fills), by hand (exact instructions and the
path to put each file at), or nothing to fetch (random weights, ``glove: none``, the synthetic data set).

What is downloadable, and why the rest is not:

- ResNet-101 IMAGENET1K_V1 (``features.appearance.weights: imagenet``): torchvision's own weights value gives
  the URL, and its file name carries the first 8 hex digits of the file's sha256 (torchvision's ``check_hash``
  convention), which is checked; it goes where :func:`dualvgr.features.weights.imagenet_weights_path` reads it.
- GloVe 840B 300d: the zip from nlp.stanford.edu, checked by its size (2,176,768,927 bytes; Stanford publishes no
  checksum). The questions stage streams the zip itself (``dualvgr.text.glove``), so nothing is prepared beyond
  it; only when ``questions.glove`` names the ``.txt`` is that one member unpacked.
- MSVD videos: ``YouTubeClips.tar`` from the MSVD corpus' page at UT Austin (no checksum or size published: the
  length the server announces is checked, and the tar must unpack), unpacked into the folder the data stage
  looks in.
- By hand: the MSVD-QA and MSRVTT-QA annotations and MSVD's ``youtube_mapping.txt`` (the dataset authors host
  them on MEGA, which needs a browser or MEGA's client), Hara's Kinetics ResNeXt-101 (a Google Drive folder),
  and the MSR-VTT videos (Microsoft's page no longer serves them).

Data sets are a table too (:data:`DATASET_INPUTS`, keyed by ``dataset.kind``): a kind without an entry gets one
line saying where its files go.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from dualvgr.core.errors import DataError
from dualvgr.core.schema import ExperimentSpec, MotionSpec
from dualvgr.data.annotations import SPLITS, qa_file
from dualvgr.data.layout import MSVD_VIDEO_DIRS, find_msvd_video_dir
from dualvgr.fetch.files import Expected

IMAGENET = "resnet101-imagenet"
GLOVE = "glove-840b-300d"
MSVD_VIDEOS = "msvd-videos"

KINETICS_FOLDER = "https://drive.google.com/drive/folders/1zvl89AgFAApbH0At-gMuZSeQB_LpNP-M"
MSVD_QA_ANNOTATIONS = "https://mega.nz/#!QmxFwBTK!Cs7cByu_Qo42XJOsv0DjiEDMiEm8m69h60caDYnT_PQ"
MSVD_MAPPING = "https://mega.nz/#!QrowUADZ!oFfW_M5wAFsfuFDEJAIa2BeFVHYO0vxit3CMkHFOSfw"
MSRVTT_QA_ANNOTATIONS = "https://mega.nz/#!UnRnyb7A!es4XmqsLxl-B7MP0KAat9VibkH7J_qpKj9NcxLh8aHg"
QA_RELEASE = "github.com/xudejing/video-question-answering"


@dataclass(frozen=True)
class Source:
    """A downloadable file: its URL, what it must be, and which part of it the experiment reads."""

    url: str
    expected: Expected
    member: str | None = None  # a zip's one member the experiment may read instead of the zip
    folder: str | None = None  # a tar's top folder, unpacked where the experiment reads it

    @property
    def file_name(self) -> str:
        return urlsplit(self.url).path.rsplit("/", 1)[-1]


def _torchvision_imagenet() -> Source:
    from dualvgr.features.weights import IMAGENET_WEIGHTS  # imports torch: only when the experiment needs it

    url = IMAGENET_WEIGHTS.url
    prefix = url.rsplit("/", 1)[-1].rsplit(".", 1)[0].rsplit("-", 1)[-1]  # resnet101-<sha256[:8]>.pth
    return Source(url, Expected(sha256=prefix, authority="torchvision's file name carries it"))


# name -> the source, or a function building it on first use (the torchvision entry imports torch).
SOURCES: dict[str, Source | Callable[[], Source]] = {
    IMAGENET: _torchvision_imagenet,
    GLOVE: Source(
        "https://nlp.stanford.edu/data/glove.840B.300d.zip",
        Expected(size=2_176_768_927, authority="the size Stanford's server serves; no checksum is published"),
        member="glove.840B.300d.txt",
    ),
    MSVD_VIDEOS: Source(
        "https://www.cs.utexas.edu/users/ml/clamp/videoDescription/YouTubeClips.tar",
        Expected(authority="no checksum or size is published"),
        folder="YouTubeClips",
    ),
}
Sources = Mapping[str, "Source | Callable[[], Source]"]


def source(sources: Sources, name: str) -> Source:
    entry = sources[name]
    return entry if isinstance(entry, Source) else entry()


@dataclass(frozen=True)
class Input:
    """One thing the experiment reads from outside, as fetch sees it."""

    name: str  # 'appearance weights'
    key: str  # the experiment key that decides where it goes
    targets: tuple[Path, ...] = ()  # what the experiment reads (files, or folders of videos); () = nothing
    source: Source | None = None  # downloadable from here; None = by hand (or nothing)
    download_to: Path | None = None  # the downloaded file (= the target unless it is unpacked)
    instructions: str = ""  # by hand: what to do
    note: str = ""  # said beside the status
    found: Callable[[], bool] | None = field(default=None, compare=False)  # None: every target exists

    @property
    def kind(self) -> str:
        if not self.targets:
            return "nothing"
        return "download" if self.source is not None else "by hand"

    @property
    def unpacks(self) -> bool:
        return self.source is not None and self.download_to not in self.targets

    def present(self) -> bool:
        if self.found is not None:
            return self.found()
        return all(_exists(target) for target in self.targets)

    def missing(self) -> list[Path]:
        return [target for target in self.targets if not _exists(target)]


def _exists(path: Path) -> bool:
    return path.is_file() or (path.is_dir() and any(path.iterdir()))


def _path(value: str) -> Path:
    return Path(value).expanduser().absolute()


# -- backbone weights: keyed by the value of features.<appearance|motion>.weights; anything else is a file path ---


def _imagenet(spec: ExperimentSpec, sources: Sources) -> Input:
    from dualvgr.features.weights import imagenet_weights_path  # follows $TORCH_HOME, as torchvision does

    path = imagenet_weights_path()
    return Input("appearance weights", "features.appearance.weights", (path,), source(sources, IMAGENET), path,
                 note="ResNet-101 IMAGENET1K_V1, the original's pretrained=True")


def _note(key: str, note: str) -> Callable[[ExperimentSpec, Sources], Input]:
    return lambda spec, sources: Input(key.split(".")[1] + " weights", key, note=note)


def _kinetics_file() -> str:
    from dualvgr.features.weights import KINETICS_FILE  # imports torch: only when the experiment names the file

    return KINETICS_FILE


def _kinetics_instructions(path: Path) -> str:
    return (
        f"download {_kinetics_file()} (Kensho Hara's 3D ResNeXt-101 trained on Kinetics) from the Google Drive folder "
        f"{KINETICS_FOLDER} (linked from github.com/kenshohara/video-classification-3d-cnn-pytorch) and put it at "
        f"{path}"
    )


def _kinetics_named(spec: ExperimentSpec, sources: Sources) -> Input:
    default = MotionSpec().weights
    path = _path(default)
    return Input("motion weights", "features.motion.weights", (path,),
                 instructions=_kinetics_instructions(path) + f", then set features.motion.weights: {default}",
                 note="'kinetics' names no file")


def _appearance_file(spec: ExperimentSpec, sources: Sources) -> Input:
    path = _path(spec.features.appearance.weights)
    return Input("appearance weights", "features.appearance.weights", (path,),
                 instructions=f"put your ResNet-101 checkpoint at {path}, or set features.appearance.weights: "
                              f"imagenet for torchvision's IMAGENET1K_V1 file (which fetch downloads)")


def _motion_file(spec: ExperimentSpec, sources: Sources) -> Input:
    path = _path(spec.features.motion.weights)
    if path.name == _kinetics_file():
        instructions = _kinetics_instructions(path)
    else:
        instructions = f"put your 3D ResNeXt-101 checkpoint at {path} (Hara's Kinetics file is {_kinetics_file()})"
    return Input("motion weights", "features.motion.weights", (path,), instructions=instructions,
                 note="no checksum is published; the motion stage checks that it fits the network")


APPEARANCE_WEIGHTS: dict[str, Callable[[ExperimentSpec, Sources], Input]] = {
    "imagenet": _imagenet,
    "random": _note("features.appearance.weights", "random weights: nothing to fetch"),
    "kinetics": _note("features.appearance.weights", "'kinetics' are motion weights, the appearance stage refuses "
                                                     "them: use imagenet or a file"),
}
MOTION_WEIGHTS: dict[str, Callable[[ExperimentSpec, Sources], Input]] = {
    "kinetics": _kinetics_named,
    "random": _note("features.motion.weights", "random weights: nothing to fetch"),
    "imagenet": _note("features.motion.weights", "'imagenet' are appearance weights, the motion stage refuses them: "
                                                 "give the Kinetics file's path"),
}


# -- GloVe -------------------------------------------------------------------------------------------------------


def _glove(spec: ExperimentSpec, sources: Sources) -> Input:
    value = spec.questions.glove
    if value == "none":
        return Input("GloVe", "questions.glove", note="glove: none, the embeddings start at U(-1, 1): nothing to fetch")
    glove = source(sources, GLOVE)
    path = _path(value)
    if path.name == glove.file_name:
        return Input("GloVe", "questions.glove", (path,), glove, path,
                     note="the questions stage streams the zip itself")
    if path.name == glove.member:
        return Input("GloVe", "questions.glove", (path,), glove, path.with_name(glove.file_name),
                     note=f"unpacked from the zip; questions.glove: {Path(value).with_name(glove.file_name)} "
                          f"would be read as it is, without the 5.6 GB text file")
    return Input("GloVe", "questions.glove", (path,),
                 instructions=f"put the file at {path}, or set questions.glove to a path ending in "
                              f"{glove.file_name} or {glove.member} and fetch downloads GloVe 840B 300d there",
                 note=f"fetch downloads only {glove.file_name}")


# -- data sets: keyed by dataset.kind ----------------------------------------------------------------------------


def _annotations(spec: ExperimentSpec, what: str, link: str) -> Input:
    root = _path(spec.dataset.root)
    files = tuple(qa_file(root, split) for split in SPLITS)
    names = ", ".join(path.name for path in files)
    return Input(f"{what} annotations", "dataset.root", files,
                 instructions=f"download the {what} archive from {link} (the link in {QA_RELEASE}'s README; MEGA "
                              f"needs a browser or its own client), unpack it and put {names} in {root}/")


def _msvd_qa(spec: ExperimentSpec, sources: Sources) -> list[Input]:
    dataset = spec.dataset
    root = _path(dataset.root)
    mapping = root / dataset.mapping_file
    videos = source(sources, MSVD_VIDEOS)
    folder = root / (videos.folder if dataset.layout == "auto" else dataset.layout)

    def videos_found() -> bool:
        try:
            find_msvd_video_dir(root, dataset.layout)
        except DataError:
            return False
        return True

    where = "any of " + ", ".join(f"{name}/" for name in MSVD_VIDEO_DIRS) if dataset.layout == "auto" else f"{folder}"
    return [
        _annotations(spec, "MSVD-QA", MSVD_QA_ANNOTATIONS),
        Input("MSVD video mapping", "dataset.mapping_file", (mapping,),
              instructions=f"download youtube_mapping.txt from {MSVD_MAPPING} (the link in {QA_RELEASE}'s README) "
                           f"and put it at {mapping}"),
        Input("MSVD videos", "dataset.root, dataset.layout", (folder,), videos, root / videos.file_name,
              note=f"the data stage looks in {where} under {root}", found=videos_found),
    ]


def _msrvtt_qa(spec: ExperimentSpec, sources: Sources) -> list[Input]:
    root = _path(spec.dataset.root)
    video = root / "video"
    folders = (video / "TrainValVideo", video / "TestVideo")

    def videos_found() -> bool:  # the data stage reads <root>/video/<folder> or <root>/<folder>
        return any(all(_exists(base / f.name) for f in folders) for base in (video, root))

    return [
        _annotations(spec, "MSRVTT-QA", MSRVTT_QA_ANNOTATIONS),
        Input("MSR-VTT videos", "dataset.root", folders, found=videos_found,
              instructions=f"get the MSR-VTT videos (Xu et al., CVPR 2016; Microsoft's download page no longer "
                           f"serves them, so take them from a copy you trust) and put video0.mp4 ... video7009.mp4 "
                           f"(train and val) in {folders[0]}/ and video7010.mp4 ... video9999.mp4 (test) in "
                           f"{folders[1]}/"),
    ]


def _synthetic(spec: ExperimentSpec, sources: Sources) -> list[Input]:
    return [Input("data set", "dataset.kind", note="synthetic: the data stage generates it, nothing to fetch")]


DATASET_INPUTS: dict[str, Callable[[ExperimentSpec, Sources], list[Input]]] = {
    "synthetic": _synthetic,
    "msvd-qa": _msvd_qa,
    "msrvtt-qa": _msrvtt_qa,
}


def plan_inputs(spec: ExperimentSpec, sources: Sources = SOURCES) -> list[Input]:
    """Every outside input of ``spec``: backbone weights, GloVe, then the data set's files."""
    appearance = APPEARANCE_WEIGHTS.get(spec.features.appearance.weights, _appearance_file)
    motion = MOTION_WEIGHTS.get(spec.features.motion.weights, _motion_file)
    kind = spec.dataset.kind
    dataset = DATASET_INPUTS.get(kind)
    if dataset is None:
        data = [Input("data set", "dataset.kind",
                      note=f"fetch knows no sources for dataset.kind '{kind}': put its files under "
                           f"{_path(spec.dataset.root)} as its documentation says")]
    else:
        data = dataset(spec, sources)
    return [appearance(spec, sources), motion(spec, sources), _glove(spec, sources), *data]
