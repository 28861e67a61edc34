"""What a conversion does before it converts: the jobs (input file -> output path) for an
image or video file, a folder tree or a ``.txt`` list, with every refusal (missing or empty
input, an output inside the input, two inputs onto one output, a name pattern leaving the
output folder) raised before anything is written."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..data.io import IMAGE_EXTENSIONS, is_image_file, scan_images
from .video import VIDEO_EXTENSIONS, is_video_file, output_suffix


@dataclass(frozen=True)
class Job:
    """One file to convert: read ``src``, write ``dst``; ``kind`` image, video, or frames (a
    video's frames as PNGs in the folder ``dst``)."""

    src: Path
    dst: Path
    kind: str = "image"


def is_media_file(path: str | Path) -> bool:
    """An image or a video by its suffix."""
    return is_image_file(path) or is_video_file(path)


MEDIA = ", ".join(IMAGE_EXTENSIONS + VIDEO_EXTENSIONS)


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def list_inputs(src: Path, out: Path, *, allow_inside_input: bool,
                skipped: list[tuple[Path, str]] | None) -> tuple[list[Path], Path]:
    """The input images and videos of a file, a ``.txt`` list or a folder tree, and the folder their
    outputs mirror; refusals (missing, empty, output inside the input) before any write."""
    if src.is_file() and src.suffix.lower() == ".txt":
        files = []
        for n, line in enumerate(src.read_text().splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            p = Path(line) if Path(line).is_absolute() else src.parent / line
            if not is_media_file(p):
                raise ValueError(f"{src}:{n}: '{line}' is not an image or video path ({MEDIA})")
            files.append(p)  # missing files are reported per file at conversion time
        if not files:
            raise FileNotFoundError(f"list '{src}' names no images or videos")
        base = src.parent
    elif src.is_file():
        if not is_media_file(src):
            raise ValueError(f"'{src}' is not an image or video file ({MEDIA}) or a .txt list")
        files, base = [src], src.parent
    else:
        files, left_out = scan_images(src, is_media_file, MEDIA)
        base = src
        if skipped is not None:
            skipped.extend(left_out)
        if not files:
            raise FileNotFoundError(f"folder '{src}' holds no images or videos ({MEDIA})")
        if not allow_inside_input and _inside(out, src):
            raise ValueError(f"output '{out}' is inside the input folder '{src}'; choose another output "
                             "or pass allow_inside_input=True (--allow-inside-input)")
    if not src.is_dir() and not allow_inside_input and out.resolve() in {f.resolve().parent for f in files}:
        # A file or a list: refuse writing among the inputs themselves (next to an input image).
        raise ValueError(f"output '{out}' is the folder of the input files; choose another output "
                         "or pass allow_inside_input=True (--allow-inside-input)")
    return files, base


def _output_name(f: Path, name: str, ext: str | None, kind: str = "image") -> str:
    """The output file name of input ``f`` by the ``name`` pattern; a plain image file name, a
    video file name (``kind`` video) or a folder name (``kind`` frames: ``{ext}`` is empty)."""
    try:
        fname = name.format(stem=f.stem, ext=ext if kind != "image" else ext or f.suffix, suffix=f.suffix)
    except (KeyError, IndexError, ValueError) as e:
        raise ValueError(f"name={name!r} (--name) is not a valid pattern ({e}); use fields {{stem}}, {{ext}}, "
                         "{suffix}") from None
    if Path(fname).name != fname or fname in (".", ".."):
        raise ValueError(f"name={name!r} (--name) gives '{fname}', which is not a plain file name: outputs stay in the "
                         "output folder, mirroring the input's sub-folders; use a pattern without '/' or '..'")
    if kind == "image" and not is_image_file(fname):
        raise ValueError(f"name={name!r} (--name) gives '{fname}', which has no image suffix; include {{ext}}")
    if kind == "video" and Path(fname).suffix.lower() != ext:
        raise ValueError(f"name={name!r} (--name) gives '{fname}' for video '{f.name}', which does not end in {ext}; "
                         "include {ext}")
    return fname


def _check_outputs(jobs: list[Job], files: list[Path], out: Path) -> None:
    """Every output inside ``out``, none overwriting an input or another output."""
    inputs = {f.resolve() for f in files}
    seen: dict[Path, Path] = {}
    for j in jobs:
        d = j.dst.resolve()
        if not _inside(j.dst, out):  # a symbolic link inside the output folder pointing elsewhere
            raise ValueError(f"output '{j.dst}' would be written outside the output folder '{out}' (through a symbolic "
                             "link); "
                             "remove the link or choose another output (nothing was written)")
        if d in inputs:
            raise ValueError(f"output '{j.dst}' would overwrite an input file; choose an output folder outside "
                             "the input")
        if d in seen:
            raise ValueError(f"'{seen[d]}' and '{j.src}' would both be written to '{j.dst}'; "
                             "use name= or ext= (--name, --ext) to tell them apart")
        seen[d] = j.src


def plan_jobs(
    input_path: str | Path,
    output_dir: str | Path,
    *,
    ext: str | None = None,
    name: str = "{stem}{ext}",
    allow_inside_input: bool = False,
    skipped: list[tuple[Path, str]] | None = None,
    video_ext: str | None = None,
    frames_out: bool = False,
) -> list[Job]:
    """The conversion jobs for an image or video file, a folder tree, or a ``.txt`` list of
    image and video paths (one per line, relative to the list's folder or absolute; ``#``
    comments allowed).

    Outputs mirror the input's sub-folders; ``name`` formats the file name from ``{stem}``,
    ``{ext}`` (the output suffix: for images from ``ext`` or the input; for videos from
    ``video_ext`` or :func:`i2i.video.output_suffix`) and ``{suffix}`` (the input's).
    ``frames_out``: each video becomes a folder of PNG frames named by the pattern with an
    empty ``{ext}``.
    Raises before anything is written when the input is missing or empty, when an output
    would overwrite an input or another output, or when ``output_dir`` lies inside the input
    folder (unless ``allow_inside_input``). Entries of a folder tree that are left out (not
    images, broken links, link loops) are appended to ``skipped`` with the reason.
    """
    src, out = Path(input_path), Path(output_dir)
    if not src.exists():
        raise FileNotFoundError(f"input '{src}' does not exist; pass an image or video file, a folder of them or a "
                                ".txt list")
    if ext is not None:
        ext = ext if ext.startswith(".") else "." + ext
        if ext.lower() not in IMAGE_EXTENSIONS:
            raise ValueError(f"ext={ext!r} (--ext) is not a supported image format; use one of "
                             f"{', '.join(IMAGE_EXTENSIONS)}")
    files, base = list_inputs(src, out, allow_inside_input=allow_inside_input, skipped=skipped)
    jobs = []
    for f in files:
        rel = f.relative_to(base).parent if _inside(f, base) and ".." not in f.relative_to(base).parts else Path()
        if not is_video_file(f):
            jobs.append(Job(f, out / rel / _output_name(f, name, ext)))
        elif frames_out:
            jobs.append(Job(f, out / rel / _output_name(f, name, "", "frames"), "frames"))
        else:
            jobs.append(Job(f, out / rel / _output_name(f, name, output_suffix(f, video_ext), "video"), "video"))
    _check_outputs(jobs, files, out)
    return jobs
