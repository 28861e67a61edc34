"""The ``serve`` command: the local web app (:mod:`i2i.serve`)."""

from __future__ import annotations

import argparse
from typing import Any

from .. import serve
from .args import positive_int


def _serve(args: argparse.Namespace) -> int:
    serve.run(args.models, host=args.host, port=args.port, device=args.device, max_upload_mb=args.max_upload_mb,
              max_queued=args.queue)
    return 0


def _add_serve(sub: Any) -> None:
    s = sub.add_parser("serve", help="a local web app and HTTP API: try, compare and convert with the models given "
                                     "(extra i2i[serve])")
    s.add_argument("models", nargs="+", help="model files: checkpoints, exports, model folders, other projects' "
                                             "weights")
    s.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 shares it)")
    s.add_argument("--port", type=positive_int, default=8000)
    s.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    s.add_argument("--max-upload-mb", type=positive_int, default=512, help="largest request accepted (413 beyond)")
    s.add_argument("--queue", type=positive_int, default=64, help="jobs that may wait (503 beyond: retry)")
    s.set_defaults(func=_serve)
