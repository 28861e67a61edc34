"""``i2i download`` against a local HTTP server on 127.0.0.1 serving small fixtures (never the
internet): datasets unpacked in place, models imported, weights checked by hash, partial
downloads resumed, and failures that leave nothing under the final name."""

from __future__ import annotations

import hashlib
import io
import socket
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch

import i2i
from i2i import download as dl
from i2i.cli import main
from i2i.data.paired import PairedDataConfig, PairedDataset


class FixtureServer:
    """Serves ``files`` (URL path -> bytes) with Range support; paths in ``cut`` send half of
    their bytes on the first request and drop the connection."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut: set[str] = set()
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                rng = self.headers.get("Range")
                server.requests.append((self.path, rng))
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                start = int(rng.split("=")[1].rstrip("-")) if rng else 0
                if start >= len(data):
                    self.send_error(416)
                    return
                body = data[start:]
                self.send_response(206 if rng else 200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.path in server.cut:
                    server.cut.discard(self.path)
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = FixtureServer()
    yield s
    s.close()


def _png(seed: int, w: int = 16) -> bytes:
    import cv2

    img = np.random.default_rng(seed).integers(0, 256, (8, w, 3), dtype=np.uint8)
    return cv2.imencode(".png", img)[1].tobytes()


def _tar_gz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_the_catalogue_has_the_reference_urls():
    assert dl.find_source("dataset",
                          "pix2pix/facades").url == "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/facades.tar.gz"
    assert dl.find_source("dataset",
                          "horse2zebra").url == "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/horse2zebra.zip"
    assert dl.find_source("model",
                          "horse2zebra").url == "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/horse2zebra.pth"
    assert dl.find_source("model",
                          "day2night").url == "http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/day2night.pth"
    with pytest.raises(ValueError, match="ambiguous: say pix2pix/facades or cyclegan/facades"):
        dl.find_source("dataset", "facades")
    with pytest.raises(ValueError, match="did you mean 'horse2zebra'"):
        dl.find_source("dataset", "hors2zebra")


def test_a_pix2pix_dataset_is_unpacked_in_place_and_nothing_else_is_left(server, tmp_path, capsys):
    server.files["/pix2pix/datasets/facades.tar.gz"] = _tar_gz(
        {"facades/train/1.png": _png(0, 32), "facades/val/2.png": _png(1, 32), "facades/test/3.png": _png(2, 32)})
    assert main(["download", "dataset", "pix2pix/facades", "--out", str(tmp_path), "--mirror", server.url]) == 0
    assert f"to {tmp_path / 'facades'}" in capsys.readouterr().out
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.png")) == [
        "facades/test/3.png", "facades/train/1.png", "facades/val/2.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["facades"]  # no archive, no .part, no temporary folder
    ds = PairedDataset(tmp_path / "facades" / "train", PairedDataConfig(preprocess="none"), train=False)
    assert ds[0]["input"].shape == (3, 8, 16)  # side-by-side AB split in halves
    assert main(["download", "dataset", "pix2pix/facades", "--out", str(tmp_path), "--mirror", server.url]) == 1
    assert "already exists" in capsys.readouterr().err


def test_a_broken_download_is_resumed_where_it_stopped(server, tmp_path, capsys):
    data = _zip({f"horse2zebra/{d}/{i}.png": _png(i) for d in ("trainA", "trainB", "testA", "testB") for i in range(3)})
    server.files["/cyclegan/datasets/horse2zebra.zip"] = data
    server.cut.add("/cyclegan/datasets/horse2zebra.zip")
    argv = ["download", "dataset", "horse2zebra", "--out", str(tmp_path), "--mirror", server.url]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "run the same command again to resume" in err and err.count("\n") == 1
    part = tmp_path / "horse2zebra.zip.part"
    kept = part.stat().st_size
    assert 0 < kept < len(data) and not (tmp_path / "horse2zebra").exists()
    assert main(argv) == 0
    assert server.requests[-1] == ("/cyclegan/datasets/horse2zebra.zip", f"bytes={kept}-")  # only the rest was fetched
    assert len(list((tmp_path / "horse2zebra" / "trainA").glob("*.png"))) == 3 and not part.exists()


def test_a_reference_model_is_imported_and_translates_like_the_reference(server, tmp_path):
    from test_interop import RefResnet

    torch.manual_seed(0)
    ref = RefResnet(6).eval()
    buf = io.BytesIO()
    torch.save(ref.state_dict(), buf)
    server.files["/cyclegan/pretrained_models/horse2zebra.pth"] = buf.getvalue()
    path = dl.download_model("horse2zebra", tmp_path / "models", mirror=server.url, progress=False)
    assert path == tmp_path / "models" / "horse2zebra.pt" and sorted(p.name for p in path.parent.iterdir()) == [
        "horse2zebra.pt"
    ]
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert (i2i.Translator.from_checkpoint(path)(x) - ref(x)).abs().max() < 1e-5


def test_weights_are_checked_against_the_hash_in_their_name(server, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    server.files["/models/vgg19-dcbb9e9d.pth"] = b"not the real weights"
    with pytest.raises(dl.DownloadError, match="does not match the dcbb9e9d its name promises"):
        dl.download_weights("vgg19", mirror=server.url, progress=False)
    assert not list((tmp_path / "hub" / "checkpoints").iterdir())
    good = b"weights" * 100
    name = f"w-{hashlib.sha256(good).hexdigest()[:8]}.pth"
    server.files[f"/{name}"] = good
    assert dl.fetch(f"{server.url}/{name}", tmp_path / name).read_bytes() == good


def test_offline_and_missing_files_are_clear_errors_that_write_nothing(server, tmp_path, capsys):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    assert main(["download", "dataset", "pix2pix/maps", "--out", str(tmp_path), "--mirror",
                 f"http://127.0.0.1:{port}"]) == 1
    err = capsys.readouterr().err
    assert (
        "cannot reach http://127.0.0.1" in err
        and "check the network connection" in err
        and "nothing was written" in err
    )
    assert main(["download", "model", "pix2pix/sat2map", "--out", str(tmp_path), "--mirror", server.url]) == 1
    assert "answered 404" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("member", ["../evil.txt", "/tmp/evil.txt"])
def test_an_archive_cannot_write_outside_its_folder(tmp_path, member):
    archive = tmp_path / "x.tar.gz"
    archive.write_bytes(_tar_gz({"x/ok.txt": b"ok", member: b"evil"}))
    (tmp_path / "out").mkdir()
    with pytest.raises(dl.DownloadError, match="outside the target folder"):
        dl.unpack(archive, tmp_path / "out" / "x")
    assert not (tmp_path / "evil.txt").exists() and not list((tmp_path / "out").iterdir())
    assert not Path("/tmp/evil.txt").exists() or Path("/tmp/evil.txt").read_bytes() != b"evil"


def test_real_esrgan_models_are_listed_with_hashes_and_checked_on_download(server, tmp_path, monkeypatch):
    src = dl.find_source("model", "RealESRGAN_x4plus")
    assert src.url == "https://github.com/xinntao/Real-ESRGAN/releases/download/v0.1.0/RealESRGAN_x4plus.pth"
    assert src.sha256 == "4fa0d38905f75ac06eb49a7951b426670021be3018265fd191d2125df9d682f1"
    assert {s.key for s in dl.catalogue()["model"]} >= {f"realesrgan/{n}" for n in dl.SR_MODELS}
    from test_esrgan_import import _random_basicsr

    buf = io.BytesIO()
    torch.save({"params_ema": _random_basicsr(4)}, buf)
    server.files["/xinntao/Real-ESRGAN/releases/download/v0.1.0/RealESRGAN_x4plus.pth"] = buf.getvalue()
    # a file other than the release
    with pytest.raises(dl.DownloadError, match="does not match the recorded 4fa0d38905f7"):
        dl.download_model("RealESRGAN_x4plus", tmp_path / "models", mirror=server.url, progress=False)
    assert not list((tmp_path / "models").iterdir())
    monkeypatch.setitem(dl.SR_MODELS, "RealESRGAN_x4plus", (src.url, hashlib.sha256(buf.getvalue()).hexdigest()))
    path = dl.download_model("RealESRGAN_x4plus", tmp_path / "models", mirror=server.url, progress=False)
    tr = i2i.Translator.from_checkpoint(path)
    assert tr.scale == 4 and type(tr.net).__name__ == "RRDBNet"
    assert sorted(p.name for p in path.parent.iterdir()) == ["RealESRGAN_x4plus.pt"]
