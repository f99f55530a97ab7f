"""The book's §8.1 sampling: temperatures, the sliding window, and the seed text checked
before training."""

import numpy as np
import pytest

from helpers import write_text_file
from kerasrun.data import build_data
from kerasrun.errors import ConfigError
from kerasrun.training.text_samples import (
    generate,
    reweight_distribution,
    sample,
    text_sampler,
)

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
    data = build_data("text_file", path=str(write_text_file(tmp_path)), maxlen=10, seed=0)
    with pytest.raises(ConfigError, match="at least data.maxlen = 10 characters"):
        text_sampler(data=data, seed_text="the cat")
    with pytest.raises(ConfigError, match="with '!Z' not in the text"):
        text_sampler(data=data, seed_text="Zthe cat sat!")
    with pytest.raises(ConfigError, match="temperatures must be a list of positive numbers"):
        text_sampler(data=data, temperatures=[0.5, 0])
    with pytest.raises(ConfigError, match="Received: model.samples.seed=-1."):
        text_sampler(data=data, seed=-1)
