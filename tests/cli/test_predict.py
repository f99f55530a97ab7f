"""The real `predict` command on real runs, real image files and real texts, in subprocesses.

The image run is conftest's `trained_image_run` (reddish "cats", bluish "dogs", 32×32); the
text run is a real `train data=imdb_raw` on a tiny aclImdb tree; the ImageNet classifier is
MobileNetV2 with random weights saved to a local file, beside a fake class index of 1,000
names under `$KERAS_HOME/models/`. No test reaches the network: downloads go through a proxy
that is a closed port on 127.0.0.1.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import (
    command_runtime,
    help_output,
    only_run_dir,
    read_csv,
    run_train,
    write_aclimdb,
    write_image,
)
from kerasrun.rundir.layout import VOCABULARY
from kerasrun.rundir.run import load_images, open_run
from kerasrun.rundir.vocabulary import load_vocabulary, save_vocabulary

PREDICT = str(Path(sys.executable).with_name("predict"))
OFFLINE = {key: "http://127.0.0.1:9" for key in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy")}
OFFLINE["https_proxy"] = OFFLINE["HTTPS_PROXY"]


def run_predict(*overrides, cwd, env=None, timeout=300):
    """`predict <overrides>` in `cwd`; returns the CompletedProcess (stdout + stderr as text)."""
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **OFFLINE, **(env or {})}
    return subprocess.run(
        [PREDICT, *overrides],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )


def lines_of(result):
    """`{label: rest of the line}` of the prediction lines (label, two spaces, the classes)."""
    out = {}
    for line in result.stdout.splitlines():
        label, sep, rest = line.partition("  ")
        if sep and not line.startswith(("Model:", "Loading", "Error:")):
            out[label.strip()] = rest.strip()
    return out


def assert_one_error_line(result, *expected):
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, output[-3000:]
    for text in expected:
        assert text in errors[0], errors[0]
    assert "Traceback" not in output
    return errors[0]


def write_mixed_images(root):
    """Images of every kind a user has, under nested folders; returns {name: (path, colour)}.

    Colour 0 is reddish ("cats"), 1 bluish ("dogs"), None when the image has lost its colour.
    """
    from PIL import Image

    root.mkdir(parents=True)
    red = write_image(root / "red.jpg", 0, size=(40, 36), seed=1)
    images = {"red.jpg": (red, 0)}

    def add(name, colour, convert, size=(40, 36), **save):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        source = write_image(root / "tmp.png", colour if colour is not None else 0, size, seed=7)
        with Image.open(source) as image:
            convert(image.copy()).save(path, **save)
        source.unlink()
        images[name] = (path, colour)

    add("deep/er/blue_alpha.png", 1, lambda im: im.convert("RGBA"))  # alpha channel
    add("deep/gray.jpg", None, lambda im: im.convert("L"))  # grayscale JPEG
    add("deep/er/blue.gif", 1, lambda im: im.convert("P"))  # palette GIF
    add("big_red.JPG", 0, lambda im: im.resize((640, 480)))  # large, upper-case suffix
    add("tiny_blue.bmp", 1, lambda im: im.resize((3, 2)), size=(3, 2))
    (root / "deep" / "notes.txt").write_text("not an image: not even listed")
    broken = root / "deep" / "broken.jpg"
    broken.write_text("this is text, named .jpg")
    truncated = root / "truncated.jpg"
    truncated.write_bytes(red.read_bytes()[:300])  # a JPEG header, then nothing
    return images, broken, truncated


@pytest.fixture
def image_run(trained_image_run):
    run_dir, _ = trained_image_run
    return run_dir


# --- image runs -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_predicts_every_image_of_files_and_folders_and_agrees_with_the_model(tmp_path, image_run):
    images, broken, truncated = write_mixed_images(tmp_path / "mine")
    single = write_image(tmp_path / "dog.png", 1, size=(28, 30), seed=3)
    result = run_predict(
        f"run={image_run}",
        f"inputs=[{single},{tmp_path / 'mine'}]",
        "output=out/preds.csv",
        cwd=tmp_path,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    shown = lines_of(result)

    # One line per image file, recursive; the text file is not an image file: not listed.
    expected = [str(single)] + sorted(str(p) for p, _ in images.values())
    expected += [str(broken), str(truncated)]
    assert sorted(shown) == sorted(expected)
    assert shown[str(broken)] == "error: not an image"
    assert shown[str(truncated)].startswith("error: cannot be read")
    assert "notes.txt" not in result.stdout
    assert "7 predictions, 2 inputs not read" in result.stdout
    # train's runtime set-up, the run's precision and seed (training.runtime.set_up_command).
    assert command_runtime(result.stdout) == ("CPU", "float32", "the run's", 42)

    # Default top_k = min(3, 2 classes): both classes, the most probable first.
    for path, colour in [(single, 1), *images.values()]:
        names = [part.split()[0] for part in shown[str(path)].split(" | ")]
        assert sorted(names) == ["cats", "dogs"], shown[str(path)]
        if colour is not None:  # reddish → cats, bluish → dogs: the model learned that
            assert names[0] == ["cats", "dogs"][colour], (path, shown[str(path)])

    # The CSV: every file, the predicted class and every class's probability, summing to 1.
    rows = read_csv(tmp_path / "out" / "preds.csv")
    assert list(rows[0]) == ["file", "predicted", "cats", "dogs", "error"]
    assert sorted(row["file"] for row in rows) == sorted(expected)
    by_file = {row["file"]: row for row in rows}
    assert by_file[str(broken)]["error"] == "not an image" and by_file[str(broken)]["cats"] == ""
    good = [row for row in rows if not row["error"]]
    probabilities = np.array([[float(row["cats"]), float(row["dogs"])] for row in good])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert [row["predicted"] for row in good] == [
        ["cats", "dogs"][i] for i in probabilities.argmax(axis=1)
    ]

    # The same numbers as the run's model on the same files, here in the test process.
    run = open_run(image_run)
    paths = [Path(row["file"]) for row in good]
    sigmoid = run.load_model().predict(load_images(paths, (32, 32, 3)), verbose=0)[:, 0]
    np.testing.assert_allclose(probabilities[:, 1], sigmoid, atol=1e-5)


@pytest.mark.slow
def test_top_k_batches_and_the_last_checkpoint(tmp_path, image_run):
    """top_k=1 shows one class (the CSV still has all); batches of 2 keep the input order."""
    folder = tmp_path / "few"
    for i in range(5):
        write_image(folder / f"{i}.png", i % 2, seed=i)
    (folder / "2.png").write_text("not a PNG")  # an error in the middle of a batch
    result = run_predict(
        f"run={image_run}",
        f"inputs=[{folder}]",
        "top_k=1",
        "batch_size=2",
        "checkpoint=last",
        f"output={tmp_path / 'p.csv'}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert str(image_run / "model.keras") in result.stdout  # checkpoint=last
    shown = lines_of(result)
    assert list(shown) == [str(folder / f"{i}.png") for i in range(5)]
    for i in (0, 1, 3, 4):
        name, percent = shown[str(folder / f"{i}.png")].split()
        assert name == ["cats", "dogs"][i % 2] and percent.endswith("%")
    assert shown[str(folder / "2.png")] == "error: not an image"
    rows = read_csv(tmp_path / "p.csv")
    assert [row["file"] for row in rows] == list(shown)
    assert all(row["cats"] and row["dogs"] for row in rows if not row["error"])


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides, expected",
    [
        ([], ["inputs must name at least one image", "inputs=[]"]),
        (["inputs=[/nonexistent/cat.jpg]"], ["/nonexistent/cat.jpg", "does not exist"]),
        (["inputs=[{photo}]", "top_k=0"], ["top_k must be a positive integer", "top_k=0"]),
        (["inputs=[{photo}]", "top_k=abc"], ["top_k", "'abc'"]),
        (["inputs=[{photo}]", "top_k=5"], ["top_k must be at most", "(2)", "top_k=5"]),
        (["inputs=[{photo}]", "batch_size=0"], ["batch_size", "batch_size=0"]),
        (["inputs=[{photo}]", "output=preds.txt"], ["output must be", ".csv"]),
        (["inputs=[{text}]"], ["at least one image that can be read", "not an image"]),
        (["inputs=[{photo}]", "backbone=ResNet50"], ["either run", "not both"]),
        (["inputs=[{photo}]", "weights=x.h5"], ["weights applies to backbone"]),
        (["inputs=[{photo}]", "checkpoint=middle"], ["checkpoint must be best, last"]),
    ],
)
def test_user_mistakes_are_one_error_line(tmp_path, image_run, overrides, expected):
    photo = write_image(tmp_path / "cat.jpg", 0)
    text = tmp_path / "cat2.jpg"
    text.write_text("not an image")
    overrides = [o.format(photo=photo, text=text) for o in overrides]
    result = run_predict(f"run={image_run}", *overrides, cwd=tmp_path)
    assert_one_error_line(result, *expected)
    assert "Loading" not in result.stdout  # refused before the model was loaded


@pytest.mark.slow
def test_a_run_without_a_model_or_without_a_run_is_one_error_line(tmp_path, image_run):
    photo = write_image(tmp_path / "cat.jpg", 0)
    run = shutil.copytree(image_run, tmp_path / "run")
    (run / "checkpoints" / "best.keras").unlink()
    (run / "model.keras").unlink()
    result = run_predict(f"run={run}", f"inputs=[{photo}]", cwd=tmp_path)
    assert_one_error_line(result, "checkpoint=best needs", "best.keras")
    result = run_predict(f"inputs=[{photo}]", cwd=tmp_path)
    assert_one_error_line(result, "either run", "neither")
    result = run_predict(f"run={tmp_path / 'nowhere'}", f"inputs=[{photo}]", cwd=tmp_path)
    assert_one_error_line(result, "run must be a run directory", "does not exist")


@pytest.mark.slow
def test_a_run_on_data_predict_cannot_read_yet_says_so(tmp_path, image_run):
    import yaml

    run = shutil.copytree(image_run, tmp_path / "run")
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["data"]["name"] = "jena_climate"
    config["data_info"]["input_shape"] = [120, 14]
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    photo = write_image(tmp_path / "cat.jpg", 0)
    result = run_predict(f"run={run}", f"inputs=[{photo}]", cwd=tmp_path)
    assert_one_error_line(result, "not supported yet for data=jena_climate")


def test_help_lists_the_keys_without_importing_tensorflow(tmp_path):
    out, tensorflow = help_output("predict", "kerasrun.predict", cwd=tmp_path)
    assert not tensorflow
    for key in ("run:", "inputs:", "checkpoint:", "top_k:", "output:", "batch_size:", "backbone:"):
        assert key in out, key
    assert "predict backbone=ResNet50 inputs=[cat.jpg]" in out
    assert not list(tmp_path.iterdir())  # no outputs/ or .hydra/ of its own


# --- ImageNet classifiers -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mobilenet_weights(tmp_path_factory):
    """A MobileNetV2 classifier's random weights, saved as a local `.weights.h5` file.

    A random MobileNetV2's features are all but zero, so its outputs would be uniform: a random
    bias on the last layer gives each class its own probability (a top 3 worth checking).
    """
    import keras

    path = tmp_path_factory.mktemp("weights") / "mobilenet_v2.weights.h5"
    model = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))
    bias = np.random.default_rng(0).normal(0, 1, 1000).astype("float32")
    model.get_layer("predictions").bias.assign(bias)
    model.save_weights(path)
    keras.backend.clear_session()
    return path


def fake_class_index(keras_home):
    """`<keras_home>/models/imagenet_class_index.json`: 1,000 made-up classes, two "crane"s."""
    index = {str(i): [f"n{i:08d}", f"class_{i}"] for i in range(1000)}
    index["134"][1] = index["517"][1] = "crane"  # as ImageNet's bird and machine
    path = keras_home / "models" / "imagenet_class_index.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(index))
    return index


@pytest.mark.slow
def test_backbone_with_a_local_weights_file(tmp_path, mobilenet_weights):
    import keras

    home = tmp_path / "keras_home"
    index = fake_class_index(home)
    cat = write_image(tmp_path / "cat.jpg", 0, size=(300, 200))
    blue = write_image(tmp_path / "blue.png", 1)
    result = run_predict(
        "backbone=mobilenetv2",
        f"weights={mobilenet_weights}",
        f"inputs=[{cat},{blue}]",
        "output=preds.csv",
        cwd=tmp_path,
        env={"KERAS_HOME": str(home)},
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "keras.applications.MobileNetV2" in result.stdout
    assert command_runtime(result.stdout) == ("CPU", "float32", "no run", 0)  # train's set-up
    shown = lines_of(result)
    assert sorted(shown) == sorted([str(cat), str(blue)])
    rows = read_csv(tmp_path / "preds.csv")
    names = [name for _, name in index.values()]
    classes = list(rows[0])[2:-1]
    assert len(classes) == 1000 and "crane_134" in classes and "crane_517" in classes
    probabilities = np.array([[float(row[c]) for c in classes] for row in rows])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
    for row, p, path in zip(rows, probabilities, (cat, blue), strict=True):
        top3 = np.argsort(-p, kind="stable")[:3]
        shown_names = [part.rsplit(" ", 1)[0] for part in shown[str(path)].split(" | ")]
        assert shown_names == [names[i] for i in top3]  # decode_predictions' top 3
        assert row["predicted"] == names[top3[0]]

    # The same numbers as keras.applications with its own preprocess_input, in this process.
    model = keras.applications.MobileNetV2(weights=str(mobilenet_weights))
    images = load_images([cat, blue], (224, 224, 3))
    expected = model.predict(keras.applications.mobilenet_v2.preprocess_input(images), verbose=0)
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    keras.backend.clear_session()


@pytest.mark.slow
def test_backbone_offline_says_which_file_is_missing_and_where(tmp_path, mobilenet_weights):
    home = tmp_path / "keras_home"
    cat = write_image(tmp_path / "cat.jpg", 0)
    env = {"KERAS_HOME": str(home)}
    # No class index, no network: the file and the folder to put it in.
    result = run_predict(
        "backbone=MobileNetV2",
        f"weights={mobilenet_weights}",
        f"inputs=[{cat}]",
        cwd=tmp_path,
        env=env,
    )
    assert_one_error_line(
        result, "imagenet_class_index.json", str(home / "models" / "imagenet_class_index.json")
    )
    assert not (home / "models" / "imagenet_class_index.json").exists()  # no partial file
    # With the class index but weights=imagenet: the weights file, and where it goes.
    fake_class_index(home)
    result = run_predict("backbone=MobileNetV2", f"inputs=[{cat}]", cwd=tmp_path, env=env)
    error = assert_one_error_line(result, "ImageNet weights of MobileNetV2", str(home / "models"))
    assert "mobilenet_v2_weights" in error and "weights=/path/to/" in error
    # A weights file of another model, an unknown backbone, a missing weights file.
    result = run_predict(
        "backbone=ResNet50",
        f"weights={mobilenet_weights}",
        f"inputs=[{cat}]",
        cwd=tmp_path,
        env=env,
    )
    assert_one_error_line(result, "weights must be a weights file of ResNet50")
    assert "UserWarning" not in result.stderr
    result = run_predict("backbone=ResNet9000", f"inputs=[{cat}]", cwd=tmp_path, env=env)
    assert_one_error_line(result, "Unknown backbone", "ResNet50", "ResNet9000")
    result = run_predict("backbone=VGG16", "weights=nowhere.h5", f"inputs=[{cat}]", cwd=tmp_path)
    assert_one_error_line(result, "weights=", "nowhere.h5", "does not exist")


# --- texts ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    """A real `train data=imdb_raw` run on a tiny aclImdb whose second word is the class.

    Until train.py saves `<run>/vocabulary.txt` itself (see `save_vocabulary`), it is
    written here the way raw_text adapts it: on the run's seeded training split.
    """
    import keras

    from kerasrun.data import raw_text

    cwd = tmp_path_factory.mktemp("text")
    aclimdb = write_aclimdb(cwd / "data")
    result = run_train(
        "data=imdb_raw",
        f"data.root={aclimdb}",
        "data.train_samples=60",
        "data.validation_samples=20",
        "data.max_tokens=200",
        "data.output_sequence_length=10",
        "data.batch_size=8",
        "model=embedding_flatten",
        "model.num_words=200",
        "trainer.epochs=10",
        "optimizer=adam",
        "optimizer.learning_rate=0.01",
        cwd=cwd,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    run_dir = only_run_dir(cwd)
    if not (run_dir / VOCABULARY).exists():
        texts, _ = raw_text.read_reviews(aclimdb, "train")
        order = np.random.default_rng(42).permutation(len(texts))  # train.yaml's seed
        vectorizer = keras.layers.TextVectorization(max_tokens=200, output_sequence_length=10)
        vectorizer.adapt(np.asarray([texts[i] for i in order[:60]]), batch_size=1024)
        save_vocabulary(run_dir, vectorizer.get_vocabulary())
    keras.backend.clear_session()
    return run_dir


@pytest.mark.slow
def test_texts_files_and_folders_of_an_imdb_raw_run(tmp_path, text_run):
    import keras

    reviews = tmp_path / "reviews"
    (reviews / "more").mkdir(parents=True)
    (reviews / "good.txt").write_text("uniq5 great wonderful superb film<br />the end")
    (reviews / "more" / "bad.txt").write_bytes(b"uniq9 awful boring dull caf\xe9 movie")
    (reviews / "more" / "ignored.md").write_text("not a .txt file")
    single = tmp_path / "single.txt"
    single.write_text("a great great story")
    literal = "the awful and dull plot"
    long_text = "great " * 20
    result = run_predict(
        f"run={text_run}",
        f'inputs=[{single},{reviews},"{literal}","{long_text.strip()}"]',
        "output=texts.csv",
        cwd=tmp_path,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "vocabulary.txt" in result.stdout
    shown = lines_of(result)
    good, bad = str(reviews / "good.txt"), str(reviews / "more" / "bad.txt")
    quoted = json.dumps(literal)
    assert list(shown)[:4] == [str(single), good, bad, quoted]
    assert len(shown) == 5 and "ignored.md" not in result.stdout
    assert any(label.endswith('..."') and len(label) <= 42 for label in shown)  # cut for show
    for label, first in ((str(single), "positive"), (good, "positive"), (bad, "negative")):
        assert shown[label].split()[0] == first, shown[label]
    assert shown[quoted].split()[0] == "negative"

    rows = read_csv(tmp_path / "texts.csv")
    assert list(rows[0]) == ["input", "predicted", "negative", "positive", "error"]
    assert rows[3]["input"] == literal and rows[4]["input"] == long_text.strip()  # whole texts
    probabilities = np.array([[float(r["negative"]), float(r["positive"])] for r in rows])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)

    # The same numbers as the model on the same texts vectorized with the run's vocabulary.
    run = open_run(text_run)
    vectorizer = keras.layers.TextVectorization(
        max_tokens=200, output_sequence_length=10, vocabulary=load_vocabulary(text_run)
    )
    texts = [
        single.read_text(),
        (reviews / "good.txt").read_text().replace("<br />", " "),
        (reviews / "more" / "bad.txt").read_bytes().decode("utf-8", errors="replace"),
        literal,
        long_text.strip(),
    ]
    sigmoid = run.load_model().predict(vectorizer(np.asarray(texts)), verbose=0)[:, 0]
    np.testing.assert_allclose(probabilities[:, 1], sigmoid, atol=1e-5)
    keras.backend.clear_session()


@pytest.mark.slow
def test_text_mistakes_are_one_error_line(tmp_path, text_run):
    result = run_predict(f"run={text_run}", "inputs=[missing_review.txt]", cwd=tmp_path)
    assert_one_error_line(result, "missing_review.txt does not exist")
    result = run_predict(f"run={text_run}", cwd=tmp_path)
    assert_one_error_line(result, "inputs must name at least one text")
    run = shutil.copytree(text_run, tmp_path / "run")
    (run / "vocabulary.txt").unlink()
    result = run_predict(f"run={run}", "inputs=[great]", cwd=tmp_path)
    assert_one_error_line(result, "vocabulary.txt", "Train the run again")
