"""Regenerates `src/kerasrun/data/digits.npz` from scikit-learn's copy of the UCI digits.

The 1,797 8x8 handwritten digits ship inside the wheel so that `train` with no
arguments works offline. Pixel values 0-16 are scaled to uint8 0-255 so that
every image dataset in kerasrun shares one convention.

Usage (needs `pip install scikit-learn`, which kerasrun itself does not):

    python scripts/make_digits.py
"""

from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

OUT = Path(__file__).resolve().parents[1] / "src" / "kerasrun" / "data" / "digits.npz"


def main():
    digits = load_digits()
    images = np.clip(np.round(digits.images * 255.0 / 16.0), 0, 255).astype("uint8")
    np.savez_compressed(OUT, images=images, labels=digits.target.astype("uint8"))
    print(f"Wrote {OUT} ({OUT.stat().st_size} bytes): {images.shape} {np.bincount(digits.target)}")


if __name__ == "__main__":
    main()
