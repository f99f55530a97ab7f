"""DeepDream (the book's 8.2) on a real backbone with random weights.

It runs in this process through the real conf/visualize.yaml (Hydra's compose API) and
`kerasrun.visualize.generate`, with weights=null: Keras cannot download here, and random
weights still make the book's loss rise.
"""

import re

import numpy as np
from PIL import Image

from helpers import photo, png, tensorboard_images


def test_deepdream_raises_the_loss_and_writes_each_octave(visualize_config, tmp_path):
    from kerasrun.visualize import generate

    image = photo(tmp_path / "photo.jpg", (110, 120))
    config = visualize_config(
        "kind=deepdream", f"image={image}", "weights=null", "octaves=2", "iterations=4"
    )
    out_dir, losses = generate("deepdream", config)
    assert out_dir.resolve().parent == tmp_path.resolve() / "outputs" / "visualize"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d_deepdream", out_dir.name)
    # InceptionV3 (the default), the book's mixed2..mixed5: 110x120 / 1.4 = 78x85, then 110x120.
    small, final = png(out_dir / "dream_at_scale_78x85.png"), png(out_dir / "final_dream.png")
    assert small.shape == (78, 85, 3) and final.shape == (110, 120, 3)
    assert np.array_equal(png(out_dir / "dream_at_scale_110x120.png"), final)
    # The dream changed the photo (random weights: a little; ImageNet's: a lot).
    changed = np.abs(final - np.asarray(Image.open(image), dtype="float32"))
    assert (changed > 0).mean() > 0.05 and changed.max() >= 3
    assert len(losses) == 8  # 2 octaves x 4 steps, none above max_loss
    assert losses[3] > losses[0] and losses[7] > losses[4]  # gradient ascent: each octave rises
    images = tensorboard_images(out_dir / "tensorboard")
    assert images["deepdream/final_dream"].size == (120, 110)
    assert "deepdream/dream_at_scale_78x85" in images
