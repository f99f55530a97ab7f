"""Time series from a CSV: the book's Jena temperature forecasting pipeline (book §6.3).

A CSV with a header row is read into float rows (numpy only, no pandas), split in time
(train rows first, then validation, then test), and every feature is normalised with the
mean and std of the training rows only. As in the book's generator, each example is a window
of `lookback // step` rows sampled every `step` rows before row `i` (rows `i - lookback`,
`i - lookback + step`, ..., `i - step`), and its label is the (normalised) target column at
row `i + delay`: `step + delay` rows after the window's last row. Windows and their targets
never cross a split boundary.
`keras.utils.timeseries_dataset_from_array` builds the windows; training windows are shuffled.

The book's common-sense baseline (predict that the target equals its value at the window's
last row, `samples[:, -1, target]`) is computed over exactly the windows each split yields
and returned in `DataBundle.baseline`. numpy, TensorFlow and Keras are imported inside the
functions.
"""

import codecs
import csv
import os
from pathlib import Path

import kerasrun.data.download as download
from kerasrun.data.bundle import DataBundle
from kerasrun.data.checks import check_batch_size
from kerasrun.errors import ConfigError, check_int, require

JENA_URL = "https://s3.amazonaws.com/keras-datasets/jena_climate_2009_2016.csv.zip"
JENA_FILE = "jena_climate_2009_2016.csv"
JENA_TARGET = "T (degC)"


def jena_climate(
    *,
    root=None,
    path=None,
    url=JENA_URL,
    lookback=1440,
    step=6,
    delay=144,
    train_rows=200000,
    validation_rows=100000,
    batch_size=128,
    seed=0,
):
    """Jena climate 2009-2016: 420,551 rows of 14 weather measurements every 10 minutes.

    The book's settings (listing 6-34): target `T (degC)`, all 14 numeric columns as
    features, the first 200,000 rows for training, the next 100,000 for validation, the rest
    for testing; windows of 10 days (1440 rows) sampled hourly (every 6 rows), predicting the
    temperature 24 hours (144 rows) after the window's end (the book's 0.29 baseline MAE).

    Args:
        root: a folder holding `jena_climate_2009_2016.csv`, or `None`.
        path: the local `jena_climate_2009_2016.csv` itself, or `None`.
            Both `None`: download `url` (a zip) once into the Keras cache and extract it.
        url: where to download the zipped CSV from.
        lookback, step, delay, train_rows, validation_rows, batch_size, seed: as for
            `csv_timeseries`.
    """
    if path is None:
        if root is None:
            folder = download.get_file(
                url,
                size=None,
                extract=True,
                instead=f"set data.path=/path/to/{JENA_FILE} or data.root=/its/folder",
            )
            path = _find_in(Path(folder), JENA_FILE, key="url", value=url)
        else:
            folder = Path(os.path.expanduser(str(root)))
            require(
                folder.is_dir(),
                f"data.root must be a folder holding {JENA_FILE}. Received: "
                f"data.root='{folder}', which is not a folder. Fix the path, or set "
                "data.root=null to download it.",
            )
            path = _find_in(folder, JENA_FILE, key="root", value=str(folder))
    bundle = csv_timeseries(
        path=path,
        target=JENA_TARGET,
        features=None,
        lookback=lookback,
        step=step,
        delay=delay,
        train_rows=train_rows,
        validation_rows=validation_rows,
        batch_size=batch_size,
        seed=seed,
    )
    bundle.source = f"jena_climate: {path}"
    return bundle


def csv_timeseries(
    *,
    path=None,
    target=None,
    features=None,
    lookback=1440,
    step=6,
    delay=144,
    train_rows=None,
    validation_rows=None,
    batch_size=128,
    seed=0,
):
    """A regression on windows of a multivariate time series read from a CSV file.

    Args:
        path: a CSV file with a header row, one row per time step, oldest first.
        target: the name of the column to predict (required).
        features: a list of column names fed to the model, or `None` for every numeric column
            (a first non-numeric column such as "Date Time" is skipped). The target column is
            a feature only when listed (or when `features` is `None`).
        lookback: rows of history per example; the model sees `lookback // step` of them.
        step: keep one row in `step` (6: hourly for the 10-minute Jena data).
        delay: predict the target this many rows after the window's end, i.e.
            `step + delay` rows after its last row (the book's generator).
        train_rows: the first `train_rows` rows are the training split (`None`: 50%).
        validation_rows: the next rows are the validation split (`None`: 25% of all rows);
            the rest is the test split.
        batch_size: windows per batch.
        seed: the training shuffle seed.
    """
    import numpy as np

    _check_window(lookback, step, delay)
    check_batch_size(batch_size)
    for key, value, minimum in (
        ("train_rows", train_rows, 1),
        ("validation_rows", validation_rows, 0),
    ):
        check_int(
            f"data.{key}",
            value,
            minimum=minimum,
            allow_none=True,
            example=1000,
            why="null: the default split, 50% train, 25% validation, 25% test",
        )
    path, encoding, header, feature_cols, target_col = _columns(path, target, features)
    used = sorted(set(feature_cols) | {target_col})
    table = _read_floats(path, encoding, header, used)  # (rows, len(used)), float64
    values = {c: table[:, used.index(c)] for c in used}
    n = len(table)
    length = lookback // step
    ahead = step + delay  # rows from a window's last row to its target row (the book's)
    span = (length - 1) * step + ahead  # rows from a window's first row to its target row
    min_rows = span + 1
    require(
        n >= min_rows,
        f"data.path must hold at least {min_rows:,} rows for one window of lookback // step "
        f"= {length} rows every {step} rows plus a target {delay} rows after it. Received: "
        f"data.path='{path}' with {n:,} rows. Lower data.lookback or data.delay, or use a "
        "longer series.",
    )
    if train_rows is None:
        train_rows = n // 2
    if validation_rows is None:
        validation_rows = min(n // 4, max(n - train_rows, 0))
    require(
        train_rows + validation_rows <= n,
        f"data.train_rows + data.validation_rows must be at most the {n:,} rows of the file. "
        f"Received: data.train_rows={train_rows}, data.validation_rows={validation_rows}. "
        "Lower them (the rest of the rows is the test split).",
    )
    bounds = {
        "train": (0, train_rows),
        "validation": (train_rows, train_rows + validation_rows),
        "test": (train_rows + validation_rows, n),
    }
    for name, (start, stop) in bounds.items():
        rows = stop - start
        require(
            rows == 0 and name != "train" or rows >= min_rows,
            f"Every split must hold at least {min_rows:,} rows (one window of {length} rows "
            f"every {step} rows plus a target {delay} rows after it), or none. Received: "
            f"data.train_rows={train_rows}, data.validation_rows={validation_rows} give the "
            f"{name} split {rows:,} rows of {n:,}. Change them, or lower data.lookback or "
            "data.delay.",
        )

    train_stop = bounds["train"][1]
    mean = {c: values[c][:train_stop].mean() for c in used}
    std = {c: values[c][:train_stop].std() for c in used}
    for c in used:
        if std[c] == 0:
            std[c] = 1.0  # a constant column stays 0 instead of becoming NaN
    x = np.stack([(values[c] - mean[c]) / std[c] for c in feature_cols], axis=1)
    x = x.astype("float32")
    y = ((values[target_col] - mean[target_col]) / std[target_col]).astype("float32")

    datasets, sizes, baseline = {}, {}, {}
    for name, (start, stop) in bounds.items():
        windows = max(stop - start - span, 0)
        sizes[name] = windows
        if not windows:
            datasets[name] = None
            continue
        datasets[name] = _windows(
            x[start:stop],
            y[start:stop],
            length=length,
            step=step,
            ahead=ahead,
            windows=windows,
            training=name == "train",
            batch_size=batch_size,
            seed=seed,
        )
        if name != "train":
            mae = _naive_mae(y[start:stop], length=length, step=step, ahead=ahead)
            key = "val" if name == "validation" else name
            baseline[f"{key}_mae"] = mae
            baseline[f"{key}_mae_original"] = mae * float(std[target_col])

    return DataBundle.from_splits(
        datasets,
        input_shape=(length, len(feature_cols)),
        task="regression",
        class_names=[],
        sizes=sizes,
        source=f"csv_timeseries: {path} ({target_col!r} in {delay} rows)",
        batch_size=batch_size,
        baseline=baseline,
    )


def naive_baseline(targets, *, lookback, step, delay):
    """The book's common-sense MAE on one split's (normalised) target column.

    For every window the split yields (last row `j`, target row `j + step + delay`), predict
    the target as its value at `j`.
    """
    _check_window(lookback, step, delay)
    return _naive_mae(targets, length=lookback // step, step=step, ahead=step + delay)


# --- windows ---------------------------------------------------------------------------------


def _windows(x, y, *, length, step, ahead, windows, training, batch_size, seed):
    """Windows `x[s], x[s+step], …, x[s+(length-1)*step]` → `y[s+(length-1)*step+ahead]`."""
    import keras
    import tensorflow as tf

    last = (length - 1) * step  # offset of a window's last row from its first
    ds = keras.utils.timeseries_dataset_from_array(
        x[: windows + last],
        y[last + ahead : last + ahead + windows],
        sequence_length=length,
        sampling_rate=step if length > 1 else 1,  # one row: the rate is irrelevant
        batch_size=batch_size,
        shuffle=training,
        seed=seed if training else None,
    )
    return ds.prefetch(tf.data.AUTOTUNE)


def _naive_mae(y, *, length, step, ahead):
    import numpy as np

    last = (length - 1) * step
    windows = len(y) - last - ahead
    if windows <= 0:
        return float("nan")
    current = y[last : last + windows].astype("float64")
    future = y[last + ahead : last + ahead + windows].astype("float64")
    return float(np.mean(np.abs(future - current)))


# --- checks and the CSV ----------------------------------------------------------------------


def _check_window(lookback, step, delay):
    check_int("data.lookback", lookback, example=1440, why="rows of history; the book's 1440")
    check_int("data.step", step, example=6, why="one row kept in step; the book's 6")
    check_int(
        "data.delay", delay, example=144, why="rows ahead to predict; the book's 144, 24 hours"
    )
    require(
        lookback >= step,
        f"data.lookback must be at least data.step (a window holds lookback // step rows). "
        f"Received: data.lookback={lookback}, data.step={step}. Raise data.lookback or lower "
        "data.step.",
    )


def _find_in(folder, fname, *, key, value):
    direct = folder / fname
    if direct.is_file():
        return direct
    found = sorted(folder.rglob(fname))
    require(
        found,
        f"data.{key} must lead to a folder holding {fname}. Received: data.{key}={value!r}, "
        f"but {folder} does not hold it. Set data.path=/path/to/{fname}.",
    )
    return found[0]


def _columns(path, target, features):
    """The file's path, encoding and header, and the feature and target column indices."""
    require(
        path is not None,
        "data.path must be a CSV file with a header row. Received: data.path=None. "
        "Set data.path=/path/to/series.csv.",
    )
    path = Path(os.path.expanduser(str(path)))
    require(
        path.is_file(),
        f"data.path must be a CSV file with a header row. Received: data.path='{path}', "
        "which does not exist. Fix the path.",
    )
    encoding = _encoding(path)
    with open(path, newline="", encoding=encoding) as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        first = next(reader, None)
    require(
        header and first is not None,
        f"data.path must be a CSV file with a header row and data rows. Received: "
        f"data.path='{path}', which has {'no rows' if not header else 'only a header'}. "
        "Fix the path.",
    )
    # One column whose name holds a ';' or a tab: the file is not comma-separated (a
    # European spreadsheet's export, or Excel's "Unicode text"). Reading on would only fail
    # later, on "data.target", with a confusing list of one column.
    for sep, what in ((";", "semicolon"), ("\t", "tab")):
        require(
            len(header) > 1 or sep not in header[0],
            f"data.path must be a comma-separated CSV file. Received: data.path='{path}', "
            f"whose header line {header[0][:60]!r} has no comma but a {what}: a "
            f"{what}-separated file. Save it again with commas between the values (and '.' as "
            "the decimal point).",
        )
    listing = ", ".join(repr(h) for h in header)
    require(
        target is not None and str(target) in header,
        f"data.target must be a column of {path.name} ({listing}). Received: "
        f"data.target={target!r}. Set data.target to one of them.",
    )
    target_col = header.index(str(target))
    if features is None:
        feature_cols = [
            i for i in range(len(header)) if i > 0 or (i < len(first) and _is_float(first[i]))
        ]
    else:
        require(
            isinstance(features, (list, tuple))
            and features
            and all(isinstance(f, str) for f in features),
            f"data.features must be a non-empty list of column names of {path.name} "
            f"({listing}), or null for every numeric column. Received: "
            f"data.features={features!r}. Set e.g. data.features=[{header[-1]!r}].",
        )
        unknown = [f for f in features if f not in header]
        require(
            not unknown,
            f"data.features must be column names of {path.name} ({listing}). Received: "
            f"data.features={list(features)!r}; unknown: {', '.join(map(repr, unknown))}. "
            "Fix the names, or set data.features=null for every numeric column.",
        )
        feature_cols = [header.index(f) for f in dict.fromkeys(features)]
    return path, encoding, header, feature_cols, target_col


UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def _encoding(path):
    """The codec that reads the CSV `path`: UTF-8 (a BOM skipped), or UTF-16 with a BOM.

    There is no guessing: any other file is a one-line `ConfigError` that names it and its
    problem (empty, a zip archive, binary, or not UTF-8, with the line of the first bad
    byte), since a Latin-1 file read as something else would give wrong column names.
    """
    data = path.read_bytes()
    encoding = "utf-16" if data.startswith(UTF16_BOMS) else "utf-8-sig"
    convert = "Save it as UTF-8 CSV (e.g. iconv -f latin1 -t utf-8 in.csv > out.csv)."
    problem = None
    if not data:
        problem, fix = "which is empty (0 bytes)", "Fix the path, or write the series into it."
    elif data.startswith(b"PK\x03\x04"):
        problem = "which is a zip archive (a zipped download, or an Excel .xlsx?), not text"
        fix = "Unzip it and point data.path at the .csv inside, or export the sheet as CSV."
    elif encoding == "utf-8-sig" and b"\x00" in data:
        problem = "which holds NUL bytes: a binary file, or UTF-16 without a byte-order mark"
        fix = f"Point data.path at the CSV itself. {convert}"
    else:
        try:
            data.decode(encoding)
        except UnicodeDecodeError as e:
            if encoding == "utf-16":
                problem = "which starts with a UTF-16 byte-order mark but is not valid UTF-16"
            else:
                line = data.count(b"\n", 0, e.start) + 1
                problem = (
                    f"which is not UTF-8: byte {data[e.start]:#04x} on line {line:,} "
                    "(Latin-1 or Windows-1252?)"
                )
            fix = convert
    if problem is not None:
        raise ConfigError(
            "data.path must be a CSV text file in UTF-8 (or UTF-16 with a byte-order mark). "
            f"Received: data.path='{path}', {problem}. {fix}"
        )
    return encoding


def _is_float(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_floats(path, encoding, header, cols):
    """Columns `cols` of the CSV as a float64 `(rows, len(cols))` array, or a `ConfigError`.

    A missing, non-numeric or non-finite value is an error that names its column and its
    first row, and counts the rows that have one: dropping or filling rows of a time
    series would silently shift or invent time steps.
    """
    import numpy as np

    try:
        table = np.loadtxt(
            path,
            delimiter=",",
            skiprows=1,
            usecols=cols,
            dtype="float64",
            ndmin=2,
            quotechar='"',
            encoding=encoding,
        )
    except ValueError:
        table = None  # find the offending rows below, with the csv module
    if table is not None and np.isfinite(table).all():
        return table
    bad = []  # (line of the file, column, text, value) of each bad row's first bad value
    with open(path, newline="", encoding=encoding) as f:
        reader = csv.reader(f)
        next(reader)
        for line, row in enumerate(reader, start=2):
            for c in cols:
                text = row[c].strip() if c < len(row) else ""
                try:
                    value = float(text)
                except ValueError:
                    value = None
                if value is None or not np.isfinite(value):
                    bad.append((line, c, text, value))
                    break
    if bad:
        line, c, text, value = bad[0]
        kind = "non-numeric" if value is None else "non-finite"
        what = f"the {kind} value {text!r}" if text else "a missing value"
        more = f"; {len(bad) - 1:,} more rows have one too" if len(bad) > 1 else ""
        raise ConfigError(
            f"data.path must hold a number in every used column. Received: "
            f"data.path='{path}', whose column {header[c]!r} has {what} in data "
            f"row {line - 2:,} (0-based; line {line:,} of the file){more}. Fix or drop "
            "the bad rows, or leave the column out of data.features."
        )
    raise ConfigError(  # loadtxt failed but every value parses: e.g. a ragged row
        f"data.path must be a CSV file with the same number of columns on every line. "
        f"Received: data.path='{path}', which numpy cannot read as {len(header)} columns. "
        "Fix the file."
    )
