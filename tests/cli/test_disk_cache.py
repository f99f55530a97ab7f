"""`data.cache=disk`: the decoded images in files under the run, safe from a kill."""

import os
import subprocess
import sys
import time

import pytest

from helpers import (
    CATS_AND_DOGS,
    make_class_folder,
    one_error_line,
    only_run_dir,
    read_metrics,
    run_train,
)

CACHED_PASS = """
import os, sys
from kerasrun.data import build_data
data = build_data("image_folder", root=sys.argv[1], image_size=[150, 150], batch_size=32,
                  cache=sys.argv[2])
print("built", flush=True)
passes = [sum(int(x.shape[0]) for x, _ in data.train_dataset) for _ in range(2)]
print("passes", *passes, flush=True)
"""


@pytest.mark.skipif(not CATS_AND_DOGS.is_dir(), reason="needs ../shared/data")
def test_a_cache_killed_in_its_first_pass_is_written_again(tmp_path):
    cache = tmp_path / "cache"
    command = [sys.executable, "-c", CACHED_PASS, str(CATS_AND_DOGS / "train"), str(cache)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    first = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    assert first.stdout.readline().strip() == "built"
    deadline = time.monotonic() + 60
    while not list(cache.glob("train_*.lockfile")) and time.monotonic() < deadline:
        time.sleep(0.02)
    first.kill()  # SIGKILL while tf.data writes the cache: what a crash leaves
    first.communicate()
    assert list(cache.glob("train_*.lockfile")), "the first pass ended before the kill"
    assert not (cache / "train.index").exists()

    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "passes 1600 1600" in again.stdout  # 80% of 2,000 for training, twice
    assert (cache / "train.index").exists() and not list(cache.glob("*.lockfile"))


# The real `train`, watched through Python's audit hook for `shutil.rmtree` (which changes
# nothing): what the cache folder held at the moment the run deleted it.
WATCHED_TRAIN = """
import os, sys
from pathlib import Path

def watch(event, args):
    if event == "shutil.rmtree" and Path(args[0]).name == "cache":
        for f in sorted(Path(args[0]).iterdir()):
            print("cached", f.name, f.stat().st_size, flush=True)

sys.addaudithook(watch)
sys.argv = ["train", *sys.argv[1:]]
from kerasrun.train import main
main()
"""


def test_train_with_a_disk_cache_deletes_it_when_the_run_ends(tmp_path):
    root = make_class_folder(tmp_path / "photos", per_class=12, size=(40, 40))
    overrides = [
        "data=image_folder",
        f"data.root={root}",
        "data.image_size=[32,32]",
        "data.batch_size=4",
        "data.cache=disk",
        "model=convnet",
        "trainer.epochs=2",
    ]
    result = subprocess.run(
        [sys.executable, "-c", WATCHED_TRAIN, *overrides],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run = only_run_dir(tmp_path)
    metrics = read_metrics(run)
    assert metrics["epochs"] == 2
    # While the run lasted, each split's decoded 32x32x3 uint8 images were in complete
    # files under the run (an index: the first pass ended), not in memory.
    cached = dict(line.split()[1:] for line in result.stdout.splitlines() if "cached " in line)
    sizes = {"train": 19, "validation": 5}  # 24 photos, validation_split 0.2 (the default)
    assert "train 19 · validation 5 ·" in (run / "train.log").read_text()
    for split, n in sizes.items():
        assert f"{split}.index" in cached, result.stdout[-3000:]
        data = sum(int(size) for name, size in cached.items() if name.startswith(f"{split}.data"))
        assert data >= n * 32 * 32 * 3, (split, cached)
    assert not any(name.endswith(".lockfile") for name in cached)
    assert not (run / "cache").exists()  # 2 epochs read it; then nothing will again


def test_an_unknown_cache_value_is_one_line(tmp_path):
    line = one_error_line(run_train("data.cache=disc", cwd=tmp_path))
    assert "data.cache must be true" in line and "Received: data.cache='disc'" in line
