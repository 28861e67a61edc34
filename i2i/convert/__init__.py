"""Conversion: folders, lists, images and videos translated by a function, with nothing lost.

One room for it: :mod:`.options` (:class:`ConvertOptions`, declared once for the CLI, the Python API
and torchrun), :mod:`.plan` (input -> output jobs, every refusal before a write), :mod:`.images`
(decode workers, same-size batches, threaded atomic writes), :mod:`.video` (PyAV streaming),
:mod:`.summary` (:class:`ConvertSummary`, ``failed.txt``, the torchrun merge) and :mod:`.run`
(:func:`convert`). It knows no model: it takes a :data:`TranslateArrays` function, such as
:meth:`i2i.Translator.translate_arrays`.

    summary = convert(translator.translate_arrays, "photos/", "out/", ConvertOptions(ext="png"))
"""

from .images import write_output
from .options import ConvertOptions, image_format
from .plan import Job, plan_jobs
from .run import convert, convert_path, run_jobs
from .summary import ConvertSummary, gather, merge_summaries, write_failures
from .types import TranslateArrays
from .video import VideoOptions, VideoStats

__all__ = ["ConvertOptions", "ConvertSummary", "Job", "TranslateArrays", "VideoOptions", "VideoStats", "convert",
           "convert_path",
           "gather", "image_format", "merge_summaries", "plan_jobs", "run_jobs", "write_failures", "write_output"]
