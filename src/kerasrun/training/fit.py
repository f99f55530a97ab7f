"""`model.fit` as `train` runs it: the run's callbacks, a progress line, and a clean stop on
SIGTERM or Ctrl-C; then the book's second phase, fine-tuning (5.3.2).

Imported by `train` after TensorFlow (the callbacks subclass Keras's).
"""

import logging
import sys
import warnings

from kerasrun.models.pretrained import unfreeze_from as unfreeze
from kerasrun.rundir.results import first_non_finite, read_history
from kerasrun.training.checkpoints import StopOnSignal
from kerasrun.training.progress import EpochProgress

log = logging.getLogger("kerasrun")


class Fit:
    """Trains `model` on a train/validation pair with a run's callbacks, phase after phase.

    With `steps_per_epoch` the training data repeats, like the book's endless generators.
    SIGTERM (a cluster's preemption) or Ctrl-C saves a backup after the current batch and
    raises `Preempted` (`train resume=<run>` continues).

    Args:
        model: a compiled model.
        train_dataset, validation_dataset: `tf.data` datasets (validation may be `None`).
        callbacks: a `RunCallbacks` (training/callbacks.py).
        steps_per_epoch, validation_steps: Keras's, or `None` for a whole pass.
        steps_per_pass: the batches of a pass, for the progress bar (`None` if unknown).
    """

    def __init__(
        self,
        model,
        train_dataset,
        validation_dataset,
        callbacks,
        *,
        steps_per_epoch=None,
        validation_steps=None,
        steps_per_pass=None,
    ):
        self.model = model
        self.train_dataset, self.validation_dataset = train_dataset, validation_dataset
        self.run_callbacks = callbacks
        self.steps_per_epoch, self.validation_steps = steps_per_epoch, validation_steps
        self.progress_steps = steps_per_epoch or steps_per_pass
        self.stopper = StopOnSignal(callbacks.backup)

    def __call__(self, initial_epoch, epochs, phase=""):
        """`model.fit(...)` from `initial_epoch` to `epochs`; returns this call's history."""
        train_dataset = self.train_dataset
        if self.steps_per_epoch:
            train_dataset = train_dataset.repeat()
        progress = EpochProgress(
            epochs, steps=self.progress_steps, bar=sys.stdout.isatty(), phase=phase
        )
        # Skipping bad files leaves tf.data's length unknown, so Keras learns the epoch ends
        # when the data does, and warns about it: the expected end of a pass, not a problem.
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        with self.stopper:
            history = self.model.fit(
                train_dataset,
                validation_data=self.validation_dataset,
                initial_epoch=initial_epoch,
                epochs=epochs,
                steps_per_epoch=self.steps_per_epoch,
                validation_steps=self.validation_steps,
                verbose=0,
                shuffle=False,
                callbacks=self.run_callbacks.callbacks + [self.stopper, progress],
            ).history
        self.stopper.check()  # a signal during the last epoch's end
        return history

    def first_phase(self, epochs, phase=""):
        """Trains `epochs` epochs, unless a resumed run had finished them (its backup was made
        while fine-tuning); returns every epoch's history, also those before a resume."""
        history = {}
        if epochs and not self.run_callbacks.resumed_in_fine_tune:
            history = self(0, epochs, phase=phase)
        return read_history(self.run_callbacks.history_csv, history)


def fine_tune(fit, history, compile_model, *, unfreeze_from, epochs, learning_rate):
    """The book's 5.3.2: unfreeze the top of the conv base, recompile with a low learning
    rate, train on; returns the history of both phases.

    `initial_epoch` keeps TensorBoard's curves continuous, also when early stopping ended
    phase 1 early. Nothing happens without `unfreeze_from`, after no training, or after a
    diverged (NaN) phase 1. The phase boundary is backed up: a kill during fine-tuning does
    not redo phase 1.

    Args:
        fit: the run's `Fit`.
        history: phase 1's history.
        compile_model: `compile_model(model, learning_rate=...)`, as the model was compiled.
        unfreeze_from: the first layer to train (the book's `block5_conv1`), or `None`.
        epochs: the fine-tuning epochs.
        learning_rate: the fine-tuning learning rate (the book's 1e-5).
    """
    if not unfreeze_from or not history or first_non_finite(history):
        return history
    model, run_callbacks = fit.model, fit.run_callbacks
    trainable = unfreeze(model, unfreeze_from)
    log.info(
        f"Fine-tuning from {unfreeze_from}: {trainable} trainable weight tensors, "
        f"learning rate {learning_rate}"
    )
    compile_model(model, learning_rate=learning_rate)
    resumed = run_callbacks.resumed_in_fine_tune
    start = run_callbacks.state["phase_start"] if resumed else len(history["loss"])
    backup = run_callbacks.backup
    if backup:
        backup.phase, backup.phase_start = "fine-tune", start
        if not resumed:
            model.optimizer.build(model.trainable_variables)
            backup.save(start)  # a kill from here on resumes in phase 2
            backup.skip_next_restore = True  # the model is that backup already
    more = fit(start, start + epochs, phase="fine-tune")
    both = {k: history.get(k, []) + v for k, v in more.items()}
    return read_history(run_callbacks.history_csv, both)
