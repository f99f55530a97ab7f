"""A text run's vocabulary: what `predict` needs to read new text as training did."""

from pathlib import Path

from kerasrun.errors import require
from kerasrun.rundir.layout import VOCABULARY


def save_vocabulary(run_dir, vocabulary):
    """Writes `<run_dir>/vocabulary.txt`: the words of a `TextVectorization`, one a line.

    The format is Keras's own (`TextVectorization.save_assets`): the vocabulary in index order,
    padding ("") and `[UNK]` first, so that `TextVectorization(vocabulary=...)` rebuilds the
    same word indices. Tokens never hold a newline (TextVectorization splits on whitespace).

    Args:
        run_dir: the run directory.
        vocabulary: `vectorizer.get_vocabulary()`, a list of strings.

    Returns:
        The path written.
    """
    path = Path(run_dir) / VOCABULARY
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("\n".join(str(word) for word in vocabulary))
    return path


def load_vocabulary(run_dir):
    """The vocabulary `save_vocabulary` wrote into `run_dir`, as a list of strings.

    Raises:
        ConfigError: the run has no vocabulary.txt.
    """
    path = Path(run_dir) / VOCABULARY
    require(
        path.is_file(),
        f"predict needs {path}, the vocabulary train adapted on the run's training texts, to "
        "turn texts into the word indices the model was trained on. Received: a run without "
        "it (trained before train saved it). Train the run again.",
    )
    # split("\n"), not splitlines(): a token may hold other line-breaking characters.
    words = path.read_text(encoding="utf-8").split("\n")
    while words and words[-1] == "" and len(words) > 1:
        words.pop()
    return words
