"""Pictures from arrays: grids of channels and colormaps."""

import numpy as np

from helpers import grid_size


def test_grids_and_colormaps():
    from kerasrun.pictures import JET, channel_grid, colorize, tile

    grid = channel_grid(np.random.default_rng(0).random((5, 7, 20)))
    assert grid.shape == (*grid_size(20, 5, 7), 3)
    # A constant channel (a dead ReLU) comes out as one flat colour, not NaN noise.
    flat = channel_grid(np.zeros((4, 4, 1)))
    assert flat.shape == (4, 4, 3) and (flat == flat[0, 0]).all()
    assert tile([np.zeros((2, 3, 1), "uint8")] * 5, margin=5).shape == (2 * 2 + 5, 3 * 3 + 10, 1)
    cold, hot = colorize(np.array([0.0, 1.0]), JET)
    assert cold[2] > cold[0] and hot[0] > hot[2]  # jet: blue for 0, red for 1
