"""YAML configs as typed dataclasses, owned by the classes that use them.

A config has shared sections (``optim``, ``schedule``, ``train``, ``test``: the trainer's
and the translator's) and sections owned by the chosen pipeline:

- ``model.generator`` / ``model.discriminator``: a registered network name plus keyword
  options for its constructor. The options are validated against the constructor's
  signature and annotations (so a U-Net accepts ``num_downs`` and refuses ``n_blocks``, and
  ``num_downs: 100`` is out of the range its annotation declares); keys the pipeline derives
  itself (e.g. the discriminator's input channels) are refused.
- ``data``: the pipeline's :attr:`~i2i.pipelines.base.Pipeline.DataConfig` dataclass.
- ``loss``: the pipeline's :attr:`~i2i.pipelines.base.Pipeline.LossConfig` dataclass.

A key that does not apply is an error that names the key and the pipeline. Every number is
checked against the range its field declares (:class:`i2i.options.Range`). Configs carry a
``version``; older versions (inside older checkpoints) are migrated on load by
:func:`migrate`, so renaming a field never breaks an existing checkpoint.

Modules: :mod:`.sections` (the dataclasses), :mod:`.values` (typed, range-checked values),
:mod:`.loader` (YAML, overrides, the strict build for a given pipeline class), :mod:`.migrations`.
Looking a pipeline up by its name is :mod:`i2i.recipes`' job (``load_config``,
``config_from_dict``), above the pipelines.
"""

from .loader import (
    MAX_YAML_VALUES,
    apply_overrides,
    build_config,
    config_to_dict,
    dump_config,
    parse_override,
    read_config_file,
    safe_yaml,
)
from .migrations import MIGRATIONS, migrate
from .sections import (
    CONFIG_VERSION,
    TOP_LEVEL,
    Config,
    ConfigError,
    DataConfig,
    LossConfig,
    ModelConfig,
    NetConfig,
    OptimConfig,
    ScheduleConfig,
    TemporalRegularised,
    TestConfig,
    TrainConfig,
)
from .values import build_dataclass, check_range, convert_value

__all__ = [
    "CONFIG_VERSION",
    "MAX_YAML_VALUES",
    "MIGRATIONS",
    "TOP_LEVEL",
    "Config",
    "ConfigError",
    "DataConfig",
    "LossConfig",
    "TemporalRegularised",
    "ModelConfig",
    "NetConfig",
    "OptimConfig",
    "ScheduleConfig",
    "TestConfig",
    "TrainConfig",
    "apply_overrides",
    "build_config",
    "build_dataclass",
    "check_range",
    "config_to_dict",
    "convert_value",
    "dump_config",
    "migrate",
    "parse_override",
    "read_config_file",
    "safe_yaml",
]
