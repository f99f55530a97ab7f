"""Generated text after each epoch: the book's §8.1 sampling loop as a Keras callback.

Listing 8-7: after each epoch, pick a random `maxlen`-character seed in the text and, for
each temperature in [0.2, 0.5, 1.0, 1.2], generate 400 characters one at a time: one-hot the
last `maxlen` characters, predict the next character's distribution, reweight it by the
temperature and draw from it (listing 8-6, `sample`). "A temperature of 0.5 yields the most
interesting text in this particular setup."

Here the temperatures are generated together, one row of a batch each (400 model calls per
epoch, not 1,600), through one compiled `tf.function`. Each epoch's texts go to TensorBoard's
text tab (`<log_dir>/samples`, step = epoch, like the scalars), to `<dir>/epoch_NNN.txt` in
full, and to the console and train.log as one truncated line per temperature.
numpy and TensorFlow are imported inside the functions.
"""

import logging
import time
from pathlib import Path

from kerasrun.errors import ConfigError, require
from kerasrun.rundir.layout import SAMPLES

log = logging.getLogger("kerasrun")

CONSOLE_CHARS = 100  # of each sample on the console; TensorBoard and the file get them all


def reweight_distribution(preds, temperature):
    """The book's softmax temperature: `exp(log(preds) / temperature)`, normalised.

    A low temperature concentrates the distribution on its most likely entries (greedy, at
    the limit); 1 leaves it as it is; above 1 flattens it (more surprise, more entropy).

    Args:
        preds: probabilities, shape `(n,)` or `(batch, n)` (the last axis sums to 1).
        temperature: a positive number, or one per row.

    Returns:
        float64 probabilities of the same shape, each row summing to 1.
    """
    import numpy as np

    preds = np.asarray(preds, dtype="float64")
    temperature = np.asarray(temperature, dtype="float64")
    if preds.ndim == 2 and temperature.ndim == 1:
        temperature = temperature[:, None]
    with np.errstate(divide="ignore"):  # log(0) = -inf: a character that stays impossible
        logits = np.log(preds) / temperature
    # Minus the max before exp (the same after normalising): no overflow at T = 0.01.
    weights = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return weights / weights.sum(axis=-1, keepdims=True)


def sample(preds, temperature, rng):
    """The book's `sample`: the index of one draw from `preds` reweighted by `temperature`.

    Args:
        preds: probabilities of shape `(n,)`.
        temperature: a positive number.
        rng: a `numpy.random.Generator`.
    """
    import numpy as np

    return int(np.argmax(rng.multinomial(1, reweight_distribution(preds, temperature))))


def generate(predict, seed_codes, *, temperatures, length, n_chars, rng):
    """`length` characters per temperature after `seed_codes`, as the book's loop.

    Args:
        predict: `predict(x)` → next-character probabilities `(batch, n_chars)` for one-hot
            sequences `x` of shape `(batch, maxlen, n_chars)` (float32).
        seed_codes: the seed's character indices, `maxlen` of them.
        temperatures: one row of the batch each.
        length: characters to generate.
        n_chars: the number of characters.
        rng: a `numpy.random.Generator` (the draws).

    Returns:
        int array `(len(temperatures), length)` of character indices.
    """
    import numpy as np

    one_hot = np.eye(n_chars, dtype="float32")
    window = np.tile(np.asarray(seed_codes, dtype="int64"), (len(temperatures), 1))
    out = np.empty((len(temperatures), length), dtype="int64")
    for i in range(length):
        preds = np.asarray(predict(one_hot[window]))
        out[:, i] = [sample(p, t, rng) for p, t in zip(preds, temperatures, strict=True)]
        window = np.concatenate([window[:, 1:], out[:, i : i + 1]], axis=1)  # slide by one
    return out


def text_sampler(
    *,
    data,
    log_dir=None,
    temperatures=(0.2, 0.5, 1.0, 1.2),
    length=400,
    seed_text=None,
    seed=None,
    dir=None,
):
    """The `keras.callbacks.Callback` writing generated text after each epoch.

    Args:
        data: the `DataBundle` of `data=text_file` (its characters and training text).
        log_dir: TensorBoard's directory (the samples go to its `samples/`), or `None`.
        temperatures: a list of positive numbers (the book's 0.2, 0.5, 1.0, 1.2).
        length: characters generated per temperature (the book's 400).
        seed_text: the text to continue (its last `maxlen` characters), or `None` for a
            random `maxlen`-character piece of the training text each epoch (the book's).
        seed: fixes the random seed texts and draws: epoch `e` of a run always samples the
            same, also after a resume; `None` = drawn from the run's `seed` (`train` seeds
            numpy's global generator with it before building the callbacks).
        dir: the folder of the `epoch_NNN.txt` files; `None` = `<run>/samples`, beside
            TensorBoard's `<run>/tensorboard` (none without the tensorboard logger).

    Raises:
        ConfigError: a bad key, a data without text, or a seed text the data cannot encode.
    """
    require(
        getattr(data, "text", None) and getattr(data, "characters", None),
        "model=text_generation samples text from a character-level text: use data=text_file. "
        f"Received: data source {getattr(data, 'source', '?')!r}.",
    )
    temperatures = _check_temperatures(temperatures)
    require(
        isinstance(length, int) and not isinstance(length, bool) and length > 0,
        f"model.samples.length must be a positive integer (characters per temperature). "
        f"Received: model.samples.length={length!r}. Set e.g. model.samples.length=400.",
    )
    require(
        seed is None or isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0,
        "model.samples.seed must be a non-negative integer, or null for one drawn from the "
        f"run's seed. Received: model.samples.seed={seed!r}. Set e.g. model.samples.seed=0.",
    )
    maxlen, chars = data.input_shape[0], list(data.characters)
    if seed is None:
        import numpy as np

        seed = int(np.random.randint(2**31))
    if dir is None and log_dir:  # (YAML cannot say ${paths.output_dir}: conf tests resolve it)
        dir = Path(log_dir).parent / SAMPLES
    if seed_text is not None:
        seed_text = _check_seed_text(seed_text, maxlen, chars)
    return _callback_class()(
        chars=chars,
        text=data.text,
        maxlen=maxlen,
        temperatures=temperatures,
        length=length,
        seed_text=seed_text,
        seed=seed,
        log_dir=log_dir,
        dir=dir,
    )


def _check_temperatures(temperatures):
    ok = isinstance(temperatures, (list, tuple)) and len(temperatures) > 0
    ok = ok and all(
        isinstance(t, (int, float)) and not isinstance(t, bool) and t > 0 for t in temperatures
    )
    require(
        ok,
        "model.samples.temperatures must be a list of positive numbers. Received: "
        f"model.samples.temperatures={temperatures!r}. "
        "Set e.g. model.samples.temperatures=[0.2,0.5,1.0,1.2].",
    )
    return [float(t) for t in temperatures]


def _check_seed_text(seed_text, maxlen, chars):
    require(
        isinstance(seed_text, str) and len(seed_text) >= maxlen,
        f"model.samples.seed_text must be a text of at least data.maxlen = {maxlen} characters "
        f"(the model reads the last {maxlen}). Received: model.samples.seed_text="
        f"{seed_text!r}. Make it longer, or null for a random seed from the text.",
    )
    unknown = "".join(sorted(set(seed_text) - set(chars)))
    if unknown:
        raise ConfigError(
            "model.samples.seed_text may only hold characters of the text (lowercased with "
            f"data.lowercase=true). Received: model.samples.seed_text={seed_text!r}, with "
            f"{unknown!r} not in the text. Remove them, or set it to null for a random seed "
            "from the text."
        )
    return seed_text[-maxlen:]


def _callback_class():
    """The callback's class, defined once Keras is imported (not at import time)."""
    import keras

    class TextSamples(keras.callbacks.Callback):
        def __init__(
            self, *, chars, text, maxlen, temperatures, length, seed_text, seed, log_dir, dir
        ):
            super().__init__()
            self.chars, self.text, self.maxlen = chars, text, maxlen
            self.indices = {c: i for i, c in enumerate(chars)}
            self.temperatures, self.length = temperatures, length
            self.seed_text, self.seed = seed_text, seed
            self.log_dir = Path(log_dir) / SAMPLES if log_dir else None
            self.dir = Path(dir) if dir else None
            self._predict = self._writer = None

        def on_epoch_end(self, epoch, logs=None):
            import numpy as np

            start_time = time.perf_counter()
            rng = np.random.default_rng([self.seed, epoch])  # the same after a resume
            seed_text = self.seed_text
            if seed_text is None:
                start = int(rng.integers(0, len(self.text) - self.maxlen + 1))
                seed_text = self.text[start : start + self.maxlen]
            codes = generate(
                self._predictor(),
                [self.indices[c] for c in seed_text],
                temperatures=self.temperatures,
                length=self.length,
                n_chars=len(self.chars),
                rng=rng,
            )
            texts = ["".join(self.chars[i] for i in row) for row in codes]
            self._write(epoch, seed_text, texts, time.perf_counter() - start_time)

        def _predictor(self):
            # One traced graph for all 400 calls (an eager call of the model costs far more),
            # XLA-compiled on a CPU: 1.9 ms a character instead of 4.7 (4 temperatures,
            # maxlen 60, measured here), for a compile of about 1 s. Not on a GPU, where
            # cuDNN's LSTM does not compile with XLA.
            if self._predict is None:
                import tensorflow as tf

                model = self.model
                spec = tf.TensorSpec((len(self.temperatures), self.maxlen, len(self.chars)))
                self._predict = tf.function(
                    lambda x: model(x, training=False),
                    input_signature=[spec],
                    jit_compile=not tf.config.list_logical_devices("GPU"),
                    autograph=False,
                )
            return self._predict

        def _write(self, epoch, seed_text, texts, seconds):
            number = epoch + 1  # as the console's "Epoch 3/10"; TensorBoard's step is `epoch`
            path = None
            if self.dir is not None:
                path = self.dir / f"epoch_{number:03d}.txt"
                path.parent.mkdir(parents=True, exist_ok=True)
                parts = [f"Epoch {number}, seed: {seed_text!r}\n"]
                for t, text in zip(self.temperatures, texts, strict=True):
                    parts.append(f"\n--- temperature {t:g} ---\n{seed_text}{text}\n")
                path.write_text("".join(parts), encoding="utf-8")
            if self.log_dir is not None:
                import tensorflow as tf

                if self._writer is None:
                    self._writer = tf.summary.create_file_writer(str(self.log_dir))
                with self._writer.as_default():
                    tf.summary.text("seed", code_block(seed_text), step=epoch)
                    for t, text in zip(self.temperatures, texts, strict=True):
                        tf.summary.text(f"temperature_{t:g}", code_block(text), step=epoch)
                self._writer.flush()
            full = f" (in full: {path})" if path else ""
            log.info(
                f"Samples after epoch {number} ({seconds:.1f} s), seed {_one_line(seed_text)}"
                f"{full}:"
            )
            for t, text in zip(self.temperatures, texts, strict=True):
                log.info(f"  temperature {t:g}: {_one_line(text, CONSOLE_CHARS)}")

        def on_train_end(self, logs=None):
            if self._writer is not None:
                self._writer.close()
                self._writer = None

    return TextSamples


def code_block(text):
    """`text` as a Markdown code block (TensorBoard's text tab renders Markdown): shown as
    generated, line breaks and `*` included. The fence is longer than any backtick run in it."""
    longest, run = 0, 0
    for c in text:
        run = run + 1 if c == "`" else 0
        longest = max(longest, run)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{text}\n{fence}"


def from_code_block(markdown):
    """The text of a `code_block`."""
    fence = markdown[: len(markdown) - len(markdown.lstrip("`"))]
    return markdown[len(fence) + 1 : -(len(fence) + 1)]


def _one_line(text, limit=None):
    """`text` quoted on one line (a line break shows as ⏎), cut to `limit` characters."""
    shown = text.replace("\n", "⏎")
    if limit and len(shown) > limit:
        shown = shown[: limit - 1] + "…"
    return f'"{shown}"'
