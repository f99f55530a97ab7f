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


def test_data_that_cannot_be_built_is_refused_unless_random_inputs_are_asked_for(tmp_path):
    """The run's data passes the path check (the folder exists) but holds no class: an error
    naming random_inputs, not a silent check on random inputs marked `ok`."""
    import keras

    from kerasrun.errors import ConfigError
    from kerasrun.inference.export import RANDOM_SOURCE, sample_inputs
    from kerasrun.rundir.run import Run

    (tmp_path / "photos").mkdir()
    data = {"name": "image_folder", "root": str(tmp_path / "photos"), "image_size": [8, 8]}
    run = Run(tmp_path, {"seed": 0, "data": data}, tmp_path / "model.keras")
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten()])
    with pytest.raises(ConfigError) as error:
        sample_inputs(run, model, 4, {})
    message = str(error.value)
    assert message.startswith("export-model checks the export on the run's data: data.root")
    assert "Or set random_inputs=true" in message and "\n" not in message

    inputs, source = sample_inputs(run, model, 4, {}, random=True)
    assert inputs.shape == (4, 8, 8, 3) and source == RANDOM_SOURCE
    assert 0 <= inputs.min() < inputs.max() <= 255
