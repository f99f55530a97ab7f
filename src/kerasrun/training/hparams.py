"""The run's hyperparameters and final metrics for TensorBoard's HParams tab.

TensorBoard builds the HParams table from a session summary (the hyperparameters) in
`<run>/tensorboard/` and the scalars found there: the per-epoch ones Keras writes in
`train/` and `validation/`, and the final ones written here (`test_accuracy`, ...).
"""

HPARAM_KEYS = ("data", "model", "optimizer", "trainer")


def flatten_hparams(cfg_dict):
    """Scalar config values as `{"model.dropout": 0.5, "optimizer": "RMSprop", ...}`."""
    flat = {"seed": cfg_dict.get("seed")}
    for group in HPARAM_KEYS:
        for key, value in (cfg_dict.get(group) or {}).items():
            name = f"{group}.{key}"
            if key == "_target_":
                flat[group] = str(value).rsplit(".", 1)[-1]
            elif isinstance(value, (bool, int, float, str)):
                flat[name] = value
            elif isinstance(value, list) and all(isinstance(v, (int, float, str)) for v in value):
                flat[name] = "x".join(map(str, value))
            elif value is None:
                flat[name] = "null"
    return {k: v for k, v in flat.items() if v is not None}


def write_hparams(log_dir, hparams, trial_id):
    """Writes the session summary; call once at the start so failed runs show up too."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    with tf.summary.create_file_writer(str(log_dir)).as_default():
        hp.hparams(hparams, trial_id=trial_id)


def write_final_metrics(log_dir, metrics, step):
    """Writes each final number (`test_accuracy`, `best_val_accuracy`, ...) as a scalar."""
    import tensorflow as tf

    with tf.summary.create_file_writer(str(log_dir)).as_default():
        for key, value in metrics.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "epochs":
                tf.summary.scalar(key, value, step=step)
