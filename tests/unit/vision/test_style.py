"""Neural style transfer (the book's 8.3) on a real backbone with random weights.

It runs in this process through the real conf/visualize.yaml (Hydra's compose API) and
`kerasrun.visualize.generate`, with weights=null: Keras cannot download here, and random
weights still make the book's loss fall.
"""

import numpy as np

from helpers import photo, png, tensorboard_images


def test_style_transfer_lowers_the_loss_at_the_content_size(visualize_config, tmp_path):
    from kerasrun.visualize import generate

    content = photo(tmp_path / "content.jpg", (48, 64))
    style = photo(tmp_path / "style.jpg", (50, 50), seed=1)
    config = visualize_config(
        "kind=style_transfer",
        f"image={content}",
        f"style_image={style}",
        "weights=null",
        "height=32",
        "iterations=2",
        f"output={tmp_path / 'styled'}",
    )
    out_dir, losses = generate("style_transfer", config)
    assert out_dir == tmp_path / "styled"
    assert len(losses) == 3  # the start, then after each L-BFGS round
    assert losses[1] < losses[0] and losses[2] <= losses[1]
    result = png(out_dir / "result.png")
    assert result.shape == (32, 42, 3)  # height 32, the width in proportion: 64 * 32 / 48
    assert np.array_equal(png(out_dir / "result_at_iteration_1.png"), result)
    assert png(out_dir / "result_at_iteration_0.png").shape == (32, 42, 3)
    assert tensorboard_images(out_dir / "tensorboard")["style_transfer/result"].size == (42, 32)
