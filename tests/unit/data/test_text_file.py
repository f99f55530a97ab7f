"""The book's §8.1 character-level text generation: data=text_file, model=text_generation.

The data builder and the sampling functions in process, on tiny text files in tmp_path; one
real `train` run whose generated texts are read back from TensorBoard's event files with
TensorBoard's own reader, and from <run>/samples/.
"""

import hashlib
import math

import numpy as np
import pytest

from cli import only_run_dir, read_metrics, run_train
from kerasrun.data import build_data
from kerasrun.data.text_file import sequence_starts
from kerasrun.errors import ConfigError
from kerasrun.training.text_samples import (
    from_code_block,
    generate,
    reweight_distribution,
    sample,
    text_sampler,
)

TEXT = (
    "The Cat sat on the mat. The dog sat on the log.\n"
    "A bird sang in the tree, and the cat looked up at the bird.\n"
) * 3


def write(tmp_path, text=TEXT, name="text.txt"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def pairs(dataset, chars):
    """Every `(sequence, next character)` of a dataset of one-hot batches, decoded."""
    out = []
    for x, y in dataset:
        x, y = x.numpy(), y.numpy()
        assert x.dtype == np.float32 and np.all(x.sum(axis=-1) == 1)  # one-hot
        for seq, label in zip(x.argmax(axis=-1), y, strict=True):
            out.append(("".join(chars[i] for i in seq), chars[label]))
    return out


def book_pairs(text, maxlen, step):
    """Listing 8-3's loop."""
    return [(text[i : i + maxlen], text[i + maxlen]) for i in range(0, len(text) - maxlen, step)]


# --- data=text_file -------------------------------------------------------------------------


def test_the_books_sequences_one_hot_with_a_held_out_tail(tmp_path):
    data = build_data(
        "text_file",
        path=str(write(tmp_path)),
        maxlen=7,
        step=3,
        validation_split=0.25,
        batch_size=16,
        seed=0,
    )
    text = TEXT.lower()
    n_val = round(len(text) * 0.25)
    train_text, val_text = text[:-n_val], text[-n_val:]
    assert data.characters == sorted(set(text)) and "C" not in data.characters
    assert data.class_names == [repr(c) for c in data.characters]  # "'\\n'", printable
    assert data.input_shape == (7, len(data.class_names)) and data.task == "multiclass"
    assert data.sizes == {
        "train": len(range(0, len(train_text) - 7, 3)),
        "validation": len(range(0, len(val_text) - 7, 3)),
    }
    assert data.text == train_text  # the sampler's seeds never come from the held-out tail
    # Training sequences are shuffled; validation ones keep the text's order.
    train = pairs(data.train_dataset, data.characters)
    assert train != book_pairs(train_text, 7, 3)
    assert sorted(train) == sorted(book_pairs(train_text, 7, 3))
    assert pairs(data.validation_dataset, data.characters) == book_pairs(val_text, 7, 3)
    assert data.test_dataset is None


def test_no_validation_and_case_kept(tmp_path):
    data = build_data(
        "text_file",
        path=str(write(tmp_path)),
        maxlen=10,
        step=1,
        lowercase=False,
        validation_split=0,
        seed=0,
    )
    assert "C" in data.characters and data.validation_dataset is None
    assert (
        data.sizes == {"train": len(TEXT) - 10} == {"train": len(sequence_starts(len(TEXT), 10, 1))}
    )


def test_the_download_is_checked_and_read(tmp_path):
    # The download path (data.path=null) on a local file:// URL: get_file, sha256, cache.
    site = write(tmp_path, name="nietzsche.txt")
    url = site.as_uri()
    good = hashlib.sha256(site.read_bytes()).hexdigest()
    cache = tmp_path / "keras_home"
    with pytest.raises(ConfigError, match="does not match data.sha256"):
        build_data("text_file", url=url, sha256="0" * 64, cache_dir=str(cache), seed=0)
    data = build_data(
        "text_file", url=url, sha256=good, cache_dir=str(cache), validation_split=0, seed=0
    )
    assert (cache / "datasets" / "nietzsche.txt").read_bytes() == site.read_bytes()
    assert data.sizes["train"] == len(range(0, len(data.text) - 60, 3))


BAD_FILES = {
    "missing": (None, "which is not a file"),
    "empty": (b"", "which is empty (0 bytes)"),
    "white_space": (b"  \n\t\n", "which is only white space"),
    "binary": (b"%PDF-1.4\x00\x01\x02 some text", "a binary file (a NUL byte at offset 8)"),
    "latin1": ("caf\xe9 au lait, " * 10).encode("latin-1"),
}
BAD_FILES["latin1"] = (BAD_FILES["latin1"], "which is not UTF-8 (byte 0xe9 at offset 3)")


@pytest.mark.parametrize("case", BAD_FILES)
def test_a_bad_file_is_one_line(tmp_path, case):
    content, expected = BAD_FILES[case]
    path = tmp_path / "text.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError) as error:
        build_data("text_file", path=str(path), maxlen=5, seed=0)
    message = str(error.value)
    assert "\n" not in message and expected in message
    assert message.startswith(f"data.path must be a UTF-8 text file. Received: data.path='{path}'")


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (
            dict(maxlen=len(TEXT), validation_split=0),
            f"data.maxlen={len(TEXT)} with {len(TEXT):,} train characters",
        ),
        (dict(maxlen=60, validation_split=0.1), "data.maxlen=60 with 32 validation characters"),
        (dict(maxlen=0), "data.maxlen must be a positive integer. Received: data.maxlen=0."),
        (dict(step="3"), "data.step must be a positive integer. Received: data.step='3'."),
        (
            dict(validation_split=1),
            "data.validation_split must be a number in [0, 1) (a fraction of the data). "
            "Received: data.validation_split=1.",
        ),
    ],
    ids=["text_too_short", "tail_too_short", "maxlen_0", "step_string", "split_1"],
)
def test_bad_settings_are_one_line(tmp_path, overrides, expected):
    with pytest.raises(ConfigError, match=None) as error:
        build_data("text_file", path=str(write(tmp_path)), seed=0, **overrides)
    assert expected in str(error.value) and "\n" not in str(error.value)


# --- model=text_generation ------------------------------------------------------------------


def test_the_books_model_and_what_it_refuses():
    from kerasrun.models import build_model
    from kerasrun.tasks import Task

    model = build_model("text_generation", input_shape=(60, 57), task=Task("multiclass", 57))
    assert model.output_shape == (None, 57) and model.count_params() == 102_585  # listing 8-4
    with pytest.raises(ConfigError, match=r"use data=text_file. Received: input_shape=\[8, 8, 1\]"):
        build_model("text_generation", input_shape=(8, 8, 1), task=Task("multiclass", 10))


# --- sampling ---------------------------------------------------------------------------------


def test_temperature_reweighting():
    p = np.array([0.5, 0.3, 0.2, 0.0])
    np.testing.assert_allclose(reweight_distribution(p, 1.0), p)
    cold, hot = reweight_distribution(p, 0.2), reweight_distribution(p, 1.2)
    np.testing.assert_allclose(cold, np.array([0.5, 0.3, 0.2, 0]) ** 5 / np.sum(p[:3] ** 5))
    assert cold[0] > 0.9 and hot[0] < p[0] and cold[3] == hot[3] == 0  # impossible stays so
    # Rows of a batch, one temperature each; no overflow at a tiny temperature.
    # (The book's exp(log(p) / T) alone underflows to 0 / 0 = NaN at T = 0.001.)
    both = reweight_distribution(np.stack([p, p]), [0.2, 0.001])
    np.testing.assert_allclose(both[0], cold)
    assert both[1][0] == 1.0 and both[1][1:].max() < 1e-200

    rng = np.random.default_rng(0)
    draws = {
        t: np.bincount([sample(p, t, rng) for _ in range(2000)], minlength=4) for t in (0.2, 1.0)
    }
    assert draws[0.2][0] > 1750 and 900 < draws[1.0][0] < 1100  # 92% and 50% expected
    assert draws[0.2][3] == draws[1.0][3] == 0


def test_generate_slides_the_window_and_uses_known_characters():
    n_chars, maxlen = 6, 4

    def predict(x):  # a real next-character model: the last character + 1 (mod 6), mostly
        assert x.shape == (3, maxlen, n_chars)
        last = x[:, -1].argmax(axis=-1)
        p = np.full((len(x), n_chars), 0.02)
        p[np.arange(len(x)), (last + 1) % n_chars] = 0.9
        return p

    rng = np.random.default_rng(1)
    out = generate(
        predict, [0, 1, 2, 3], temperatures=[0.05, 1.0, 5.0], length=50, n_chars=6, rng=rng
    )
    assert out.shape == (3, 50) and out.min() >= 0 and out.max() < n_chars
    assert out[0].tolist() == [(4 + i) % 6 for i in range(50)]  # cold: the argmax chain
    follows = [np.mean((row[1:] - row[:-1]) % 6 == 1) for row in out]
    assert follows[0] == 1 and follows[1] > follows[2]  # hotter, more surprise


def test_seed_text_is_checked_before_training(tmp_path):
    data = build_data("text_file", path=str(write(tmp_path)), maxlen=10, seed=0)
    with pytest.raises(ConfigError, match="at least data.maxlen = 10 characters"):
        text_sampler(data=data, seed_text="the cat")
    with pytest.raises(ConfigError, match="with '!Z' not in the text"):
        text_sampler(data=data, seed_text="Zthe cat sat!")
    with pytest.raises(ConfigError, match="temperatures must be a list of positive numbers"):
        text_sampler(data=data, temperatures=[0.5, 0])
    with pytest.raises(ConfigError, match="Received: model.samples.seed=-1."):
        text_sampler(data=data, seed=-1)


# --- a real train run -------------------------------------------------------------------------


def tensorboard_texts(event_dir):
    """`{tag: [(step, text), ...]}` of the text summaries in `event_dir` (TensorBoard's reader)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    acc = EventAccumulator(str(event_dir), size_guidance={"tensors": 0})
    acc.Reload()
    out = {}
    for tag in acc.Tags()["tensors"]:
        assert acc.SummaryMetadata(tag).plugin_data.plugin_name == "text"
        for event in acc.Tensors(tag):
            value = tensor_util.make_ndarray(event.tensor_proto).item().decode("utf-8")
            out.setdefault(tag, []).append((event.step, from_code_block(value)))
    return out


def test_train_writes_samples_per_temperature_each_epoch(tmp_path):
    text = write(tmp_path, TEXT * 6)
    result = run_train(
        "model=text_generation",
        "data=text_file",
        f"data.path={text}",
        "data.maxlen=10",
        "data.batch_size=32",
        "trainer.epochs=2",
        "optimizer.learning_rate=0.01",
        cwd=tmp_path,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    run = only_run_dir(tmp_path)
    metrics = read_metrics(run)
    assert metrics["epochs"] == 2 and math.isfinite(metrics["loss"])
    assert math.isfinite(metrics["val_loss"]) and metrics["loss"] < math.log(len(set(TEXT.lower())))

    chars = set(TEXT.lower())
    texts = tensorboard_texts(run / "tensorboard" / "samples")
    temperatures = ["temperature_0.2", "temperature_0.5", "temperature_1", "temperature_1.2"]
    assert sorted(texts) == ["seed", *temperatures]
    for tag, values in texts.items():
        assert [step for step, _ in values] == [0, 1]  # the epochs, as TensorBoard's scalars
        for _, sample_text in values:
            assert len(sample_text) == (10 if tag == "seed" else 400)
            assert set(sample_text) <= chars
    # The files hold the same texts in full; the console one truncated line per temperature.
    for epoch in (1, 2):
        saved = (run / "samples" / f"epoch_{epoch:03d}.txt").read_text(encoding="utf-8")
        seed = texts["seed"][epoch - 1][1]
        for tag in temperatures:
            assert seed + texts[tag][epoch - 1][1] in saved
    log = (run / "train.log").read_text(encoding="utf-8")
    lines = [line for line in log.splitlines() if "  temperature " in line]
    assert len(lines) == 8 and all(len(line) < 200 for line in lines)
    assert log.count("Samples after epoch") == 2
