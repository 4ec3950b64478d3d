"""Executors: datatrove's Ray executor (default) and local executor, with task retries and a quiet console.

Ray: `ray.init()` starts a local Ray when no address is given; `--address HOST:PORT` joins a
cluster. Task logs go to `<stage>/_logs/<phase>/logs/`; the console shows warnings only
(set CODECURATE_LOG_LEVEL=INFO for datatrove's per-task chatter).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import io
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

from datatrove.executor.local import LocalPipelineExecutor
from datatrove.executor.ray import RayPipelineExecutor
from loguru import logger

LOG_LEVEL = os.environ.get("CODECURATE_LOG_LEVEL", "WARNING")
_NOISE = ("Logging directory points to a local filesystem",)


def _console_filter(record) -> bool:
    return not any(n in record["message"] for n in _NOISE)


def quiet_console() -> None:
    logger.remove()
    # a callable format leaves out tracebacks: the console gets one line, the task log the whole story
    logger.add(sys.stderr, level=LOG_LEVEL, filter=_console_filter, format=lambda r: "{level}: {message}\n")


class _Console(io.TextIOBase):
    """The console stream of a running task. datatrove's task logger (`add_task_logger`, its supported
    set-up) writes the full log to the task's file and the console to `sys.stderr`; while a task runs,
    `sys.stderr` is this stream, which prints each record at LOG_LEVEL or above as one line (loguru
    hands stream sinks the formatted message with its `record`), never a traceback."""

    def __init__(self, out):
        self.out = out
        self.level = logger.level(LOG_LEVEL).no

    def isatty(self) -> bool:
        return False

    def write(self, message) -> int:
        record = getattr(message, "record", None)
        if record is None:  # not a log record (a progress bar, a print): as it is
            self.out.write(message)
        elif record["level"].no >= self.level and _console_filter(record):
            self.out.write(f"{record['level'].name}: {record['message']}\n")
        return len(message)

    def flush(self) -> None:
        self.out.flush()


@contextlib.contextmanager
def _task_console():
    try:
        with contextlib.redirect_stderr(_Console(sys.stderr)):
            yield
    finally:
        quiet_console()  # datatrove's close_task_logger restores its own default console


class TaskTimeout(Exception):
    """A task ran longer than the recipe's `task_timeout_s`."""


@contextlib.contextmanager
def _deadline(seconds: float | None):
    """Raise `TaskTimeout` in this task after `seconds` (a task runs in its process's main thread;
    elsewhere, e.g. a local in-process task while stages run side by side, no deadline applies)."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise TaskTimeout(f"task ran longer than task_timeout_s={seconds:g}")

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


class _Retrying:
    """Runs a failed task again, up to `retries` times with exponential backoff, each attempt from a
    fresh copy of the steps (a failed attempt's counts must not reach the books). Outputs are written
    atomically and deterministically, so a retried task writes the same bytes. The last failure is
    raised: the task stays incomplete and a re-run resumes it."""

    retries: int = 0
    task_timeout_s: float | None = None
    backoff_s: float = 1.0

    def _run_for_rank(self, rank: int, local_rank: int = 0, **kw):
        pristine = copy.deepcopy(self.pipeline) if self.retries else None
        for attempt in range(self.retries + 1):
            if attempt:
                self.pipeline = copy.deepcopy(pristine)
                time.sleep(min(60.0, self.backoff_s * 2 ** (attempt - 1)))
            try:
                with _deadline(self.task_timeout_s), _task_console():
                    return super()._run_for_rank(rank, local_rank, **kw)
            except Exception as e:
                if attempt == self.retries:
                    raise
                logger.warning(f"task {rank} attempt {attempt + 1} failed ({type(e).__name__}: {e}); retrying")


class LocalExecutor(_Retrying, LocalPipelineExecutor):
    """datatrove's local executor (a process pool when workers > 1), with task retries and timeouts.

    The pool's processes fork from a server that has imported the steps' modules once (numpy, pyarrow,
    datatrove and ours: ~0.4 s a worker otherwise, at every phase of a multi-phase stage)."""

    def run(self):
        if self.workers != 1 and self.start_method == "forkserver":
            import multiprocess

            steps = {type(s).__module__ for s in self.pipeline} - {"builtins"}
            multiprocess.get_context("forkserver").set_forkserver_preload(sorted(steps))  # only before the server starts
        return super().run()


class RayExecutor(_Retrying, RayPipelineExecutor):
    """datatrove's Ray executor, scheduled as plain Ray tasks, with task retries and timeouts.

    datatrove starts a placement group, an actor and a process pool for every task (seconds each);
    a plain Ray task runs in a reused worker process, so a phase of many small tasks costs little
    more than its work (see benchmarks/RESULTS.md). A task whose worker dies (a killed process, a lost
    node) is run again by Ray (`max_retries`); a task that raises is retried by `_Retrying`. Failed
    tasks are left incomplete, and the runner reports them."""

    crash_retries: int = 3

    def run(self):
        import ray

        ranks = self.get_incomplete_ranks(range(self.world_size))
        if not ranks:
            return
        self.save_executor_as_json()
        me = ray.put(self)
        memory = int(self.mem_per_cpu_gb * self.cpus_per_task * 2**30)
        task = ray.remote(_ray_task).options(num_cpus=self.cpus_per_task, memory=memory, max_retries=self.crash_retries)
        running: dict = {}
        while ranks or running:
            while ranks and len(running) < self.workers:
                rank = ranks.pop(0)
                running[task.remote(me, rank)] = rank
            done, _ = ray.wait(list(running), num_returns=1)
            for ref in done:
                rank = running.pop(ref)
                try:
                    ray.get(ref)
                except Exception as e:  # noqa: BLE001 - the task stays incomplete; its log says why
                    logger.warning(f"task {rank} failed: {type(e).__name__}")


def _ray_task(executor: RayExecutor, rank: int):
    executor._run_for_rank(rank)


class ClusterError(Exception):
    """Ray cannot be started or joined; the message is one line for the user."""


def _ray_token() -> bool:
    """Whether a Ray auth token is at hand (env or ~/.ray/auth_token)."""
    path = os.environ.get("RAY_AUTH_TOKEN_PATH") or os.path.expanduser("~/.ray/auth_token")
    return bool(os.environ.get("RAY_AUTH_TOKEN")) or os.path.isfile(path)


# Ray 2.60's `ray start` turns token auth on when a token exists, while a driver reads RAY_AUTH_MODE
# once, when Ray is first imported (in `start_ray`): so ask for token mode now whenever a token is at hand.
if _ray_token() and "RAY_AUTH_MODE" not in os.environ:
    os.environ["RAY_AUTH_MODE"] = "token"


def _reachable(address: str) -> None:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ClusterError(f"--address {address!r}: expected HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        raise ClusterError(f"cannot reach the Ray cluster at {address}: {e.strerror or e}") from None


@contextlib.contextmanager
def _quiet_stderr():
    """Ray's C++ client prints a line per connection retry straight to fd 2; keep them off the console."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def start_ray(address: str | None, env_vars: dict[str, str] | None = None) -> bool:
    """Connect to (or start) Ray. Returns True when this call started it (so we shut it down).

    `env_vars` reach every worker process (storage options; never written to the run directory)."""
    import ray

    if ray.is_initialized():
        return False
    if address and address != "auto":
        _reachable(address)
    env = {"CODECURATE_LOG_LEVEL": LOG_LEVEL, **(env_vars or {})}
    try:
        with _quiet_stderr():
            ray.init(
                address=address,
                include_dashboard=False,
                log_to_driver=LOG_LEVEL in ("DEBUG", "INFO"),
                logging_level=LOG_LEVEL,
                configure_logging=True,
                runtime_env={"env_vars": env},
            )
    except Exception as e:  # noqa: BLE001 - Ray raises many kinds; the user needs one line
        why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "auth" in str(e).lower():
            why = "authentication failed (set RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH to the cluster's token)"
        raise ClusterError(f"cannot connect to Ray at {address or 'a new local cluster'}: {why[:300]}") from None
    return True


def make_executor(kind: str, steps, tasks: int, workers: int, logging_dir: str, retries: int = 0,
                  task_timeout_s: float | None = None):
    if kind == "local":
        ex = LocalExecutor(steps, tasks=tasks, workers=min(workers, tasks), logging_dir=logging_dir)
    elif kind == "ray":
        ex = RayExecutor(steps, tasks=tasks, workers=min(workers, tasks), logging_dir=logging_dir, mem_per_cpu_gb=0.5)
    else:
        raise ValueError(f"unknown executor {kind!r} (expected ray or local)")
    ex.retries, ex.task_timeout_s = retries, task_timeout_s
    return ex


PACKAGES = ("pipeline", "classifiers", "dedup", "langs", "tokenizer", "trainer")


@functools.cache
def code_version() -> str:
    """codecurate's version and a hash of its source files: every node must run the same code."""
    import importlib.metadata

    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for pkg in PACKAGES:
        for f in sorted((root / pkg).rglob("*.py")):
            h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes())
    try:
        version = importlib.metadata.version("codecurate")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return f"{version}+{h.hexdigest()[:12]}"


def _node_code_version() -> str:
    return code_version()


def check_cluster_versions(timeout_s: float = 120.0) -> None:
    """One zero-CPU task per alive node compares that node's `code_version()` with the driver's."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    mine = code_version()
    probe = ray.remote(num_cpus=0)(_node_code_version)
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    refs = {n["NodeManagerAddress"] + " " + n["NodeID"][:8]: probe.options(
        scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote() for n in nodes}
    for node, ref in refs.items():
        try:
            theirs = ray.get(ref, timeout=timeout_s)
        except Exception as e:  # noqa: BLE001 - e.g. codecurate not importable there
            raise ClusterError(f"Ray node {node} cannot run codecurate: {str(e).strip().splitlines()[-1][:200]}") from None
        if theirs != mine:
            raise ClusterError(f"Ray node {node} runs codecurate {theirs}, this driver {mine}: install the same version on every node")
