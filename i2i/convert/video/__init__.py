"""Videos through a translate function (:mod:`.stream`), kept stable over time (:mod:`.temporal`),
where their frames go (:mod:`.sinks`) and the options of their encoding (:mod:`.options`). Public as
``i2i.video``."""

from .options import (
           CONTAINERS,
           DEFAULT_CRF,
           VIDEO_EXTENSIONS,
           Timing,
           VideoError,
           VideoOptions,
           VideoStats,
           is_video_file,
           output_suffix,
)
from .stream import convert_video, frame_count, frames_to_video, video_to_frames
from .temporal import TEMPORAL, Stabilizer

__all__ = ["CONTAINERS", "DEFAULT_CRF", "TEMPORAL", "VIDEO_EXTENSIONS", "Stabilizer", "Timing", "VideoError",
           "VideoOptions", "VideoStats", "convert_video", "frame_count", "frames_to_video", "is_video_file",
           "output_suffix", "video_to_frames"]
