"""``python -m i2i`` (and ``torchrun -m i2i train cfg.yaml``)."""

import sys

from .cli import main

sys.exit(main())
