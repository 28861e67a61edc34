"""Two unpaired image domains (CycleGAN): ``trainA/ trainB/ testA/ testB/`` or ``A/ B/``; the
``data`` section of unpaired pipelines and the dataset that reads it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from .base import CropDataConfig, DataError, ImageFiles, require_dir
from .io import list_images, to_channels, to_tensor
from .plan import DeviceItem, Source
from .sampling import sample_seed
from .transforms import apply_color, apply_single, draw_color, draw_geometry, paired_transform


@dataclass
class UnpairedDataConfig(CropDataConfig):
    """Unpaired data (:class:`UnpairedDataset`): ``root`` holds ``trainA/ trainB/ testA/ testB/``
    (or ``A/ B/``); B images are drawn at random unless ``serial_batches``."""

    serial_batches: bool = False



def _domain_dirs(root: Path, phase: str) -> tuple[Path, Path]:
    """``root/{phase}A`` + ``root/{phase}B`` when present, else ``root/A`` + ``root/B``."""
    for a, b in ((f"{phase}A", f"{phase}B"), ("A", "B")):
        if (root / a).is_dir() or (root / b).is_dir():
            return root / a, root / b
    raise DataError(
        f"data folder '{root}' has neither {phase}A/ + {phase}B/ nor A/ + B/ sub-folders; "
        "put the images of each domain in its own folder (see datasets/README.md)"
    )


class UnpairedDataset(ImageFiles):
    """Two unpaired image domains for CycleGAN.

    Folders: ``root/trainA`` + ``root/trainB`` (``testA``/``testB`` when ``train`` is
    false), or ``root/A`` + ``root/B``. An epoch has ``max(len(A), len(B))`` items: item
    ``i`` takes A image ``i mod len(A)`` and a B image drawn at random from
    ``(seed, epoch, i)`` (or ``i mod len(B)`` with ``data.serial_batches``), so the pairing is
    reproducible after a resume. Each domain gets its own augmentation draw (geometry and colour).
    Items: ``{"a", "b"}`` float ``(C, H, W)`` in [-1, 1] and ``"name_a"``, ``"name_b"``.
    """

    def __init__(self, root: str | Path, data: UnpairedDataConfig | None = None, *, a_channels: int = 3,
                 b_channels: int = 3,
                 train: bool = True, seed: int = 0) -> None:
        data = data or UnpairedDataConfig()
        self.root = Path(root).expanduser()
        require_dir(self.root, "data folder")
        self.a_dir, self.b_dir = _domain_dirs(self.root, "train" if train else "test")
        a, b = self._list(self.a_dir), self._list(self.b_dir)
        limit = data.max_items if train else None
        self.a_files, self.b_files = self.keep_first(a, limit), self.keep_first(b, limit)
        if self.limited_from is not None:
            self.limited_from = max(len(a), len(b))
        self.a_channels, self.b_channels = a_channels, b_channels
        self.transform = paired_transform(**data.transform_args(), train=train)
        self.color_jitter = data.color_jitter if train else 0.0
        self.serial = data.serial_batches or not train
        self.seed = seed

    @staticmethod
    def _list(folder: Path) -> list[Path]:
        require_dir(folder, "domain folder")
        files = list_images(folder)
        if not files:
            raise DataError(f"domain folder '{folder}' holds no images; CycleGAN needs images in both domains")
        return files

    def __len__(self) -> int:
        return max(len(self.a_files), len(self.b_files))

    def image_files(self) -> list[Path]:
        return [*self.a_files, *self.b_files]

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        s, pa, pb = self._pick(epoch, index)
        a = to_channels(self.read(pa), self.a_channels)
        b = to_channels(self.read(pb), self.b_channels)
        sb = sample_seed(self.seed + 1, epoch, index)
        if self.transform.transforms:
            a, b = apply_single(self.transform, a, s), apply_single(self.transform, b, sb)
        a, b = apply_color(a, draw_color(self.color_jitter, s)), apply_color(b, draw_color(self.color_jitter, sb))
        return {"a": to_tensor(a), "b": to_tensor(b), "name_a": pa.relative_to(self.a_dir).as_posix(),
                "name_b": pb.relative_to(self.b_dir).as_posix()}

    def _pick(self, epoch: int, index: int) -> tuple[int, Path, Path]:
        """The item's seed and its A and B files."""
        s = sample_seed(self.seed, epoch, index)
        pa = self.a_files[index % len(self.a_files)]
        return s, pa, self.b_files[index % len(self.b_files) if self.serial else s % len(self.b_files)]

    on_device = True

    def device_keys(self) -> list[tuple[str, int]]:
        return [(str(p), self.a_channels) for p in self.a_files] + [(str(p), self.b_channels) for p in self.b_files]

    def device_item(self, key: tuple[int, int]) -> DeviceItem:
        epoch, index = key
        s, pa, pb = self._pick(epoch, index)
        ha, wa = self.read(pa).shape[:2]
        hb, wb = self.read(pb).shape[:2]
        sb = sample_seed(self.seed + 1, epoch, index)
        ga = replace(draw_geometry(self.transform, ha, wa, s), color=draw_color(self.color_jitter, s))
        gb = replace(draw_geometry(self.transform, hb, wb, sb), color=draw_color(self.color_jitter, sb))
        return DeviceItem({"a": (Source((str(pa), self.a_channels)), ga),
                           "b": (Source((str(pb), self.b_channels)), gb)},
                          {"name_a": pa.relative_to(self.a_dir).as_posix(),
                           "name_b": pb.relative_to(self.b_dir).as_posix()})
