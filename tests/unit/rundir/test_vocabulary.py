"""A text run's vocabulary, saved and read back for `predict`."""

from kerasrun.rundir.vocabulary import load_vocabulary, save_vocabulary


def test_vocabulary_round_trip_keeps_every_index(tmp_path):
    words = ["", "[UNK]", "the", "café", "naïve", "x\u2028y", "end"]  # U+2028: not a line break
    save_vocabulary(tmp_path, words)
    assert load_vocabulary(tmp_path) == words
