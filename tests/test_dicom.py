"""DICOM in and out (issue 44, part 1): pixels mapped losslessly, the header carried as a derived
image (new UIDs, ImageType DERIVED, rows/columns and pixel spacing for the new size), on pydicom's
own bundled test files."""

from __future__ import annotations

import shutil
import sys

import numpy as np
import pytest
import torch
from torch import nn

from i2i.convert import ConvertOptions
from i2i.data.dicom import derive
from i2i.data.io import ImageReadError, read_image
from i2i.data.metadata import read_metadata
from i2i.recipes import config_from_dict
from i2i.translator import Translator

pydicom = pytest.importorskip("pydicom")
from pydicom.data import get_testdata_file  # noqa: E402  (after the skip: an optional extra)

CT, RGB = "CT_small.dcm", "SC_rgb_dcmtk_+eb+cr.dcm"  # signed 16-bit CT with a TIFF preamble; JPEG baseline RGB


class Net(nn.Module):
    """x ``scale`` nearest upscaling times ``gain`` (1, 1: the identity)."""

    in_channels = out_channels = 3

    def __init__(self, scale: int, gain: float) -> None:
        super().__init__()
        self.scale, self.gain = scale, gain
        self.w = nn.Parameter(torch.ones(1))

    def forward(self, x):
        return nn.functional.interpolate(x * self.gain * self.w, scale_factor=self.scale, mode="nearest")


def _translator(scale: int = 2, gain: float = 0.9) -> Translator:
    tr = Translator(Net(scale, gain), config_from_dict({}), direction="a_to_b", device="cpu")
    tr.scale = scale
    return tr


def _inputs(tmp_path, names: dict[str, str]):
    src = tmp_path / "in"
    src.mkdir()
    for dst, name in names.items():
        shutil.copy(get_testdata_file(name), src / dst)
    return src


def test_a_ct_series_upscaled_is_a_derived_series_with_the_new_geometry(tmp_path, capsys):
    src = _inputs(tmp_path, {"s1.dcm": CT, "s2.dcm": CT})
    summary = _translator().convert_folder(src, tmp_path / "out", ConvertOptions(workers=0))
    assert summary.ok and summary.metadata == {"DICOM kept": 2}
    before = pydicom.dcmread(src / "s1.dcm")
    outs = [pydicom.dcmread(tmp_path / "out" / n) for n in ("s1.dcm", "s2.dcm")]
    for ds in outs:
        assert (ds.Rows, ds.Columns) == (256, 256)
        assert [float(v) for v in ds.PixelSpacing] == pytest.approx([0.661468 / 2] * 2)
        assert list(ds.ImageType[:2]) == ["DERIVED", "SECONDARY"]
        assert ds.SOPInstanceUID != before.SOPInstanceUID == ds.SourceImageSequence[0].ReferencedSOPInstanceUID
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.SeriesInstanceUID != before.SeriesInstanceUID
        for kept in ("PatientName", "StudyInstanceUID", "BitsStored", "PixelRepresentation", "RescaleIntercept",
                     "RescaleSlope", "PhotometricInterpretation", "SOPClassUID"):
            assert ds.get(kept) == before.get(kept), kept
        assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert outs[0].SOPInstanceUID != outs[1].SOPInstanceUID and outs[0].SeriesInstanceUID == outs[1].SeriesInstanceUID
    # the values keep their meaning: stored value v is (v + 32768) / 65535 of the range, times 0.9 in [-1, 1]
    v = before.pixel_array.astype(np.float64)
    expect = np.rint(((v + 32768) / 32767.5 - 1) * 0.9 * 32767.5 + 32767.5) - 32768
    got = outs[0].pixel_array.astype(np.float64)
    assert np.abs(got - np.kron(expect, np.ones((2, 2)))).max() <= 1
    header = read_metadata((src / "s1.dcm").read_bytes()).dicom
    assert derive(header, 8, 8, 1.0, "a/x.dcm") == derive(header, 8, 8, 1.0, "a/x.dcm")  # a rerun: the same UIDs


@pytest.mark.parametrize("name", [CT, RGB, "MR_small_bigendian.dcm"])
def test_the_identity_gives_back_the_stored_values_exactly(tmp_path, name):
    src = _inputs(tmp_path, {"x.dcm": name})
    assert _translator(1, 1.0).convert_folder(src, tmp_path / "out", ConvertOptions(workers=0)).ok
    a, b = pydicom.dcmread(src / "x.dcm"), pydicom.dcmread(tmp_path / "out" / "x.dcm")
    assert np.array_equal(a.pixel_array, b.pixel_array)
    assert b.pixel_array.dtype.newbyteorder("=") == a.pixel_array.dtype.newbyteorder("=")  # written little-endian
    assert b.PhotometricInterpretation == ("RGB" if name == RGB else "MONOCHROME2")


def test_strip_cannot_make_a_dicom_and_a_png_output_drops_the_header_and_says_so(tmp_path):
    src = _inputs(tmp_path, {"ct.dcm": CT})
    summary = _translator().convert_folder(src, tmp_path / "strip", ConvertOptions(metadata="strip", workers=0))
    assert len(summary.failed) == 1 and "DICOM header" in summary.failed[0][1] and "--ext png" in summary.failed[0][1]
    assert not (tmp_path / "strip" / "ct.dcm").exists()
    summary = _translator().convert_folder(src, tmp_path / "png", ConvertOptions(ext="png", workers=0))
    assert summary.ok and summary.metadata == {"DICOM dropped (.png cannot hold it)": 1}
    img = read_image(tmp_path / "png" / "ct.png")
    assert img.dtype == np.uint16 and img.shape[:2] == (256, 256)


def test_what_cannot_be_read_is_said_with_the_file_and_what_to_do(tmp_path, monkeypatch):
    ds = pydicom.dcmread(get_testdata_file(CT))
    ds.NumberOfFrames = 2
    ds.PixelData = ds.PixelData * 2
    ds.save_as(tmp_path / "multi.dcm")
    with pytest.raises(ImageReadError, match=r"multi\.dcm.*multi-frame.*split it"):
        read_image(tmp_path / "multi.dcm")
    shutil.copy(get_testdata_file("MR_truncated.dcm"), tmp_path / "cut.dcm")
    with pytest.raises(ImageReadError, match=r"cut\.dcm.*cannot be decoded"):
        read_image(tmp_path / "cut.dcm")
    monkeypatch.setitem(sys.modules, "pydicom", None)
    with pytest.raises(ImageReadError, match=r"i2i\[dicom\]"):
        read_image(tmp_path / "multi.dcm")
