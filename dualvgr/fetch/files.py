"""What a fetched file must be, and the names and errors every fetch module shares.

:class:`Expected` is a source's promise (sha256, a prefix of it, or a size) with who makes it, said when a check
fails. A file on its way lives under :func:`partial_path` beside its final name, which it gets only once checked.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from pathlib import Path

from dualvgr.core.errors import HarnessError
from dualvgr.core.fingerprint import sha256_file

CHUNK = 1 << 20
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


class FetchError(HarnessError):
    """A download or unpacking step failed; the message says why and what to do."""


@dataclass(frozen=True)
class Expected:
    """What a downloaded file must be, and who says so (said when a check fails)."""

    sha256: str | None = None  # the full hex digest, or a prefix of it
    size: int | None = None  # bytes
    authority: str = ""

    def __post_init__(self) -> None:
        if self.sha256 is not None and (not self.sha256 or any(c not in "0123456789abcdef" for c in self.sha256)):
            raise ValueError(f"sha256 must be lower-case hex digits, got {self.sha256!r}")

    @property
    def needs_digest(self) -> bool:
        return self.sha256 is not None

    @property
    def said_by(self) -> str:
        return f" ({self.authority})" if self.authority else ""

    def describe(self) -> str:
        parts = []
        if self.sha256:
            parts.append(f"sha256 {self.sha256}" if len(self.sha256) == 64 else f"sha256 starting {self.sha256}")
        if self.size is not None:
            parts.append(f"{self.size:,} bytes")
        return (" and ".join(parts) or "the length the server announces") + self.said_by

    def mismatch(self, size: int, digest: str | None) -> str | None:
        """Why a file of ``size`` bytes and sha256 ``digest`` is not this one; None when it is."""
        if self.size is not None and size != self.size:
            return f"it has {size:,} bytes, expected {self.size:,}"
        if self.sha256 and not (digest or "").startswith(self.sha256):
            wanted = self.sha256 if len(self.sha256) == 64 else f"one starting {self.sha256}"
            return f"its sha256 is {digest}, expected {wanted}"
        return None


def partial_path(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


def human_bytes(count: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:,.0f} {unit}" if unit == "bytes" else f"{count:,.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def check_file(path: Path, expected: Expected, *, progress: bool = False) -> str | None:
    """Why the file at ``path`` fails ``expected`` (None when it passes); hashes only when a digest is expected."""
    digest = sha256_file(path, progress=progress) if expected.needs_digest else None
    return expected.mismatch(path.stat().st_size, digest)
