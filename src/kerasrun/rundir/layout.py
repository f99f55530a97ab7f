"""The run directory's files, each named once.

Every module that writes or reads a run directory takes its file names from here, so that a
rename is one line and `runs`, `evaluate`, `predict` and `train resume=` never disagree:

    outputs/runs/<date>_<time>_<data>-<model>/
      .hydra/config.yaml, overrides.yaml   what Hydra composed, and what the user typed
      config.yaml        the resolved config, with what `auto` became (RUN_CONFIG)
      train.log          the job log (TRAIN_LOG)
      metrics.json       final metrics and status (METRICS)
      history.csv        one row per epoch (conf/logger/csv.yaml writes it)
      tensorboard/       event files (conf/logger/tensorboard.yaml)
      checkpoints/best.keras, model.keras   the best and the final model
      backup/state.json  while a run is unfinished (conf/callbacks/backup_and_restore.yaml)
      bad_files.txt, vocabulary.txt, samples/, folds/, cache/
      eval/, visualize/, export/   what evaluate, visualize and export-model add

    outputs/sweeps/<date>_<time>/   a sweep: multirun.yaml, summary.csv, one folder a job
"""

from pathlib import Path

HYDRA_DIR = ".hydra"  # Hydra's output_subdir: the composed config and the overrides
HYDRA_CONFIG = "config.yaml"  # inside HYDRA_DIR
OVERRIDES = "overrides.yaml"  # inside HYDRA_DIR
RUN_CONFIG = "config.yaml"
TRAIN_LOG = "train.log"
METRICS = "metrics.json"
TENSORBOARD = "tensorboard"
CHECKPOINTS = "checkpoints"
BEST_MODEL = "best.keras"  # inside CHECKPOINTS
FINAL_MODEL = "model.keras"
BACKUP = "backup"
BACKUP_STATE = "state.json"  # inside BACKUP
BAD_FILES = "bad_files.txt"
VOCABULARY = "vocabulary.txt"
SAMPLES = "samples"
FOLDS = "folds"
CACHE = "cache"
EVALUATION = "eval"  # evaluate's pictures and reports, <run>/eval/<split>/, tensorboard/eval/
VISUALIZE = "visualize"  # visualize's pictures, <run>/visualize/, tensorboard/visualize/
EXPORTS = "export"  # export-model's files, <run>/export/<format>/
EXPORT_RECORD = "export.json"  # inside EXPORTS/<format>: what was exported and checked

# A sweep's folder
SWEEPS = "sweeps"  # outputs/sweeps/<date>_<time>/<job>_<overrides>/
MULTIRUN = "multirun.yaml"  # in the sweep's folder, next to its jobs
SWEEP_SUMMARY = "summary.csv"  # in the sweep's folder: one row a job


def metrics_path(run_dir):
    return Path(run_dir) / METRICS


def run_config_path(run_dir):
    return Path(run_dir) / RUN_CONFIG


def hydra_config_path(run_dir):
    return Path(run_dir) / HYDRA_DIR / HYDRA_CONFIG


def overrides_path(run_dir):
    return Path(run_dir) / HYDRA_DIR / OVERRIDES


def best_model_path(run_dir):
    return Path(run_dir) / CHECKPOINTS / BEST_MODEL


def final_model_path(run_dir):
    return Path(run_dir) / FINAL_MODEL


def backup_state_path(run_dir):
    return Path(run_dir) / BACKUP / BACKUP_STATE
