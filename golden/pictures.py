"""Task outputs as pictures: a colour-coded segmentation map and a depth map (PNG, matplotlib Agg)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edgemoe.io import atomic_path


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def palette(n: int) -> np.ndarray:
    """n distinct colours (deterministic), uint8 [n, 3]."""
    rng = np.random.default_rng(1234)
    base = _plt().get_cmap("tab20")(np.arange(20))[:, :3]
    extra = rng.random((max(n - 20, 0), 3))
    return (np.concatenate([base, extra])[:n] * 255).astype(np.uint8)


def task_picture(output: np.ndarray, kind: str) -> np.ndarray:
    """[C, H, W] task output -> RGB uint8 picture [H, W, 3]."""
    if kind == "semseg":
        labels = output.argmax(0)
        return palette(output.shape[0])[labels]
    d = output[0]
    lo, hi = float(d.min()), float(d.max())
    norm = (d - lo) / (hi - lo) if hi > lo else np.zeros_like(d)
    return (_plt().get_cmap("magma")(norm)[..., :3] * 255).astype(np.uint8)


def save_png(path, rgb: np.ndarray) -> None:
    with atomic_path(Path(path)) as tmp:
        _plt().imsave(tmp, rgb, format="png")


def image_to_rgb(image: np.ndarray) -> np.ndarray:
    return (np.clip(np.transpose(image, (1, 2, 0)), 0, 1) * 255).astype(np.uint8)


def save_overview(path, panels: list, title: str = "") -> None:
    """A row of (caption, rgb) panels in one PNG."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 2.4))
    for ax, (cap, rgb) in zip(np.atleast_1d(axes), panels):
        ax.imshow(rgb)
        ax.set_title(cap, fontsize=9)
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
