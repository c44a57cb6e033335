"""Helpers for the data tests: tiny real image files and tables written into a test's tmp_path."""

import numpy as np
from PIL import Image

# One flat colour per class, far apart, so a decoded image tells its class.
COLOURS = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30)]


def write_image(path, colour=(200, 30, 30), size=(12, 10), mode="RGB"):
    """Writes a flat-colour image; the format follows the suffix (`.png`, `.jpg`, `.gif`, `.bmp`, `.webp`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.zeros((size[0], size[1], 3), dtype=np.uint8) + np.asarray(colour, dtype=np.uint8)
    Image.fromarray(array).convert(mode).save(path)
    return path


def class_folders(root, counts, suffix=".png", size=(12, 10)):
    """Writes `root/<class>/<class>_<i><suffix>` for `counts = {class: n}`, class k in `COLOURS[k]`.

    Returns:
        The list of written paths.
    """
    paths = []
    for k, (name, count) in enumerate(counts.items()):
        for i in range(count):
            paths.append(write_image(root / name / f"{name}_{i:03d}{suffix}", COLOURS[k], size))
    return paths


def jpeg_bytes(size=(64, 64), seed=0):
    """A JPEG of noise (so that its entropy-coded data is long enough to cut)."""
    import io

    array = np.random.default_rng(seed).integers(0, 256, (size[0], size[1], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()
