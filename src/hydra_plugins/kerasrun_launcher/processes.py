"""`hydra/launcher=processes`: every sweep job in a fresh process, `n_jobs` at a time.

A fresh process per job is the only way to give each job a clean TensorFlow: Keras's
global state (dtype policy, layer name counters) and, on a GPU, the memory TensorFlow keeps
for the process's lifetime. Hydra's joblib launcher reuses its workers; this one does not.

    train -m hydra/launcher=processes hydra.launcher.n_jobs=2 model=convnet,small_convnet
    train -m hydra/launcher=processes hydra.launcher.gpus=[0,1] ...   # one GPU per job

With `gpus`, each running job sees exactly one of them (`CUDA_VISIBLE_DEVICES`), and a GPU
is given to the next job only when its previous job has ended; `n_jobs` is then at most the
number of GPUs.
"""

import logging
import multiprocessing
import os
from multiprocessing.connection import wait
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import (
    JobReturn,
    JobStatus,
    configure_log,
    filter_overrides,
    run_job,
    setup_globals,
)
from hydra.plugins.launcher import Launcher
from omegaconf import open_dict

log = logging.getLogger(__name__)


class ProcessLauncher(Launcher):
    """Runs each job in its own spawned process, at most `n_jobs` at once.

    Args:
        n_jobs: jobs running at the same time.
        gpus: GPU indices to share out, one per running job, or `None` to leave
            `CUDA_VISIBLE_DEVICES` as it is.
    """

    def __init__(self, n_jobs=1, gpus=None):
        if gpus is not None:
            gpus = [str(g) for g in gpus]
            n_jobs = min(n_jobs, len(gpus)) if gpus else n_jobs
        if not isinstance(n_jobs, int) or n_jobs < 1:
            raise ValueError(
                f"hydra.launcher.n_jobs must be a positive integer. Received: {n_jobs!r}. "
                "Set e.g. hydra.launcher.n_jobs=2."
            )
        self.n_jobs, self.gpus = n_jobs, gpus
        self.config = self.task_function = self.hydra_context = None

    def setup(self, *, hydra_context, task_function, config):
        self.config, self.task_function, self.hydra_context = config, task_function, hydra_context

    def launch(self, job_overrides, initial_job_idx):
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        gpus = f", one GPU each of {','.join(self.gpus)}" if self.gpus else ""
        log.info(f"Launching {len(job_overrides)} jobs, {self.n_jobs} at a time{gpus}")
        for idx, overrides in enumerate(job_overrides):
            log.info(f"\t#{initial_job_idx + idx} : {' '.join(filter_overrides(overrides))}")

        context = multiprocessing.get_context("spawn")  # fresh interpreters: nothing inherited
        pending = list(enumerate(job_overrides))
        running, results = {}, {}
        free = list(self.gpus or [])
        # Resolvers are local functions pickle cannot send; the child registers its own when
        # it imports Hydra and the task's module.
        state = {**Singleton.get_state(), "omegaconf_resolvers": None}
        try:
            while pending or running:
                while pending and len(running) < self.n_jobs:
                    idx, overrides = pending.pop(0)
                    gpu = free.pop(0) if self.gpus else None
                    receiver, sender = context.Pipe(duplex=False)
                    args = (sender, initial_job_idx + idx, overrides, self.hydra_context)
                    args += (self.config, _importable(self.task_function), state)
                    process = _start(context, args, gpu)
                    sender.close()
                    running[idx] = (process, receiver, gpu)
                ready = wait([r for _, r, _ in running.values()])
                for idx, (process, receiver, gpu) in list(running.items()):
                    if receiver not in ready:
                        continue
                    try:
                        results[idx] = receiver.recv()
                    except EOFError:  # the process died without a word: killed, segfault
                        process.join()
                        results[idx] = _died(initial_job_idx + idx, process.exitcode)
                    process.join()
                    del running[idx]
                    if gpu is not None:
                        free.append(gpu)
        except BaseException:
            for process, _, _ in running.values():
                process.terminate()
            raise
        return [results[idx] for idx in range(len(job_overrides))]


def _start(context, args, gpu):
    """Starts `_execute(*args)`, with `CUDA_VISIBLE_DEVICES=gpu` if a GPU is given."""
    before = os.environ.get("CUDA_VISIBLE_DEVICES")
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu  # a spawned child copies the environment
    try:
        process = context.Process(target=_execute, args=args, daemon=False)
        process.start()
    finally:
        if before is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = before
    return process


def _importable(task_function):
    """`(module, name)` of the `@hydra.main` function: pickle cannot send the function itself."""
    return task_function.__module__, task_function.__qualname__


def _execute(sender, idx, overrides, hydra_context, config, task_function, state):
    """In the child: compose the job's config, run it, send its `JobReturn` back."""
    import importlib
    import inspect

    module, name = task_function
    # The module's attribute is the @hydra.main wrapper; the task is the function it wraps.
    task_function = inspect.unwrap(getattr(importlib.import_module(module), name))
    from omegaconf.basecontainer import BaseContainer

    setup_globals()
    state["omegaconf_resolvers"] = BaseContainer._resolvers
    Singleton.set_state(state)
    sweep_config = hydra_context.config_loader.load_sweep_config(config, list(overrides))
    with open_dict(sweep_config):
        sweep_config.hydra.job.id = f"{sweep_config.hydra.job.name}_{idx}"
        sweep_config.hydra.job.num = idx
    HydraConfig.instance().set_config(sweep_config)
    ret = run_job(
        hydra_context=hydra_context,
        config=sweep_config,
        task_function=task_function,
        job_dir_key="hydra.sweep.dir",
        job_subdir_key="hydra.sweep.subdir",
    )
    sender.send(_slim(ret))
    sender.close()


def _slim(ret):
    """The parts of a `JobReturn` a sweeper reads: its configs hold classes pickle cannot send."""
    import pickle

    value = ret._return_value
    try:
        pickle.dumps(value)
    except Exception:  # e.g. an exception holding a TensorFlow object
        from kerasrun.rundir.results import FailedJob

        value = FailedJob(f"{type(value).__name__}: {value}")
    return JobReturn(
        overrides=ret.overrides,
        working_dir=ret.working_dir,
        task_name=ret.task_name,
        status=ret.status,
        _return_value=value,
    )


def _died(idx, exitcode):
    """The return of a job whose process died (e.g. killed for memory): failed, sweep goes on.

    Like a job that failed inside `train` (see `kerasrun.results.FailedJob`), it is not an
    error of the sweep: Optuna records a failed trial, the summary lists the job as killed.
    """
    from kerasrun.rundir.results import FailedJob

    ret = JobReturn()
    ret.status = JobStatus.COMPLETED
    ret.return_value = FailedJob(f"job #{idx} ended without a result (exit code {exitcode})")
    return ret
