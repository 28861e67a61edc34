"""``i2i serve``: a local web app and HTTP API over the translators (:mod:`.app`; the ``serve``
extra). Importing this package needs no extra; :func:`run` and :func:`create_app` name it when missing."""

from __future__ import annotations

import importlib
import ipaddress
from typing import Any

EXTRA = "the web app needs its extra: pip install 'i2i[serve]' (FastAPI, uvicorn, python-multipart)"


def create_app(models: list[str], **kwargs: Any) -> Any:
    """The FastAPI app serving ``models`` (see :func:`i2i.serve.app.create_app`)."""
    try:
        app = importlib.import_module(f"{__name__}.app")  # the optional extra, loaded when asked for
    except ImportError as e:
        raise ImportError(f"{EXTRA} ({e})") from None
    return app.create_app(models, **kwargs)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(models: list[str], *, host: str = "127.0.0.1", port: int = 8000, **kwargs: Any) -> None:
    """Serve ``models`` with uvicorn until Ctrl-C or SIGTERM (the running job finishes, queued
    ones are cancelled, every temporary folder is removed)."""
    try:
        import uvicorn  # the serve extra
    except ImportError as e:
        raise ImportError(f"{EXTRA} ({e})") from None
    app = create_app(models, **kwargs)
    where = "only this machine can reach it (--host 0.0.0.0 to share it)" if is_loopback(host) else \
        "other machines can reach it: anyone who can open the address can convert with your models"
    print(f"i2i serve: {len(app.state.store.models)} model(s) on http://{host}:{port}/ ; {where}; the API: "
          f"http://{host}:{port}/docs", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=600)
