"""Time-series windows from small generated CSVs: no network.

Bad series: nothing is dropped or filled (either would shift or invent time steps). A missing
or non-numeric value is a one-line `ConfigError` naming the column, the first bad row and how
many rows have one. UTF-8 (with or without a BOM) and UTF-16 with a BOM are read; any other
encoding is an error naming the first bad byte's line (no guessing).
"""

import codecs

import numpy as np
import pytest

from helpers import JENA_COLUMNS, assert_one_line, collect, series_text, write_csv, zipped
from kerasrun.data import build_data, timeseries
from kerasrun.errors import ConfigError


@pytest.fixture
def rows_csv(tmp_path):
    """Column `row` = the row number, `neg` = -row: every value names its row."""
    n = 300
    return write_csv(
        tmp_path / "rows.csv", ["Date Time", "row", "neg"], [np.arange(n), -np.arange(n)]
    )


@pytest.fixture
def sine_csv(tmp_path):
    rng = np.random.default_rng(0)
    n = 3000
    t = np.arange(n)
    temp = 10 + 8 * np.sin(2 * np.pi * t / 144) + rng.normal(0, 0.5, n) + t / 300
    pressure = 1000 + rng.normal(0, 3, n)
    path = write_csv(tmp_path / "sine.csv", ["Date Time", "T", "p"], [temp, pressure])
    return path, temp, pressure


# --- the YAML files and the registry ---------------------------------------------------------


# --- windows, splits, normalisation ----------------------------------------------------------


def test_window_alignment_on_row_numbers(rows_csv):
    lookback, step, delay = 12, 3, 5
    b = build_data(
        "csv_timeseries",
        path=str(rows_csv),
        target="row",
        features=["row", "neg"],
        lookback=lookback,
        step=step,
        delay=delay,
        train_rows=150,
        validation_rows=80,
        batch_size=16,
        seed=0,
    )
    assert b.task == "regression" and b.input_shape == (4, 2)
    train = np.arange(150)
    mean, std = train.mean(), train.std()
    span = (4 - 1) * step + step + delay  # 17: first window row → target row (the book's)
    assert b.sizes == {"train": 150 - span, "validation": 80 - span, "test": 70 - span}
    for ds, start, n in (
        (b.validation_dataset, 150, 80),
        (b.test_dataset, 230, 70),
        (b.train_dataset, 0, 150),
    ):
        x, y = collect(ds)
        assert x.dtype == np.float32 and y.dtype == np.float32
        rows = np.rint(x[..., 0] * std + mean).astype(int)  # undo the normalisation
        assert np.allclose(x[..., 1], -x[..., 0], atol=1e-5)  # neg = -row, own mean and std
        targets = np.rint(y * std + mean).astype(int)
        if ds is b.train_dataset:  # shuffled: compare as a set of (window, target)
            order = np.argsort(rows[:, 0])
            rows, targets = rows[order], targets[order]
        first = np.arange(start, start + n - span)
        np.testing.assert_array_equal(rows, first[:, None] + step * np.arange(4))
        # The book's generator: the target is `delay` rows after the window's end, which is
        # `step` rows after its last sampled row.
        np.testing.assert_array_equal(targets, rows[:, -1] + step + delay)
        assert targets.max() == start + n - 1  # the last window uses the split's last row


def test_training_order_is_shuffled_and_seeded(rows_csv):
    kwargs = dict(path=str(rows_csv), target="row", lookback=4, step=1, delay=1, batch_size=8)
    first = collect(build_data("csv_timeseries", seed=1, **kwargs).train_dataset)[1]
    again = collect(build_data("csv_timeseries", seed=1, **kwargs).train_dataset)[1]
    assert not np.all(np.diff(first) > 0)
    np.testing.assert_array_equal(first, again)


def test_normalised_with_training_rows_only_and_default_split(sine_csv):
    path, temp, pressure = sine_csv
    b = build_data(
        "csv_timeseries", path=str(path), target="T", lookback=6, step=6, delay=1, seed=0
    )
    # null splits: 50% / 25% / 25% of 3,000 rows; one-row windows (lookback // step = 1)
    # whose target is step + delay = 7 rows later.
    assert b.sizes == {"train": 1493, "validation": 743, "test": 743}
    assert b.input_shape == (1, 2)  # every numeric column; "Date Time" skipped
    x, y = collect(b.validation_dataset)
    expected = (temp[1500:2243] - temp[:1500].mean()) / temp[:1500].std()
    np.testing.assert_allclose(x[:, 0, 0], expected, rtol=1e-5, atol=1e-5)
    p = (pressure[1500:2243] - pressure[:1500].mean()) / pressure[:1500].std()
    np.testing.assert_allclose(x[:, 0, 1], p, rtol=1e-5, atol=1e-5)
    xt, _ = collect(b.train_dataset)
    assert abs(xt.mean()) < 1e-2  # zero mean on the training rows only
    assert abs(x[:, 0, 0].mean()) > 0.3  # the trend: validation rows are not re-centred


def test_target_not_listed_is_only_a_label(sine_csv):
    path, temp, _ = sine_csv
    b = build_data(
        "csv_timeseries",
        path=str(path),
        target="T",
        features=["p"],
        lookback=4,
        step=2,
        delay=3,
        seed=0,
    )
    assert b.input_shape == (2, 1)
    _, y = collect(b.test_dataset)
    mean, std = temp[:1500].mean(), temp[:1500].std()
    np.testing.assert_allclose(y, (temp[2250 + 2 + 2 + 3 :] - mean) / std, rtol=1e-5, atol=1e-5)


def test_baseline_matches_a_hand_computation(sine_csv):
    path, temp, _ = sine_csv
    lookback, step, delay = 24, 6, 10
    b = build_data(
        "csv_timeseries",
        path=str(path),
        target="T",
        lookback=lookback,
        step=step,
        delay=delay,
        train_rows=2000,
        validation_rows=600,
        seed=0,
    )
    mean, std = temp[:2000].mean(), temp[:2000].std()
    assert set(b.baseline) == {"val_mae", "val_mae_original", "test_mae", "test_mae_original"}
    for key, ds, (start, stop) in (
        ("val", b.validation_dataset, (2000, 2600)),
        ("test", b.test_dataset, (2600, 3000)),
    ):
        t = temp[start:stop]
        last = np.arange(len(t) - 18 - step - delay) + 18  # each window's last row
        by_hand = np.mean(np.abs(t[last + step + delay] - t[last]))  # samples[:, -1] vs target
        assert b.baseline[f"{key}_mae_original"] == pytest.approx(by_hand, rel=1e-5)
        assert b.baseline[f"{key}_mae"] == pytest.approx(by_hand / std, rel=1e-5)
        x, y = collect(ds)  # the very windows the dataset yields
        assert np.mean(np.abs(y - x[:, -1, 0])) == pytest.approx(b.baseline[f"{key}_mae"], 1e-4)
    del mean


def test_jena_defaults_on_a_small_file_with_jenas_columns(tmp_path):
    rng = np.random.default_rng(3)
    n = 400
    columns = [rng.normal(i, 1 + i, n) for i in range(14)]
    path = write_csv(tmp_path / timeseries.JENA_FILE, JENA_COLUMNS, columns)
    kwargs = dict(lookback=12, step=3, delay=6, train_rows=200, validation_rows=100, seed=0)
    for where in ({"path": str(path)}, {"root": str(tmp_path)}):
        b = build_data("jena_climate", batch_size=32, **where, **kwargs)
        assert b.input_shape == (4, 14) and b.task == "regression"  # all 14 numeric columns
        span = 3 * 3 + 3 + 6
        assert b.sizes == {"train": 200 - span, "validation": 100 - span, "test": 100 - span}
        assert b.source == f"jena_climate: {path}" and b.batch_size == 32
        temp = columns[1]  # "T (degC)"
        x, y = collect(b.validation_dataset)
        mean, std = temp[:200].mean(), temp[:200].std()
        np.testing.assert_allclose(y, (temp[200 + span : 300] - mean) / std, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(x[:, -1, 1], (temp[209:291] - mean) / std, atol=1e-5)
        assert b.baseline["val_mae_original"] == pytest.approx(b.baseline["val_mae"] * std)


def test_jena_download_goes_through_get_file(tmp_path, monkeypatch):
    from kerasrun.data import download

    write_csv(tmp_path / timeseries.JENA_FILE, JENA_COLUMNS, [np.arange(40.0)] * 14)
    calls = []

    def fake_get_file(url, **kwargs):
        calls.append((url, kwargs))
        return tmp_path

    monkeypatch.setattr(download, "get_file", fake_get_file)
    b = build_data(
        "jena_climate", lookback=2, step=1, delay=1, train_rows=20, validation_rows=10, seed=0
    )
    assert calls[0][0] == timeseries.JENA_URL
    assert calls[0][1]["extract"] is True and calls[0][1]["size"] is None
    assert b.sizes == {"train": 17, "validation": 7, "test": 7}


# --- errors ----------------------------------------------------------------------------------


def one_line(excinfo, *parts):
    message = str(excinfo.value)
    assert "\n" not in message and "Received: data." in message
    for part in parts:
        assert part in message, message


def test_missing_file_and_unknown_columns(rows_csv, tmp_path):
    base = dict(lookback=4, step=1, delay=1, seed=0)
    with pytest.raises(ConfigError) as e:
        build_data("csv_timeseries", path=str(tmp_path / "nope.csv"), target="row", **base)
    one_line(e, "data.path=", "does not exist")
    with pytest.raises(ConfigError) as e:
        build_data("csv_timeseries", path=str(rows_csv), target="temp", **base)
    one_line(e, "data.target='temp'", "'row'", "'neg'")
    with pytest.raises(ConfigError) as e:
        build_data("csv_timeseries", path=str(rows_csv), **base)
    one_line(e, "data.target=None")
    with pytest.raises(ConfigError) as e:
        build_data("csv_timeseries", path=str(rows_csv), target="row", features=["x"], **base)
    one_line(e, "unknown: 'x'", "'Date Time', 'row', 'neg'")
    with pytest.raises(ConfigError) as e:
        build_data("jena_climate", root=str(tmp_path), **base)
    one_line(e, "data.root=", timeseries.JENA_FILE)


@pytest.mark.parametrize(
    "cell, what",
    [("abc", "non-numeric value 'abc'"), ("", "missing value"), ("nan", "non-finite value 'nan'")],
)
def test_bad_values_name_the_row(tmp_path, cell, what):
    path = write_csv(tmp_path / "bad.csv", ["Date Time", "a", "b"], [np.arange(50.0)] * 2)
    lines = path.read_text().splitlines()
    fields = lines[8].split(",")  # data row 7 (0-based), line 9
    fields[2] = cell
    lines[8] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    kwargs = dict(path=str(path), lookback=4, step=1, delay=1, seed=0)
    with pytest.raises(ConfigError) as e:
        build_data("csv_timeseries", target="b", **kwargs)
    one_line(e, "'b'", what, "data row 7 (0-based; line 9 of the file)")
    # The column is not used: no error.
    assert build_data("csv_timeseries", target="a", features=["a"], **kwargs).sizes["train"]


def test_too_short_and_bad_window_settings(rows_csv):
    base = dict(path=str(rows_csv), target="row", seed=0)
    with pytest.raises(ConfigError) as e:
        build_data("csv_timeseries", lookback=200, step=1, delay=101, **base)
    one_line(e, "at least 302 rows", "300 rows")
    with pytest.raises(ConfigError) as e:
        build_data(
            "csv_timeseries",
            lookback=50,
            step=1,
            delay=10,
            train_rows=100,
            validation_rows=30,
            **base,
        )
    one_line(e, "at least 61 rows", "validation split 30 rows")
    with pytest.raises(ConfigError) as e:
        build_data(
            "csv_timeseries",
            lookback=5,
            step=1,
            delay=1,
            train_rows=250,
            validation_rows=100,
            **base,
        )
    one_line(e, "at most the 300 rows")
    for key, value in (("lookback", 0), ("step", -1), ("delay", 1.5), ("step", True)):
        kwargs = {"lookback": 12, "step": 3, "delay": 2, key: value}
        with pytest.raises(ConfigError) as e:
            build_data("csv_timeseries", **kwargs, **base)
        one_line(e, f"data.{key}={value!r}", "positive integer")
    with pytest.raises(ConfigError) as e:
        build_data("csv_timeseries", lookback=2, step=3, delay=1, **base)
    one_line(e, "data.lookback=2, data.step=3")
    # step not dividing lookback: floor.
    b = build_data("csv_timeseries", lookback=10, step=3, delay=1, **base)
    assert b.input_shape == (3, 2)
    # no validation rows: no validation dataset, no validation baseline.
    b = build_data(
        "csv_timeseries", lookback=4, step=1, delay=1, train_rows=200, validation_rows=0, **base
    )
    assert b.validation_dataset is None and set(b.baseline) == {"test_mae", "test_mae_original"}


WINDOW = dict(lookback=4, step=1, delay=1, seed=0)


def build_series(path, target="T", **kwargs):
    return build_data("csv_timeseries", path=str(path), target=target, **{**WINDOW, **kwargs})


# --- CSV time series: empty, header only, separators ------------------------------------------


@pytest.mark.parametrize(
    "content, what",
    [
        (b"", "which is empty (0 bytes)"),
        (b'"Date Time","T","p"\n', "which has only a header"),
        (b'"Date Time","T","p"', "which has only a header"),  # no line end
        (b"\n\n\n", "which has no rows"),
    ],
)
def test_an_empty_or_header_only_csv_is_one_line_error(tmp_path, content, what):
    path = tmp_path / "series.csv"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as e:
        build_series(path)
    assert_one_line(e, f"data.path='{path}'", what)


@pytest.mark.parametrize("sep, what", [(";", "semicolon"), ("\t", "tab")])
def test_a_semicolon_or_tab_separated_csv_says_the_separator(tmp_path, sep, what):
    path = tmp_path / "series.csv"
    path.write_text(series_text(sep=sep))
    with pytest.raises(ConfigError) as e:
        build_series(path)
    assert_one_line(e, f"data.path='{path}'", f"a {what}-separated file", "with commas")


# --- CSV time series: missing and non-numeric values ---------------------------------------------


def test_missing_values_are_an_error_naming_the_first_row_and_counting_the_rows(tmp_path):
    # Rows 3, 5 and 6 have a bad target: dropping them would shift every later window in time.
    text = series_text()
    for row, cell in ((3, ""), (5, "NaN"), (6, "NA")):
        text = text.replace(f"d{row},{float(row)!r},", f"d{row},{cell},")
    path = tmp_path / "series.csv"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        build_series(path)
    assert_one_line(
        e,
        "column 'T' has a missing value in data row 3 (0-based; line 5 of the file)",
        "2 more rows have one too",
    )
    # Only the used columns matter: the series of 'p' alone is fine.
    assert build_series(path, target="p", features=["p"]).sizes["train"] > 0


def test_a_non_numeric_cell_in_an_unused_date_column_is_fine_and_in_a_used_one_an_error(
    tmp_path,
):
    path = tmp_path / "series.csv"
    path.write_text(series_text().replace("d9,9.0,-9.0", "d9,9.0,n/a"))
    with pytest.raises(ConfigError) as e:
        build_series(path)  # features=None: every numeric column, 'p' included
    assert_one_line(e, "column 'p' has the non-numeric value 'n/a' in data row 9")
    assert build_series(path, features=["T"]).input_shape == (4, 1)  # "Date Time" is text


# --- CSV time series: encodings ------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16-le", "utf-16-be"])
def test_utf8_with_bom_and_utf16_with_bom_read_as_utf8(tmp_path, encoding):
    # "T" first: a BOM left in would make the first column '\ufeff"T"', not the target.
    text = series_text(header=("T", "p"))
    plain = tmp_path / "plain.csv"
    plain.write_text(text, encoding="utf-8")
    other = tmp_path / f"{encoding}.csv"
    bom = {"utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE}.get(encoding, b"")
    other.write_bytes(bom + text.encode(encoding))
    expected, got = build_series(plain), build_series(other)
    assert got.input_shape == expected.input_shape == (4, 2)
    assert got.baseline == expected.baseline
    for name in ("validation_dataset", "test_dataset"):
        for a, b in zip(collect(getattr(got, name)), collect(getattr(expected, name)), strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "make, parts",
    [
        # Latin-1 "°" in the header (a German weather export): line 1.
        (
            lambda: series_text(header=("Date Time", "T (\xb0C)", "p")).encode("latin-1"),
            ["which is not UTF-8: byte 0xb0 on line 1", "Latin-1", "iconv"],
        ),
        # Latin-1 "é" in a date cell of data row 3: line 5.
        (
            lambda: series_text().replace("d3,", "d\xe9,").encode("latin-1"),
            ["which is not UTF-8: byte 0xe9 on line 5"],
        ),
        # UTF-16 without its byte-order mark: NUL bytes everywhere.
        (lambda: series_text().encode("utf-16-le"), ["NUL bytes", "UTF-16 without a byte"]),
        # The zipped download given as the CSV.
        (lambda: zipped(series_text()), ["which is a zip archive", "Unzip it"]),
    ],
    ids=["latin1-header", "latin1-cell", "utf16-no-bom", "zip"],
)
def test_an_unreadable_encoding_is_one_line_error_naming_the_file(tmp_path, make, parts):
    path = tmp_path / "series.csv"
    path.write_bytes(make())
    with pytest.raises(ConfigError) as e:
        build_series(path, target="p")
    assert_one_line(e, f"data.path='{path}'", "UTF-8 (or UTF-16 with a byte-order mark)", *parts)
