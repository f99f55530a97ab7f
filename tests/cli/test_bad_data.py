"""Bad data files through the real `train`: skipped files are counted and listed in
`<run>/bad_files.txt`, and a refused file (bad bytes, not an .npz, `data.on_bad_file=error`)
is one `Error:` line with exit code 2."""

import numpy as np
import pytest

from helpers import (
    corrupt_deflate_png,
    make_class_folder,
    one_error_line,
    only_run_dir,
    read_metrics,
    run_train,
    series_text,
    truncated_jpeg,
    write_aclimdb,
)

# --- image files ------------------------------------------------------------------------------


def photos_with_bad_files(tmp_path):
    root = make_class_folder(tmp_path / "photos", per_class=8, size=(16, 16), suffix=".png")
    truncated_jpeg(root / "cats" / "cut.jpg")
    (root / "dogs" / "empty.jpg").write_bytes(b"")
    (root / "dogs" / "chat_été_猫.jpg").write_text("not a photo")
    corrupt_deflate_png(root / "dogs" / "deflate.png")  # passes Pillow's verify, not a decode
    return root


@pytest.mark.slow
def test_train_counts_and_lists_the_skipped_files(tmp_path):
    root = photos_with_bad_files(tmp_path)
    result = run_train(
        "data=image_folder",
        f"data.root={root}",
        "data.image_size=[16,16]",
        "data.batch_size=8",
        "trainer.epochs=1",
        cwd=tmp_path,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    run = only_run_dir(tmp_path)
    assert f"Skipped 4 unreadable or empty files; they are listed in {run}" in (output)
    lines = (run / "bad_files.txt").read_text(encoding="utf-8").splitlines()
    listed = dict(line.split("\t") for line in lines)
    assert listed.keys() == {
        str(root / "cats" / "cut.jpg"),
        str(root / "dogs" / "chat_été_猫.jpg"),
        str(root / "dogs" / "deflate.png"),
        str(root / "dogs" / "empty.jpg"),
    }
    assert listed[str(root / "dogs" / "empty.jpg")] == "empty file (0 bytes)"
    assert listed[str(root / "dogs" / "deflate.png")].startswith("broken PNG")
    config = (run / "config.yaml").read_text()
    assert "train: 13" in config and "validation: 3" in config  # the 16 readable images


def test_train_with_on_bad_file_error_stops_before_training(tmp_path):
    root = photos_with_bad_files(tmp_path)
    result = run_train(
        "data=image_folder", f"data.root={root}", "data.on_bad_file=error", cwd=tmp_path
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    (error,) = [line for line in output.splitlines() if line.startswith("Error:")]
    assert str(root / "cats" / "cut.jpg") in error and "truncated" in error
    assert "data.on_bad_file=skip" in error
    assert "Traceback" not in output and "Epoch" not in output


def test_a_png_that_only_fails_to_decode_stops_on_bad_file_error_in_one_line(tmp_path):
    root = make_class_folder(tmp_path / "photos", per_class=4, size=(16, 16), suffix=".png")
    corrupt_deflate_png(root / "dogs" / "deflate.png")
    result = run_train(
        "data=image_folder",
        f"data.root={root}",
        "data.on_bad_file=error",
        "data.batch_size=4",
        "trainer.epochs=1",
        cwd=tmp_path,
    )
    error = one_error_line(result)
    assert str(root / "dogs" / "deflate.png") in error and "broken PNG" in error, error
    assert "Epoch" not in result.stdout + result.stderr


# --- text and series files --------------------------------------------------------------------


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


def test_cli_a_file_that_is_not_an_npz_is_one_error_line_and_exit_code_2(tmp_path):
    whole = tmp_path / "whole.npz"
    np.savez(whole, **{key: np.zeros(50) for key in ("x_train", "y_train", "x_test", "y_test")})
    path = tmp_path / "imdb.npz"
    path.write_bytes(whole.read_bytes()[:300])  # an interrupted copy
    result = run_train("data=imdb", "model=mlp", f"data.path={path}", cwd=tmp_path)
    error = one_error_line(result)
    assert f"data.path='{path}'" in error and "truncated zip archive" in error, error
    assert "x_train, y_train, x_test, y_test" in error
