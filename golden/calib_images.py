"""The calibration set of the calibrated precisions (w8a8): the user's images (``--calib DIR``) or the
seeded sample images (the default).

A folder holds ``.npy`` images (float, shape (3, H, W) of the model, values in [0, 1]; checked by
:func:`edgemoe.io.check_image`) and / or ``.png`` / ``.jpg`` / ``.jpeg`` pictures (decoded with Pillow,
converted to RGB, resized bilinearly to the model's (img_h, img_w), scaled to [0, 1]). They are read in
sorted file-name order. Hidden files (``.name``) are skipped; any other file or a subfolder is refused:
the set's count and hash must describe the folder exactly, and a ``.tif`` or ``.npz`` the user meant to
include would otherwise shrink the set without a word.

The set's sha256 is taken over the decoded images (each one's shape and float32 bytes, in order), not
over the files: it names what the calibration saw, so the same pictures give the same hash whatever
their file names or formats, and the seeded sample images saved as .npy hash like the default set.
At most :data:`MAX_IMAGES` images: calibration keeps every image's float taps of every task in memory.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgemoe.errors import EdgeMoeError
from edgemoe.io import check_image, load_npy
from edgemoe.spec import ModelSpec

NPY_SUFFIXES = (".npy",)
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg")
MAX_IMAGES = 32       # every image's taps of every task stay in memory during calibration
SAMPLES = "samples"   # the record's "source" of the default set
SAMPLE_IMAGES = 2     # the default set: sample_image(spec, seed) for seeds 0, 1
CALIBRATED = ("w8a8",)   # the precisions whose types come from a calibration set (golden/calibrate.py)


@dataclass(frozen=True)
class CalibrationSet:
    """The images a precision is calibrated on: ``source`` ("samples" or the folder's absolute path),
    ``images`` float32 (N, 3, H, W) in [0, 1], ``sha256`` of the decoded images (:func:`images_sha256`)."""
    source: str
    images: np.ndarray
    sha256: str

    def record(self) -> dict:
        """The manifest's "calib": {"source", "images", "sha256"}."""
        return {"source": self.source, "images": int(len(self.images)), "sha256": self.sha256}


def images_sha256(images) -> str:
    """sha256 over the images in order: each one's shape, then its float32 bytes (C order)."""
    h = hashlib.sha256()
    for img in images:
        a = np.ascontiguousarray(np.asarray(img, np.float32))
        h.update(repr(tuple(a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _picture(path: Path, spec: ModelSpec) -> np.ndarray:
    """A .png / .jpg as float32 (3, img_h, img_w) in [0, 1]."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:  # pragma: no cover - Pillow is a pinned dependency of the toolkit
        raise EdgeMoeError(f"--calib {path}: reading .png / .jpg needs Pillow (pip install pillow)") from None
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if im.size != (spec.img_w, spec.img_h):
                im = im.resize((spec.img_w, spec.img_h), Image.Resampling.BILINEAR)
            a = np.asarray(im, dtype=np.float32)
    except UnidentifiedImageError:
        raise EdgeMoeError(f"--calib {path}: not a readable picture (Pillow cannot identify it)") from None
    except (OSError, ValueError, SyntaxError) as e:   # truncated or damaged data
        raise EdgeMoeError(f"--calib {path}: not a readable picture ({e})") from None
    return (a.transpose(2, 0, 1) / 255.0).astype(np.float32)


def load_calibration_set(folder, spec: ModelSpec) -> tuple:
    """(images float32 (N, 3, img_h, img_w) in [0, 1], sha256 of the decoded images) of ``folder``;
    one-line :class:`EdgeMoeError` naming the folder or the file for a missing or empty folder, a file
    of another kind, a bad image, or more than :data:`MAX_IMAGES` images."""
    d = Path(folder)
    if not d.exists():
        raise EdgeMoeError(f"--calib {d}: folder not found")
    if not d.is_dir():
        raise EdgeMoeError(f"--calib {d}: not a folder (give a folder of .npy, .png or .jpg images)")
    try:
        entries = sorted((p for p in d.iterdir() if not p.name.startswith(".")), key=lambda p: p.name)
    except OSError as e:
        raise EdgeMoeError(f"--calib {d}: cannot list the folder ({e.strerror or e})") from None
    for p in entries:
        if p.is_dir():
            raise EdgeMoeError(f"--calib {p}: a subfolder; the calibration folder holds only images (.npy, .png, .jpg)")
        if p.suffix.lower() not in NPY_SUFFIXES + PICTURE_SUFFIXES:
            raise EdgeMoeError(f"--calib {p}: not a calibration image (only .npy, .png, .jpg and .jpeg are read; "
                               f"move other files out of the folder)")
    if not entries:
        raise EdgeMoeError(f"--calib {d}: no images in the folder (give .npy (3, {spec.img_h}, {spec.img_w}) "
                           f"in [0, 1], .png or .jpg)")
    if len(entries) > MAX_IMAGES:
        raise EdgeMoeError(f"--calib {d}: {len(entries)} images; at most {MAX_IMAGES} are taken (calibration keeps "
                           f"every image's taps in memory): give a representative subset")
    images = []
    for p in entries:
        if p.suffix.lower() in NPY_SUFFIXES:
            images.append(check_image(load_npy(p, "--calib"), spec.input_shape, where=f"--calib {p}"))
        else:
            images.append(_picture(p, spec))
    arr = np.stack(images).astype(np.float32)
    return arr, images_sha256(arr)


def sample_set(spec: ModelSpec) -> CalibrationSet:
    """The default set: the seeded sample images of ``spec`` (golden/model.py sample_image)."""
    from .model import sample_image
    arr = np.stack([sample_image(spec, seed=s) for s in range(SAMPLE_IMAGES)]).astype(np.float32)
    return CalibrationSet(SAMPLES, arr, images_sha256(arr))


def check_calib_precision(precision: str, folder) -> None:
    """One line when ``--calib`` is given with a precision that takes no calibration."""
    from edgemoe.spec import precision_base
    if folder is not None and precision_base(precision) not in CALIBRATED:
        raise EdgeMoeError(f"--calib {folder}: precision {precision} takes no calibration images (w16a32: the "
                           "reference types; w16a32-fit: fitted to the weights); "
                           f"--calib applies to {', '.join(CALIBRATED)}")


def calibration_set(folder, spec: ModelSpec) -> CalibrationSet:
    """``folder``'s images (``--calib DIR``), or the seeded sample images when ``folder`` is None."""
    if folder is None:
        return sample_set(spec)
    images, sha = load_calibration_set(folder, spec)
    return CalibrationSet(str(Path(folder).resolve()), images, sha)


__all__ = ["CalibrationSet", "load_calibration_set", "calibration_set", "sample_set", "images_sha256", "check_calib_precision",
           "MAX_IMAGES", "SAMPLES", "SAMPLE_IMAGES", "CALIBRATED"]
