"""One input's result as `predict` shows it and writes it to a CSV file."""

import numpy as np

from helpers import read_csv
from kerasrun.inference.predictors import Predictor, probabilities
from kerasrun.inference.rows import Row, format_row, write_csv


def test_rows_show_top_k_classes_a_binary_sigmoid_and_a_regression_value():
    binary = probabilities(np.array([[0.97], [0.001]]), "binary")
    np.testing.assert_allclose(binary, [[0.03, 0.97], [0.999, 0.001]])
    names = ["cats", "dogs"]
    assert format_row(Row("a", probabilities=binary[0]), names, 2) == "dogs 97% | cats 3%"
    assert format_row(Row("b", probabilities=binary[1]), names, 1) == "cats 99.9%"
    sure = probabilities(np.array([[1e-9]]), "binary")[0]
    assert format_row(Row("s", probabilities=sure), names, 2) == "cats >99.9% | dogs <0.1%"
    three = probabilities(np.array([[0.2, 0.5, 0.3]]), "multiclass")[0]
    row = Row("c", probabilities=three)
    assert format_row(row, ["a", "b", "c"], 2) == "b 50% | c 30%"
    values = probabilities(np.array([[3.14159], [-2.0]]), "regression")
    assert format_row(Row("d", value=float(values[0])), [], 3) == "3.142"
    assert format_row(Row("e", error="not an image"), names, 2) == "error: not an image"


def test_a_regression_csv_holds_the_value(tmp_path):
    predictor = Predictor("", "image", "regression", [], None, None)
    rows = [Row("a.png", "a.png", value=2.5), Row("b.png", "b.png", error="x")]
    write_csv(tmp_path / "r.csv", rows, predictor)
    assert read_csv(tmp_path / "r.csv") == [
        {"file": "a.png", "prediction": "2.5", "error": ""},
        {"file": "b.png", "prediction": "", "error": "x"},
    ]
