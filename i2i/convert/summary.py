"""What a conversion reports: :class:`ConvertSummary` (converted, skipped, failed with reasons,
ignored inputs, videos), the list ``OUTPUT/failed.txt``, and the merge of torchrun shards' summaries."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .. import dist
from ..files import atomic_write_bytes, locked_folder
from .video import VideoStats


@dataclass
class ConvertSummary:
    """Outcome of a conversion: converted outputs, skipped outputs (already there), failed
    inputs with reasons, input entries ignored with reasons (not images, broken links, link
    loops), and the seconds it took. ``planned``: every input this conversion took on, whatever
    became of it (what its ``failed.txt`` speaks for)."""

    converted: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    ignored: list[tuple[Path, str]] = field(default_factory=list)
    seconds: float = 0.0
    videos: list[tuple[Path, VideoStats]] = field(default_factory=list)
    planned: list[Path] = field(default_factory=list)
    metadata: dict[str, int] = field(default_factory=dict)  # "EXIF kept": 3, "IPTC dropped (.png)": 1, ...

    @property
    def frames(self) -> int:
        """Video frames translated."""
        return sum(st.frames for _, st in self.videos)

    @property
    def ok(self) -> bool:
        return not self.failed


def merge_summaries(parts: list[ConvertSummary]) -> ConvertSummary:
    """One summary for the shards of a conversion (lists joined and sorted; the slowest time)."""
    out = ConvertSummary()
    for part in parts:
        out.converted += part.converted
        out.skipped += part.skipped
        out.failed += part.failed
        out.ignored += part.ignored
        for k, n in part.metadata.items():
            out.metadata[k] = out.metadata.get(k, 0) + n
    out.converted.sort()
    out.skipped.sort()
    out.failed.sort()
    out.ignored.sort()
    out.seconds = max((part.seconds for part in parts), default=0.0)
    out.videos = sorted((v for part in parts for v in part.videos), key=lambda v: v[0])
    out.planned = sorted(p for part in parts for p in part.planned)
    return out


def _escape(text: object) -> str:
    r"""One TSV field: backslash, tab, newline and carriage return escaped (``\\``, ``\t``, ``\n``, ``\r``)."""
    return str(text).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _unescape(field: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"t": "\t", "n": "\n", "r": "\r"}.get(m[1], m[1]), field)


def _key(path: str | Path) -> str:
    return os.path.realpath(path)


def write_failures(summary: ConvertSummary, path: str | Path) -> None:
    """The failure list at ``path`` (``OUTPUT/failed.txt``) for ``summary``: one line per input,
    path TAB reason (both escaped as :func:`_escape` says, so a name with a newline stays one
    line): failures, then ignored inputs as ``skipped:``. Lines an earlier list holds for inputs
    this conversion did not take on (``summary.planned``) and that still exist (another run's, into the
    same folder) are kept; those it did take on are replaced by what happened to them now. Rewritten atomically under
    a lock on the folder, so runs writing into one folder at once never drop each other's lines;
    no such file when there is nothing to list."""
    path = Path(path)
    ours = [f"{_escape(p)}\t{_escape(why)}\n" for p, why in summary.failed]
    ours += [f"{_escape(p)}\tskipped: {_escape(why)}\n" for p, why in summary.ignored]
    covered = {_key(p) for p in summary.planned} | {_key(p) for p, _ in summary.failed + summary.ignored}
    with locked_folder(path.parent):
        kept = []
        if path.is_file() and not path.is_symlink():
            for line in path.read_text(errors="replace").split("\n"):  # one line per entry: fields are escaped
                source = _unescape(line.split("\t", 1)[0])
                if line and _key(source) not in covered and os.path.lexists(source):
                    kept.append(line + "\n")
        if kept or ours:
            atomic_write_bytes(path, "".join(kept + ours).encode())
        else:
            path.unlink(missing_ok=True)


def gather(summary: ConvertSummary, output_dir: str | Path) -> ConvertSummary:
    """Under a process group (torchrun): every process's ``summary`` merged into one on every
    process, and ``output_dir/failed.txt`` written once, by rank 0, for the whole conversion."""
    merged = merge_summaries(dist.all_gather_object(summary))
    if dist.rank() == 0:
        write_failures(merged, Path(output_dir) / "failed.txt")
    dist.barrier()
    return merged
