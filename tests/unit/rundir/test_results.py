"""A run's results: the one divergence check (every training loss, a GAN's too), and the
objective a sweep optimises, where a diverged or unscored job is a failed trial."""

import pytest

from kerasrun.rundir.results import FailedJob, diverged_message, first_non_finite, objective


def test_a_diverged_or_unscored_job_is_a_failed_trial_not_a_made_up_score():
    assert objective({"best_val_accuracy": 0.75}, "best_val_accuracy") == 0.75
    for metrics, metric in (
        ({"status": "failed", "diverged": True, "best_val_loss": 0.5}, "best_val_loss"),  # NaN
        ({"status": "finished", "best_val_mae": 2.5}, "best_val_accuracy"),  # a regression
        ({"status": "finished", "best_val_loss": float("nan")}, "best_val_loss"),
    ):
        value = objective(metrics, metric)
        assert isinstance(value, FailedJob)
        with pytest.raises(ValueError):  # what makes Optuna's sweeper record a failed trial
            float(value)


def test_a_gan_whose_losses_become_nan_counts_as_diverged(tmp_path):
    """A DCGAN logs d_loss and g_loss, no `loss`: train's divergence check reads them all."""
    history = {"d_loss": [0.7, 0.6, float("nan")], "g_loss": [0.9, float("inf"), 1.0]}
    assert first_non_finite(history) == (2, "g_loss", float("inf"))
    assert first_non_finite({"d_loss": [0.7], "g_loss": [0.9], "val_loss": [float("nan")]}) is None
    message = diverged_message(history, tmp_path)
    assert message.startswith("Training diverged: g_loss became inf in epoch 2;")
    # The advice names the rate the GAN reads (it has no use for optimizer.learning_rate).
    assert "Lower model.generator_learning_rate" in message
    assert "Lower optimizer.learning_rate" in diverged_message({"loss": [float("nan")]}, tmp_path)


def test_a_gan_whose_g_loss_became_nan_is_failed_in_its_metrics():
    # metrics.json's status reads every training loss, as train's own check does: a DCGAN
    # logs no `loss`, and its g_loss alone going NaN is a diverged run.
    from kerasrun.rundir.results import final_metrics

    history = {"d_loss": [0.7, 0.6], "g_loss": [0.9, float("nan")]}
    metrics = final_metrics(history, monitor="g_loss")
    assert (metrics["status"], metrics.get("diverged")) == ("failed", True)
    healthy = final_metrics({"d_loss": [0.7], "g_loss": [0.9]}, monitor="g_loss")
    assert healthy["status"] == "finished" and "diverged" not in healthy
