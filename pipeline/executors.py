"""Executors: datatrove's Ray executor (default) and local executor, with quiet logging.

Ray: `ray.init()` starts a local Ray when no address is given; `--address HOST:PORT` joins a
cluster. Task logs go to `<stage>/_logs/<phase>/logs/`; the console shows warnings only
(set CODECURATE_LOG_LEVEL=INFO for datatrove's per-task chatter).
"""

from __future__ import annotations

import os
import sys

import datatrove.executor.base as _dt_base
import datatrove.utils.logging as _dt_logging
from datatrove.executor.local import LocalPipelineExecutor
from datatrove.executor.ray import RayPipelineExecutor
from loguru import logger

LOG_LEVEL = os.environ.get("CODECURATE_LOG_LEVEL", "WARNING")
_NOISE = ("Logging directory points to a local filesystem",)


def _console_filter(record) -> bool:
    return not any(n in record["message"] for n in _NOISE)


def quiet_console() -> None:
    logger.remove()
    logger.add(sys.stderr, level=LOG_LEVEL, filter=_console_filter, format="{level}: {message}")


def _task_logger(logging_dir, rank: int, local_rank: int = 0, node_rank: int = -1):
    """datatrove's task logger, with the console at LOG_LEVEL and the full log in the file."""
    quiet_console()
    logfile = logging_dir.open(f"logs/task_{rank:05d}.log", "w")
    logger.add(logfile, level="DEBUG", format="{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <8} | {name}:{line} - {message}")
    return logfile


# These run in every process that unpickles an executor below (Ray actors, pool workers).
_dt_base.add_task_logger = _task_logger
import datatrove.executor.ray as _dt_ray  # noqa: E402

_dt_ray.add_task_logger = _task_logger
_dt_logging.setup_default_logger = quiet_console


class LocalExecutor(LocalPipelineExecutor):
    """datatrove's local executor (a process pool when workers > 1)."""


class RayExecutor(RayPipelineExecutor):
    """datatrove's Ray executor; each task is one Ray actor with one CPU."""


def start_ray(address: str | None) -> bool:
    """Connect to (or start) Ray. Returns True when this call started it (so we shut it down)."""
    import ray

    if ray.is_initialized():
        return False
    ray.init(
        address=address,
        include_dashboard=False,
        log_to_driver=LOG_LEVEL in ("DEBUG", "INFO"),
        logging_level=LOG_LEVEL,
        configure_logging=True,
    )
    return True


def make_executor(kind: str, steps, tasks: int, workers: int, logging_dir: str):
    if kind == "local":
        return LocalExecutor(steps, tasks=tasks, workers=min(workers, tasks), logging_dir=logging_dir)
    if kind == "ray":
        return RayExecutor(steps, tasks=tasks, workers=min(workers, tasks), logging_dir=logging_dir, mem_per_cpu_gb=0.5)
    raise ValueError(f"unknown executor {kind!r} (expected ray or local)")
