"""GloVe rows for the question vocabulary (dualvgr-original.md §1.2 step 9, §1.3, §5 B34).

The original turned ``glove.840B.300d.txt`` into a pickled dict of all 2.2M words with pandas (> 10 GB of RAM), then
built ``row i = glove.get(idx_to_token[i], zeros(300))`` as float32 (V_q, 300). We build the same matrix from:

- ``.txt``: the GloVe text file, streamed once, keeping only the vocabulary's words;
- ``.zip``: the archive as downloaded, streamed with ``zipfile`` (not extracted);
- ``.npy``: a prepared (V_q, D) matrix aligned with the vocabulary (e.g. our ``glove.npy``), shape-checked;
- ``.pkl``: the original's ``glove.840.300d.pkl`` dict, read with a restricted unpickler.

Text parsing rules (each line is ``word v1 ... vD``):

- the word is everything before the last D fields, so words containing spaces (``. . .`` in 840B, which crash
  pandas, B34) are read whole; only lines whose first field starts a vocabulary word are split at all;
- NA-like words (``null``, ``nan``, ``NA``, ``None``, ``N/A``) are ordinary words here. The original's pandas parse
  turned them all into one NaN key, so they got zero rows there (B34): a faithful matrix differs on such rows;
- a word seen twice: the last line wins, as in the original;
- malformed lines (fewer than D + 1 fields, blank, non-float values) are counted and skipped with one warning. Values
  are parsed only on the vocabulary's lines, so a non-float elsewhere goes unnoticed (and unneeded);
- D is inferred from the first lines (300 for 840B) and checked against ``expected_dim`` when given;
- a vocabulary word whose vector holds NaN or an infinity (or a value beyond float32's range) is an error naming
  the file, the line (``.npy``: the row; ``.pkl``: the entry) and the word, in every format.

Values are parsed with ``float`` (correctly rounded) and stored as float32. OOV rows are zero, as the original; the
special tokens ``<NULL>`` and ``<UNK>`` are looked up like any token (they are not GloVe words, so their rows are zero).
``glove: none`` (no source) means the model keeps its U(-1, 1) initialisation; that lives in the model.
"""

from __future__ import annotations

import io
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from itertools import chain, islice
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from dualvgr.core.errors import DataError
from dualvgr.text.original import load_original_glove_dict

GLOVE_FORMATS = (".txt", ".zip", ".npy", ".pkl")
_DIM_PROBE_LINES = 100  # lines read to infer D (majority field count), so a first awkward line cannot mislead it
_READ_BUFFER = 1 << 20
_PROGRESS_EVERY = 20_000  # lines between progress-bar updates (a per-line update costs more than the parse)


class GloveWarning(UserWarning):
    """Malformed lines were skipped while reading a GloVe file."""


@dataclass(frozen=True)
class GloveStats:
    """What loading the matrix found; the stage logs these as metrics."""

    source: str
    format: str  # "txt" | "zip" | "npy" | "pkl"
    dim: int
    vocabulary_size: int
    found: int  # vocabulary rows with a vector (npy: non-zero rows)
    oov: int
    oov_rate: float
    entries_read: int  # lines (txt/zip), dict entries (pkl), rows (npy)
    malformed_lines: int
    duplicate_words: int  # vocabulary words found on more than one line (the last one wins)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class GloveMatrix:
    matrix: np.ndarray  # float32 (V_q, D), row i for vocabulary index i, zero when OOV
    stats: GloveStats


def load_glove(
    source: Path, idx_to_token: Sequence[str], *, expected_dim: int | None = None, progress: bool = False
) -> GloveMatrix:
    """The (V_q, D) float32 GloVe matrix for ``idx_to_token`` (the question vocabulary in index order)."""
    source = Path(source)
    if not source.is_file():
        raise DataError(
            f"GloVe source not found: {source}\n  expected glove.840B.300d.txt, its .zip as downloaded, a prepared "
            f"(V_q, D) .npy or the original glove.840.300d.pkl; fix the path or set glove: none"
        )
    suffix = source.suffix.lower()
    if suffix in (".txt", ".zip"):
        with _open_text(source) as (stream, total_bytes):
            matrix, counts = _parse_lines(
                stream,
                idx_to_token,
                expected_dim=expected_dim,
                total_bytes=total_bytes,
                progress=progress,
                where=source,
            )
    elif suffix == ".npy":
        matrix, counts = _load_npy(source, idx_to_token)
    elif suffix == ".pkl":
        matrix, counts = _load_pickle(source, idx_to_token)
    else:
        raise DataError(f"GloVe source {source} has suffix {suffix!r}, expected one of {GLOVE_FORMATS}")
    _check_dim(matrix.shape[1], expected_dim, source)
    found = counts["found"]
    stats = GloveStats(
        source=str(source),
        format=suffix[1:],
        dim=int(matrix.shape[1]),
        vocabulary_size=len(idx_to_token),
        found=found,
        oov=len(idx_to_token) - found,
        oov_rate=(len(idx_to_token) - found) / len(idx_to_token) if len(idx_to_token) else 0.0,
        entries_read=counts["entries"],
        malformed_lines=counts["malformed"],
        duplicate_words=counts["duplicates"],
    )
    return GloveMatrix(matrix=matrix, stats=stats)


@contextmanager
def _open_text(path: Path) -> Iterator[tuple[io.BufferedIOBase, int]]:
    """(binary line stream, uncompressed size) of a .txt, or of the one text member of a .zip (not extracted)."""
    if path.suffix.lower() == ".txt":
        with open(path, "rb", buffering=_READ_BUFFER) as stream:
            yield stream, path.stat().st_size
        return
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as err:
        raise DataError(f"{path} is not a readable zip archive ({err}); re-download it") from err
    with archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        texts = [info for info in members if info.filename.lower().endswith(".txt")]
        if len(members) != 1 and len(texts) != 1:
            raise DataError(f"{path}: expected one GloVe .txt inside, found {[info.filename for info in members][:10]}")
        member = members[0] if len(members) == 1 else texts[0]
        # ZipExtFile.readline is slow on long lines; a large BufferedReader in front makes line iteration C-speed.
        with io.BufferedReader(archive.open(member), buffer_size=_READ_BUFFER) as stream:
            yield stream, member.file_size


def _check_dim(dim: int, expected_dim: int | None, source: Path) -> None:
    if expected_dim is not None and dim != expected_dim:
        raise DataError(
            f"GloVe source {source} has {dim}-d vectors, expected {expected_dim} (the model's word_dim): "
            f"use glove.840B.300d or change word_dim"
        )


def _parse_lines(
    lines: Iterable[bytes],
    idx_to_token: Sequence[str],
    *,
    expected_dim: int | None,
    total_bytes: int,
    progress: bool,
    where: Path,
) -> tuple[np.ndarray, dict[str, int]]:
    rows = {token.encode("utf-8"): index for index, token in enumerate(idx_to_token)}
    first_fields = {word.split(b" ", 1)[0] for word in rows}  # a vocabulary word's line starts with one of these
    lines = iter(lines)
    probe = list(islice(lines, _DIM_PROBE_LINES))
    dim = _infer_dim(probe, where)
    _check_dim(dim, expected_dim, where)  # before reading gigabytes
    matrix = np.zeros((len(idx_to_token), dim), dtype=np.float32)  # (V_q, D)
    line_of: dict[int, int] = {}  # row -> the line its vector came from (the last one, if the word repeats)
    duplicates = malformed = 0
    bad_examples: list[str] = []
    bar = tqdm(total=total_bytes, unit="B", unit_scale=True, desc="glove", disable=not progress)
    pending_bytes = number = 0
    for number, line in enumerate(chain(probe, lines), start=1):
        pending_bytes += len(line)
        if number % _PROGRESS_EVERY == 0:
            bar.update(pending_bytes)
            pending_bytes = 0
        space = line.find(b" ")
        if line.count(b" ") < dim or space <= 0:
            # Too few fields, or an empty word. (A trailing '\n' is not a field; a blank line has no space.)
            malformed += 1
            if len(bad_examples) < 3:
                bad_examples.append(f"line {number}: {line[:40]!r}...")
            continue
        if line[:space] not in first_fields:
            continue  # not a vocabulary word: skipped without splitting or converting anything
        parts = line.rstrip(b"\r\n ").rsplit(b" ", dim)  # the word may contain spaces: the last D fields are the vector
        row = rows.get(parts[0])
        if row is None:
            continue
        vector = _parse_floats(line[len(parts[0]) + 1 :])
        if vector is None or len(vector) != dim:
            malformed += 1
            if len(bad_examples) < 3:
                bad_examples.append(f"line {number} ({parts[0].decode('utf-8', 'replace')!r}): non-float values")
            continue
        if row in line_of:
            duplicates += 1
        line_of[row] = number
        with np.errstate(over="ignore"):  # beyond float32 becomes inf, which check_finite names below
            matrix[row] = vector
    bar.update(pending_bytes)
    bar.close()
    if malformed:
        warnings.warn(
            f"{where}: skipped {malformed} malformed line(s) of {number} (fewer than {dim + 1} fields or non-float "
            f"values), e.g. {'; '.join(bad_examples)}",
            GloveWarning,
            stacklevel=3,
        )
    check_finite(matrix, where, lambda row: f"line {line_of[row]} ({idx_to_token[row]!r})")
    return matrix, {"found": len(line_of), "entries": number, "malformed": malformed, "duplicates": duplicates}


def _infer_dim(probe: list[bytes], where: Path) -> int:
    """D = the most common field count minus one over the first lines (a word with spaces adds fields)."""
    counts = Counter(line.rstrip(b"\r\n ").count(b" ") for line in probe if line.strip())
    if not counts:
        raise DataError(f"{where}: no GloVe lines found (empty file?)")
    dim, _ = counts.most_common(1)[0]
    if dim < 1:
        raise DataError(f"{where}: first line {probe[0][:60]!r} is not 'word v1 ... vD'")
    return dim


def _parse_floats(text: bytes) -> list[float] | None:
    """The space-separated values, parsed like ``float`` (correctly rounded), or None if one is not a number."""
    try:
        return [float(value) for value in text.split()]
    except ValueError:
        return None


def _load_npy(path: Path, idx_to_token: Sequence[str]) -> tuple[np.ndarray, dict[str, int]]:
    try:
        matrix = np.load(path, allow_pickle=False)
    except (ValueError, EOFError, OSError) as err:
        raise DataError(
            f"prepared GloVe matrix {path} is not a plain numeric .npy file ({err}): rebuild it from "
            f"glove.840B.300d.txt (point questions.glove at the .txt or .zip)"
        ) from err
    expected_rows = len(idx_to_token)
    if not np.issubdtype(matrix.dtype, np.floating):
        raise DataError(
            f"prepared GloVe matrix {path} holds {matrix.dtype} values, expected floating point (float32, as the "
            f"questions stage writes it): it is not a GloVe matrix — rebuild it from glove.840B.300d.txt"
        )
    if matrix.ndim != 2 or matrix.shape[0] != expected_rows:
        raise DataError(
            f"prepared GloVe matrix {path} is {matrix.dtype} {matrix.shape}, expected a float ({expected_rows}, D) "
            f"matrix aligned with the question vocabulary ({expected_rows} tokens, row i = token i): it was built "
            f"for another vocabulary — rebuild it from glove.840B.300d.txt or import the vocabulary it was made for"
        )
    with np.errstate(over="ignore"):  # float64 beyond float32's range becomes inf, which check_finite names
        matrix = matrix.astype(np.float32, copy=False)
    check_finite(matrix, path, lambda row: f"row {row} ({idx_to_token[row]!r})")
    found = int(np.count_nonzero(np.any(matrix != 0, axis=1)))
    return matrix, {"found": found, "entries": expected_rows, "malformed": 0, "duplicates": 0}


def _load_pickle(path: Path, idx_to_token: Sequence[str]) -> tuple[np.ndarray, dict[str, int]]:
    glove = load_original_glove_dict(path)
    dims = {np.shape(vector) for vector in islice(glove.values(), _DIM_PROBE_LINES)}
    if len(dims) != 1 or len(next(iter(dims))) != 1:
        raise DataError(f"{path}: expected 1-d vectors of one length, got shapes {sorted(dims)[:5]}")
    (dim,) = next(iter(dims))
    matrix = np.zeros((len(idx_to_token), dim), dtype=np.float32)  # (V_q, D)
    found = 0
    for row, token in enumerate(idx_to_token):
        vector = glove.get(token)
        if vector is not None:
            if np.shape(vector) != (dim,):
                raise DataError(f"{path}: the vector of {token!r} has shape {np.shape(vector)}, expected ({dim},)")
            with np.errstate(over="ignore"):  # beyond float32 becomes inf, which check_finite names below
                matrix[row] = vector
            found += 1
    check_finite(matrix, path, lambda row: f"entry {_entry(glove, idx_to_token[row])} ({idx_to_token[row]!r})")
    return matrix, {"found": found, "entries": len(glove), "malformed": 0, "duplicates": 0}


def _entry(glove: dict, word: str) -> int:
    """The position of ``word`` in the pickled dict (its insertion order, as the original wrote it)."""
    return next(index for index, key in enumerate(glove) if key == word)


def check_finite(matrix: np.ndarray, source: Path | str, describe: Callable[[int], str]) -> None:
    """Refuse a matrix with a NaN or infinite value, naming the rows (``describe(row)``: where and which word).

    Such a row would be written into the cached glove.npy and only surface much later, as a NaN training
    loss that names neither the file nor the word.
    """
    finite = np.isfinite(matrix)
    bad = np.flatnonzero(~finite.all(axis=1))
    if not len(bad):
        return
    examples = []
    for row in bad[:3]:
        column = int(np.flatnonzero(~finite[row])[0])
        examples.append(f"{describe(int(row))}: value {column + 1} of {matrix.shape[1]} is {matrix[row, column]}")
    raise DataError(
        f"GloVe source {source}: {len(bad)} vocabulary word(s) have a vector with NaN or infinite values (or "
        f"values beyond float32's range), e.g. {'; '.join(examples)}. Such a vector would make the training loss "
        f"NaN: fix or remove those entries, or re-download the file"
    )
