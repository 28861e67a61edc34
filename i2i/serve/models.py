"""The models a server offers: each loaded once at start (a file that cannot serve is refused
then, naming it), described for the page, and its translators (per direction, tile, runtime and
seamless mode) built once and shared by every request."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..checkpoint import CheckpointError
from ..info import model_entry
from ..recipes import pipeline_class
from ..translator import Translator


@dataclass
class ServedModel:
    """One model file: ``id`` (its name, made unique), what ``i2i models`` says of it, its directions."""

    id: str
    path: Path
    kind: str
    model: str
    scale: int
    parameters: int
    directions: tuple[str, ...]
    foreign: bool = False  # another project's file: one direction, which from_file is not told
    translators: dict[tuple[Any, ...], Translator] = field(default_factory=dict, repr=False)

    def info(self) -> dict[str, Any]:
        """What the page and ``GET /models`` show."""
        return {"id": self.id, "file": self.path.name, "kind": self.kind, "model": self.model, "scale": self.scale,
                "parameters": self.parameters, "directions": list(self.directions)}


class ModelStore:
    """The models of ``paths`` (checkpoints, exports, model folders, other projects' files),
    loaded on ``device``. Raises ``ValueError`` naming a file that cannot serve."""

    def __init__(self, paths: list[str | Path], device: str = "auto") -> None:
        if not paths:
            raise ValueError("i2i serve needs at least one model file (a checkpoint, export, model folder or "
                             "another project's weights)")
        self.device, self.models, self.lock = device, {}, threading.Lock()
        for p in map(Path, paths):
            m = self._load(p)
            while m.id in self.models:
                m.id += "_"
            self.models[m.id] = m

    def _load(self, path: Path) -> ServedModel:
        e = model_entry(path)
        if e.problem:
            raise ValueError(f"cannot serve '{path}': {e.problem}")
        try:
            tr = Translator.from_file(path, device=self.device)
        except (CheckpointError, ImportError, ValueError) as err:
            raise ValueError(f"cannot serve '{path}': {str(err).splitlines()[0]}") from None
        directions: tuple[str, ...] = (tr.direction,)
        if tr.cfg is not None and tr.foreign is None:
            directions = tuple(pipeline_class(tr.cfg.pipeline).directions)
        m = ServedModel(path.stem if path.is_file() else path.name, path, e.kind, e.model, tr.scale,
                        e.parameters or 0, directions, foreign=tr.foreign is not None)
        m.translators[(tr.direction, None, "torch", None)] = tr
        return m

    def info(self) -> list[dict[str, Any]]:
        return [m.info() for m in self.models.values()]

    def get(self, model_id: str | None) -> ServedModel:
        """The model named ``model_id`` (the only one when None); ``KeyError`` listing the names otherwise."""
        if model_id is None and len(self.models) == 1:
            return next(iter(self.models.values()))
        if model_id not in self.models:
            raise KeyError(f"model {model_id!r} is not served; the models: {', '.join(self.models)}")
        return self.models[model_id]

    def translator(self, model_id: str | None, direction: str | None = None, tile: int | None = None,
                   runtime: str = "torch", seamless: str | None = None) -> Translator:
        """A shared translator of one model for these settings, built at its first use."""
        m = self.get(model_id)
        direction = direction or m.directions[0]
        if direction not in m.directions:
            raise ValueError(f"direction {direction!r}: model {m.id!r} translates {', '.join(m.directions)}")
        key = (direction, tile, runtime, seamless)
        with self.lock:
            if key not in m.translators:
                m.translators[key] = Translator.from_file(m.path, direction=None if m.foreign else direction,
                                                          device=self.device, tile=tile, runtime=runtime,
                                                          seamless=seamless)
            return m.translators[key]
