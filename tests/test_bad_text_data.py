"""Issue 6, promise 4: bad text and series data, on real files written in tmp_path.

Each case goes through `build_data(...)` (real numpy, TensorFlow and Keras); three go
through the real `train` CLI. A refused file is a one-line `ConfigError` that names it and
says what to do (`train`: one `Error:` line, exit code 2, no traceback). A skipped review
file is counted in `DataBundle.bad_files`, which `train` writes to `<run>/bad_files.txt`.

Policies:
- CSV series: nothing is dropped or filled (either would shift or invent time steps). A
  missing or non-numeric value is an error naming the column, the first bad row and how
  many rows have one. UTF-8 (with or without a BOM) and UTF-16 with a BOM are read; any
  other encoding is an error naming the first bad byte's line (no guessing).
- Raw reviews: every file is read before training, so nothing fails mid-epoch. A file with
  no text (0 bytes, only white space) or that cannot be read is skipped and counted; a
  review with bytes that are not UTF-8 is kept with U+FFFD and counted in a warning;
  hidden files (.DS_Store, macOS's ._name.txt) are not reviews.
"""

import codecs
import logging
import os
import zipfile

import keras
import numpy as np
import pytest

from cli import one_error_line, only_run_dir, read_metrics, run_train
from kerasrun.data import build_data, raw_text
from kerasrun.errors import ConfigError
from test_raw_text import build as build_imdb_raw
from test_raw_text import write_aclimdb

WINDOW = dict(lookback=4, step=1, delay=1, seed=0)


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    yield
    keras.backend.clear_session()


def one_line(excinfo, *parts):
    """Asserts a one-line, Keras-style message holding every one of `parts`."""
    message = str(excinfo.value)
    assert "\n" not in message and "Received: " in message, message
    for part in parts:
        assert part in message, message
    return message


def series_text(rows=40, header=("Date Time", "T", "p"), sep=","):
    """A CSV series: a "Date Time" text column `d<i>` if `header` starts with it, then
    numeric columns `i`, `-i`, `i`, ... (row `i`)."""
    dated = header[0] == "Date Time"
    lines = [sep.join(f'"{h}"' for h in header)]
    for i in range(rows):
        cells = [f"d{i}"] if dated else []
        cells += [repr(float(i * (-1) ** k)) for k in range(len(header) - dated)]
        lines.append(sep.join(cells))
    return "\n".join(lines) + "\n"


def build_series(path, target="T", **kwargs):
    return build_data("csv_timeseries", path=str(path), target=target, **{**WINDOW, **kwargs})


def collect(ds):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds], strict=True)
    return np.concatenate(xs), np.concatenate(ys)


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
    one_line(e, f"data.path='{path}'", what)


@pytest.mark.parametrize("sep, what", [(";", "semicolon"), ("\t", "tab")])
def test_a_semicolon_or_tab_separated_csv_says_the_separator(tmp_path, sep, what):
    path = tmp_path / "series.csv"
    path.write_text(series_text(sep=sep))
    with pytest.raises(ConfigError) as e:
        build_series(path)
    one_line(e, f"data.path='{path}'", f"a {what}-separated file", "with commas")


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
    one_line(
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
    one_line(e, "column 'p' has the non-numeric value 'n/a' in data row 9")
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
        (lambda: _zipped(series_text()), ["which is a zip archive", "Unzip it"]),
    ],
    ids=["latin1-header", "latin1-cell", "utf16-no-bom", "zip"],
)
def test_an_unreadable_encoding_is_one_line_error_naming_the_file(tmp_path, make, parts):
    path = tmp_path / "series.csv"
    path.write_bytes(make())
    with pytest.raises(ConfigError) as e:
        build_series(path, target="p")
    one_line(e, f"data.path='{path}'", "UTF-8 (or UTF-16 with a byte-order mark)", *parts)


def _zipped(text):
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("series.csv", text)
    return buffer.getvalue()


def test_cli_a_latin1_csv_is_one_error_line_and_exit_code_2(tmp_path):
    path = tmp_path / "series.csv"
    path.write_bytes(series_text(header=("Date Time", "T (\xb0C)", "p")).encode("latin-1"))
    result = run_train(
        "data=csv_timeseries",
        "model=dense_timeseries",
        f"data.path={path}",
        "data.target=p",
        "data.lookback=4",
        "data.step=1",
        "data.delay=1",
        cwd=tmp_path,
    )
    error = one_error_line(result)
    assert f"data.path='{path}'" in error and "byte 0xb0 on line 1" in error, error


# --- raw text folders (imdb_raw) ---------------------------------------------------------------


@pytest.fixture
def aclimdb(tmp_path):
    return write_aclimdb(tmp_path / "data")


def test_empty_and_unreadable_reviews_are_skipped_and_counted(aclimdb):
    (aclimdb / "train" / "pos" / "0_8.txt").write_bytes(b"")
    (aclimdb / "train" / "neg" / "0_2.txt").write_text(" \n\t<br /><br />\n")
    (aclimdb / "test" / "pos" / "90_8.txt").symlink_to(aclimdb / "moved" / "90_8.txt")
    (aclimdb / "test" / "neg" / "91_2.txt").mkdir()  # a folder named like a review
    bundle = build_imdb_raw(aclimdb)
    reasons = {os.path.relpath(path, aclimdb): why for path, why in bundle.bad_files}
    assert reasons == {
        "train/pos/0_8.txt": "empty file (0 bytes)",
        "train/neg/0_2.txt": "no text, only white space",
        "test/pos/90_8.txt": "cannot be read (No such file or directory)",
        "test/neg/91_2.txt": "cannot be read (Is a directory)",
    }
    # The 40 test reviews are still 40 (two unreadable extras skipped); 78 of 80 train.
    assert bundle.sizes["test"] == 40
    texts, _ = raw_text.read_reviews(aclimdb, "train")
    assert len(texts) == 78 and all(t.strip() for t in texts)


def test_a_class_whose_every_review_is_empty_is_one_line_error(aclimdb):
    for path in (aclimdb / "train" / "pos").glob("*.txt"):
        path.write_bytes(b"")
    with pytest.raises(ConfigError) as e:
        build_imdb_raw(aclimdb)
    message = str(e.value)
    assert "\n" not in message and "Received: " in message
    assert f"{aclimdb}/train/pos/ holds 40 .txt files, all skipped" in message
    assert "empty file (0 bytes)" in message


def test_reviews_that_are_not_utf8_are_kept_with_replacement_and_counted(aclimdb, caplog):
    # The fixture's train/neg/1_2.txt ends in Latin-1 "caf\xe9"; one more in test/.
    path = aclimdb / "test" / "pos" / "3_8.txt"
    path.write_bytes(path.read_bytes() + b" na\xefve")
    with caplog.at_level(logging.WARNING, logger="kerasrun"):
        bundle = build_imdb_raw(aclimdb)
    assert bundle.bad_files == [] and bundle.sizes["test"] == 40  # kept, not skipped
    warnings = [r.getMessage() for r in caplog.records if "not valid UTF-8" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("2 review files are not valid UTF-8 (first: ")
    assert "train/neg/1_2.txt" in warnings[0] and "U+FFFD" in warnings[0]
    texts, _ = raw_text.read_reviews(aclimdb, "test")
    assert sum(t.endswith(" na\ufffdve") for t in texts) == 1


@pytest.mark.parametrize(
    "encoding, bom",
    [
        ("utf-8", codecs.BOM_UTF8),
        ("utf-16-le", codecs.BOM_UTF16_LE),
        ("utf-16-be", codecs.BOM_UTF16_BE),
    ],
)
def test_a_byte_order_mark_is_read_and_not_glued_to_the_first_word(aclimdb, encoding, bom):
    path = aclimdb / "train" / "pos" / "0_8.txt"
    plain = path.read_text(encoding="utf-8")
    path.write_bytes(bom + plain.encode(encoding))
    texts, _ = raw_text.read_reviews(aclimdb, "train")
    assert plain.replace("<br />", " ") in texts
    assert not any("\ufeff" in t or "\x00" in t for t in texts)


def test_hidden_files_in_class_folders_are_not_reviews(aclimdb):
    before, _ = raw_text.read_reviews(aclimdb, "train")
    for name in ("neg", "pos"):
        folder = aclimdb / "train" / name
        (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1\x00\x00")
        # macOS writes these "AppleDouble" copies to FAT/exFAT and network drives.
        (folder / "._0_8.txt").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X\xff")
    bad_files, not_utf8 = [], []
    after, labels = raw_text.read_reviews(aclimdb, "train", bad_files=bad_files, not_utf8=not_utf8)
    assert after == before and len(labels) == 80
    assert bad_files == [] and not any("._" in p for p in not_utf8)


@pytest.mark.parametrize(
    "change, where",
    [
        (lambda a: [p.unlink() for p in (a / "train" / "pos").glob("*.txt")], "train/pos/ holds"),
        (lambda a: (a / "test" / "neg").rename(a / "test" / "negative"), "test/neg/ is missing"),
        (lambda a: (a / "train").rename(a / "training"), "train/ is missing"),
    ],
    ids=["empty-class-folder", "missing-class-folder", "missing-train"],
)
def test_a_missing_or_empty_folder_is_named(aclimdb, change, where):
    change(aclimdb)
    (aclimdb / "test" / "pos" / ".DS_Store").write_bytes(b"\x00")  # hidden files do not count
    with pytest.raises(ConfigError) as e:
        build_imdb_raw(aclimdb)
    one_line(e, f"data.root='{aclimdb}', where {where}", "train/neg, train/pos")
    # Pointed at the folder holding aclImdb/, the path names aclImdb/.
    with pytest.raises(ConfigError) as e:
        build_imdb_raw(aclimdb.parent)
    one_line(e, f"data.root='{aclimdb.parent}', where aclImdb/{where}")


@pytest.mark.slow
def test_cli_skipped_reviews_are_listed_in_bad_files_txt_and_the_run_finishes(tmp_path):
    aclimdb = write_aclimdb(tmp_path / "data")
    (aclimdb / "train" / "pos" / "0_8.txt").write_bytes(b"")
    (aclimdb / "test" / "neg" / "0_2.txt").write_bytes(b"")
    result = run_train(
        "experiment=imdb_raw_noglove_200",
        "debug=default",
        f"data.root={aclimdb}",
        "data.train_samples=30",
        "data.validation_samples=20",
        "data.output_sequence_length=10",
        "data.batch_size=8",
        cwd=tmp_path,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert (
        "Skipped 2 unreadable or empty files" in output
        and "1 review file is not valid UTF-8" in output
    )
    run_dir = only_run_dir(tmp_path)
    assert read_metrics(run_dir)["status"] == "finished"
    lines = (run_dir / "bad_files.txt").read_text().splitlines()
    assert sorted(lines) == [
        f"{aclimdb}/test/neg/0_2.txt\tempty file (0 bytes)",
        f"{aclimdb}/train/pos/0_8.txt\tempty file (0 bytes)",
    ]


# --- Keras-format npz files (data.path) -----------------------------------------------------------


def _npy(path):
    np.save(path, np.zeros(3))
    return path.with_suffix(".npy").read_bytes()


NOT_NPZ = {
    "empty": (lambda tmp: b"", "which is empty (0 bytes)"),
    "text": (lambda tmp: b"x_train,y_train\n1,0\n", "which is not an .npz (a zip archive"),
    "npy": (lambda tmp: _npy(tmp / "one"), "which is one .npy array, not an .npz"),
    "truncated": (lambda tmp: _zipped("x" * 500)[:60], "damaged or truncated zip archive"),
}
KEYS = {
    "imdb": "x_train, y_train, x_test, y_test",
    "reuters": "x, y or x_train, y_train, x_test, y_test",
    "boston_housing": "x, y",
    "mnist": "x_train, y_train, x_test, y_test",
}


@pytest.mark.parametrize("name", sorted(KEYS))
@pytest.mark.parametrize("kind", sorted(NOT_NPZ))
def test_a_file_that_is_not_an_npz_names_the_file_and_the_keys(tmp_path, name, kind):
    make, what = NOT_NPZ[kind]
    path = tmp_path / f"{name}.npz"
    path.write_bytes(make(tmp_path))
    with pytest.raises(ConfigError) as e:
        build_data(name, path=str(path), seed=0)
    one_line(e, f"data.path='{path}'", what, KEYS[name], f"{name}.npz")


@pytest.mark.parametrize(
    "name, arrays, lacks",
    [
        ("imdb", ("x_train", "y_train", "x_test"), "lacks y_test (it holds x_test, x_train"),
        ("boston_housing", ("x",), "lacks y (it holds x)"),
        ("mnist", ("x_train", "y_train", "x_test"), "lacks y_test"),
    ],
)
def test_an_npz_missing_a_key_names_the_file_and_the_expected_keys(tmp_path, name, arrays, lacks):
    path = tmp_path / f"{name}.npz"
    np.savez(path, **{key: np.zeros((4, 2)) for key in arrays})
    with pytest.raises(ConfigError) as e:
        build_data(name, path=str(path), seed=0)
    one_line(e, f"data.path='{path}'", KEYS[name], lacks)


def test_cli_a_file_that_is_not_an_npz_is_one_error_line_and_exit_code_2(tmp_path):
    whole = tmp_path / "whole.npz"
    np.savez(whole, **{key: np.zeros(50) for key in ("x_train", "y_train", "x_test", "y_test")})
    path = tmp_path / "imdb.npz"
    path.write_bytes(whole.read_bytes()[:300])  # an interrupted copy
    result = run_train("data=imdb", "model=mlp", f"data.path={path}", cwd=tmp_path)
    error = one_error_line(result)
    assert f"data.path='{path}'" in error and "truncated zip archive" in error, error
    assert "x_train, y_train, x_test, y_test" in error
