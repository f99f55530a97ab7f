"""The parity check of an export: a prediction that differs from the Keras model's is found."""

import numpy as np
import pytest


def test_compare_detects_a_perturbed_prediction():
    from kerasrun.inference.export import compare

    expected = np.linspace(0, 1, 16, dtype="float32").reshape(8, 2)
    assert compare(expected, expected.copy(), atol=0) == (0.0, True)
    perturbed = expected.copy()
    perturbed[3, 1] += 2e-4
    diff, ok = compare(expected, perturbed, atol=1e-4)
    assert not ok and diff == pytest.approx(2e-4, rel=1e-3)
    assert compare(expected, perturbed, atol=1e-3)[1]
    # A SavedModel signature's dict, a TFLite interpreter's list: the same comparison.
    assert compare(expected, {"output_0": expected}, atol=0) == (0.0, True)
    assert compare(expected, [expected], atol=0) == (0.0, True)
    # Another shape, or NaN, is never "close".
    assert compare(expected, expected[:4], atol=1) == (float("inf"), False)
    broken = expected.copy()
    broken[0, 0] = np.nan
    assert compare(expected, broken, atol=1) == (float("inf"), False)
