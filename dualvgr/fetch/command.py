"""``dualvgr fetch``: get every outside input of an experiment that can be downloaded; say how to get the rest.

Fetch is a tool, not a stage: it makes no MLflow run and has no cache entry. What it downloads are the files the
stages read and fingerprint (weights, GloVe, videos); the stages never download on their own, and a missing
input stays an error there that names this command. Each input is reported as it is handled; downloads that
fail do not stop the others, and the command ends with one error line naming every failure (exit status 2).
``--dry-run`` lists what would be done (and how far an earlier, interrupted download got) and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dualvgr.core.schema import ExperimentSpec
from dualvgr.fetch.files import FetchError, human_bytes, partial_path
from dualvgr.fetch.sources import SOURCES, Input, Sources, plan_inputs
from dualvgr.fetch.transfer import download
from dualvgr.fetch.unpack import unpack_folder, unpack_member

_INDENT = " " * 8


@dataclass
class FetchReport:
    """What happened to each input, by name: present, downloaded, resumed, unpacked, by hand, nothing, failed."""

    status: dict[str, str] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def to_do_by_hand(self) -> list[str]:
        return [name for name, status in self.status.items() if status == "by hand"]


def fetch_inputs(
    spec: ExperimentSpec,
    *,
    dry_run: bool = False,
    progress: bool = True,
    experiment: str | None = None,
    sources: Sources = SOURCES,
    out: Callable[[str], None] = print,
    tries: int = 3,
    wait: float = 1.0,
) -> FetchReport:
    """Fetch (or, with ``dry_run``, list) every input of ``spec``; raises :class:`FetchError` if any download failed."""
    report = FetchReport()
    again = f"run `dualvgr fetch -e {experiment}` again (same overrides) to resume" if experiment else (
        "run the same fetch again to resume")
    out(f"[fetch] {'plan for' if dry_run else 'inputs of'} experiment '{spec.name}'" + (" (dry run: nothing is "
        "changed)" if dry_run else ""))
    for item in plan_inputs(spec, sources):
        out(f"[fetch] {item.name} ({item.key})")
        try:
            status = _dry_run(item, out) if dry_run else _fetch(item, out, progress=progress, tries=tries, wait=wait)
        except FetchError as error:
            report.failures[item.name] = str(error)
            status = "failed"
            out(f"{_INDENT}failed: {error}")
        report.status[item.name] = status
    counts = {}
    for status in report.status.values():
        counts[status] = counts.get(status, 0) + 1
    out("[fetch] " + ", ".join(f"{count} {status}" for status, count in counts.items()))
    if report.to_do_by_hand and not dry_run:
        out(f"[fetch] still to do by hand (see above): {', '.join(report.to_do_by_hand)}")
    if report.failures:
        (first, reason), *others = report.failures.items()
        if not others:
            raise FetchError(f"{first}: {reason} ({again})")
        names = ", ".join(report.failures)
        raise FetchError(f"{len(report.failures)} inputs not fetched: {names} (each reason is printed above; "
                         f"{first}: {reason}); {again}")
    return report


def _dry_run(item: Input, out: Callable[[str], None]) -> str:
    if item.kind == "nothing":
        out(f"{_INDENT}{item.note}")
        return "nothing"
    if item.present():
        out(f"{_INDENT}present: {', '.join(map(str, item.targets))}" + (
            " (fetch checks it)" if item.source and not item.unpacks else ""))
        return "present"
    if item.source is None:
        _say_by_hand(item, out)
        return "by hand"
    source, archive = item.source, item.download_to
    if archive.exists():
        out(f"{_INDENT}would check {archive} ({source.expected.describe()})")
    else:
        partial = partial_path(archive)
        got = partial.stat().st_size if partial.exists() else 0
        verb = f"would resume (an earlier download stopped at {human_bytes(got)})" if got else "would download"
        out(f"{_INDENT}{verb} {source.url}")
        out(f"{_INDENT}to {archive}, checked against {source.expected.describe()}")
    if item.unpacks:
        out(f"{_INDENT}then unpack {source.member or source.folder + '/'} to {item.targets[0]} (the archive is kept)")
    if item.note:
        out(f"{_INDENT}{item.note}")
    return "download"


def _fetch(item: Input, out: Callable[[str], None], *, progress: bool, tries: int, wait: float) -> str:
    if item.kind == "nothing":
        out(f"{_INDENT}{item.note}")
        return "nothing"
    if item.source is None:
        if item.present():
            out(f"{_INDENT}present: {', '.join(map(str, item.targets))}")
            return "present"
        _say_by_hand(item, out)
        return "by hand"
    if item.unpacks and item.present():
        out(f"{_INDENT}present: {', '.join(map(str, item.targets))}")
        return "present"
    source, archive = item.source, item.download_to
    log = lambda message: out(f"{_INDENT}{message}")  # noqa: E731
    fetched = download(source.url, archive, source.expected, progress=progress, tries=tries, wait=wait, log=log)
    if fetched.action == "present":
        out(f"{_INDENT}present: {archive} (checked: {source.expected.describe()})")
    else:
        resumed = f", resumed at byte {fetched.resumed_from:,}" if fetched.resumed_from else ""
        out(f"{_INDENT}{fetched.action} {source.url}: {human_bytes(fetched.received)}{resumed}, checked by "
            f"{source.expected.describe()}, now at {archive}")
    if not item.unpacks:
        if item.note:
            out(f"{_INDENT}{item.note}")
        return fetched.action
    target = item.targets[0]
    if source.member:
        size = unpack_member(archive, source.member, target, progress=progress)
    else:
        size = unpack_folder(archive, source.folder, target, progress=progress)
    out(f"{_INDENT}unpacked {source.member or source.folder + '/'} ({human_bytes(size)}) to {target}; "
        f"{archive.name} is no longer needed and may be deleted")
    if item.note:
        out(f"{_INDENT}{item.note}")
    return "unpacked"


def _say_by_hand(item: Input, out: Callable[[str], None]) -> None:
    missing = item.missing()
    out(f"{_INDENT}by hand: {item.instructions}")
    if missing and len(missing) < len(item.targets):
        out(f"{_INDENT}missing: {', '.join(str(Path(path)) for path in missing)}")
    if item.note:
        out(f"{_INDENT}{item.note}")

