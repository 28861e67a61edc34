"""The web app (issue 46) through the framework's test client: the same bytes as ``i2i convert``,
jobs with progress and zips, and every hostile or oversized upload refused with a message."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from i2i.cli import main

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402  (after the skip: the serve extra)

from i2i.serve import create_app, is_loopback  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def model(tiny_x2: Path) -> Path:
    return tiny_x2


def png(seed: int, size: int = 24) -> bytes:
    img = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return cv2.imencode(".png", img)[1].tobytes()


def converted(model: Path, tmp_path: Path, name: str, data: bytes) -> bytes:
    """What ``i2i convert`` writes for one file."""
    src = tmp_path / f"cli-{name}"
    src.mkdir()
    (src / name).write_bytes(data)
    assert main(["convert", str(model), str(src), str(tmp_path / f"cli-out-{name}"), "--quiet"]) == 0
    return (tmp_path / f"cli-out-{name}" / name).read_bytes()


def test_translate_gives_the_bytes_convert_writes_and_models_are_described(model, tmp_path, trained):
    app = create_app([str(model), trained], device="cpu", workdir=str(tmp_path))
    with TestClient(app) as client:
        listed = client.get("/models").json()
        assert [m["id"] for m in listed] == ["tiny_x2", "last"]
        assert listed[0]["scale"] == 2 and listed[0]["directions"] == ["a_to_b"] and listed[0]["parameters"] > 0
        data = png(1)
        r = client.post("/translate", files={"file": ("photo.png", data, "image/png")}, data={"model": "tiny_x2"})
        assert r.status_code == 200, r.text
        assert r.content == converted(model, tmp_path, "photo.png", data)
        assert r.headers["content-type"] == "image/png"
        jpeg = cv2.imencode(".jpg", np.full((20, 20, 3), 120, np.uint8))[1].tobytes()
        r = client.post("/translate", files={"file": ("x.png", jpeg)}, data={"model": "last"})  # named .png, is JPEG
        assert r.status_code == 200 and r.content[:2] == b"\xff\xd8"  # sniffed: a JPEG comes back as JPEG
        page = client.get("/docs").text
        assert "/translate" in page and "/jobs/{job_id}" in page and "https://" not in page
        assert client.get("/").status_code == 200 and "i2i" in client.get("/").text
        root = app.state.jobs.root
        assert root.is_dir() and not any(root.iterdir())  # nothing left of the requests
    assert not root.exists()  # the server stopped: its temporary root is gone


def test_jobs_take_many_files_and_zips_report_progress_and_return_a_zip(model, tmp_path):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("../../escape.png", png(2))
        z.writestr("sub/inner.png", png(3))
        z.writestr("__MACOSX/._inner.png", b"junk")
        z.writestr("notes.txt", b"not an image")
    with TestClient(create_app([str(model)], device="cpu", workdir=str(tmp_path))) as client:
        files = [("files", ("a.png", png(4))), ("files", ("b.png", png(5)))]
        r = client.post("/jobs", files=files)
        assert r.status_code == 200 and r.json()["total"] == 2
        job = r.json()["id"]
        for _ in range(200):
            s = client.get(f"/jobs/{job}").json()
            if s["state"] not in ("queued", "running"):
                break
        assert s["state"] == "done" and s["done"] == 2 and s["outputs"] == ["a.png", "b.png"]
        with zipfile.ZipFile(io.BytesIO(client.get(f"/jobs/{job}/result").content)) as z:
            assert sorted(z.namelist()) == ["a.png", "b.png"]
            assert z.read("a.png") == converted(model, tmp_path, "a.png", png(4))
        assert client.get(f"/jobs/{job}/files/..%2F..%2Fetc%2Fpasswd").status_code == 404
        assert client.get(f"/jobs/{job}/files/a.png").content == converted(model, tmp_path, "a2.png", png(4))
        r = client.post("/jobs", files=[("files", ("evil.zip", archive.getvalue()))])
        assert r.status_code == 422 and "notes.txt" in r.json()["detail"]  # a member that is not an image
        assert client.delete(f"/jobs/{job}").status_code == 200 and client.get(f"/jobs/{job}").status_code == 404
        good = io.BytesIO()
        with zipfile.ZipFile(good, "w") as z:
            z.writestr("../../escape.png", png(2))
            z.writestr("sub/inner.png", png(3))
        r = client.post("/jobs", files=[("files", ("photos.zip", good.getvalue()))])
        assert r.status_code == 200 and r.json()["total"] == 2
        root = client.app.state.jobs.root
        placed = sorted(str(p.relative_to(root)).split("/", 1)[1] for p in root.glob("*/in/*.png"))
        assert placed == ["in/escape.png", "in/inner.png"] and not (tmp_path / "escape.png").exists()


def test_wrong_and_hostile_requests_get_clear_errors(model, tmp_path):
    with TestClient(create_app([str(model)], device="cpu", max_upload_mb=1, workdir=str(tmp_path))) as client:
        r = client.post("/translate", files={"file": ("big.png", b"\x89PNG" + bytes(3 << 20))})
        assert r.status_code == 413 and "limit" in r.json()["detail"]
        r = client.post("/translate", files={"file": ("run.sh", b"#!/bin/sh\nrm -rf /\n")})
        assert r.status_code == 422 and "'run.sh' is not an image" in r.json()["detail"]
        bomb = np.zeros((1, 1, 3), np.uint8)
        header = bytearray(cv2.imencode(".png", bomb)[1].tobytes())
        header[16:24] = (100000).to_bytes(4, "big") * 2  # says 100,000 x 100,000 pixels
        r = client.post("/translate", files={"file": ("bomb.png", bytes(header))})
        assert r.status_code == 413 and "pixels" in r.json()["detail"]
        r = client.post("/translate", files={"file": ("a.png", png(1))}, data={"model": "nope"})
        assert r.status_code == 422 and "tiny_x2" in r.json()["detail"]
        r = client.post("/translate", files={"file": ("a.png", png(1))}, data={"ext": "exe"})
        assert r.status_code == 422 and "ext" in r.json()["detail"]
        r = client.post("/translate", files={"file": ("a.png", png(1))}, data={"tile": "big"})
        assert r.status_code == 422 and "tile='big' must be a whole number" in r.json()["detail"]
        r = client.post("/translate", files={"file": ("a.png", png(1, 40))}, data={"tile": "16", "seamless": "wrap"})
        assert r.status_code == 200, r.text  # options other than the defaults build their own shared translator
        r = client.post("/translate", files={"file": ("a.png", png(1))}, data={"runtime": "tensorrt"})
        assert r.status_code == 422 and "tensorrt" in r.json()["detail"]
        assert client.get("/jobs/0123").status_code == 404
        assert not any(client.app.state.jobs.root.iterdir())


def test_the_server_binds_to_loopback_unless_told():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    with pytest.raises(ValueError, match="cannot serve 'missing.pt'"):
        create_app(["missing.pt"])


def test_sigterm_stops_the_server_cleanly_and_removes_its_files(model, tmp_path):
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "i2i", "serve", str(model), "--port", str(port), "--device", "cpu"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        for _ in range(300):
            try:
                models = httpx.get(f"http://127.0.0.1:{port}/models", timeout=1).json()
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert models[0]["id"] == "tiny_x2"
        r = httpx.post(f"http://127.0.0.1:{port}/jobs", files=[("files", ("a.png", png(7)))], timeout=60)
        assert r.status_code == 200
        assert any(tmp_path.glob("i2i-serve-*"))  # its temporary root, holding the job
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode in (0, 143, -signal.SIGTERM), err[-2000:]  # uvicorn re-raises the signal it handled
    assert "only this machine can reach it" in out
    assert not any(tmp_path.glob("i2i-serve-*"))  # removed on the way out


def test_a_video_job_is_converted_with_the_temporal_option(model, tmp_path):
    import av

    clip = tmp_path / "clip.mkv"
    with av.open(str(clip), "w") as out:
        v = out.add_stream("ffv1", rate=24)
        v.width, v.height, v.pix_fmt = 32, 24, "bgr0"
        for i in range(4):
            f = av.VideoFrame.from_ndarray(np.full((24, 32, 3), 40 * i, np.uint8), format="rgb24")
            f.pts = i
            out.mux(v.encode(f))
        out.mux(v.encode(None))
    with TestClient(create_app([str(model)], device="cpu", workdir=str(tmp_path))) as client:
        r = client.post("/jobs", files=[("files", ("holiday clip.mkv", clip.read_bytes()))], data={"temporal": "flow"})
        assert r.status_code == 200, r.text
        job = r.json()["id"]
        for _ in range(600):
            s = client.get(f"/jobs/{job}").json()
            if s["state"] not in ("queued", "running"):
                break
        assert s["state"] == "done" and s["outputs"] == ["holiday_clip.mkv"]
        (tmp_path / "got.mkv").write_bytes(client.get(f"/jobs/{job}/result").content)
    with av.open(str(tmp_path / "got.mkv")) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 4 and frames[0].shape == (48, 64, 3)
    r = TestClient(create_app([str(model)], device="cpu", workdir=str(tmp_path))).post(
        "/jobs", files=[("files", ("a.png", png(1)))], data={"temporal": "median"})
    assert r.status_code == 422 and "temporal" in r.json()["detail"]
