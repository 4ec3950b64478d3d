"""Run a recipe: stages in dependency order, each as one or more executor phases.

Layout of a run directory:

    <run_dir>/recipe.json                 the resolved recipe of the last run
    <run_dir>/<stage>/part-NNNNN.parquet  the stage's output, one shard per task
    <run_dir>/<stage>/_stats.json         docs and bytes in / kept / dropped per reason, timings
    <run_dir>/<stage>/_SUCCESS            written last; holds the hash of the stage's config
    <run_dir>/<stage>/_logs/<phase>/      datatrove completions, per-task stats and logs
    <run_dir>/<stage>/_work/              intermediate data of multi-phase stages

Resume: completed tasks are skipped (datatrove completion markers) and completed stages are
skipped (`_SUCCESS`); outputs are written atomically per task, so a killed run that is run
again ends with the same bytes as one that was never interrupted.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from loguru import logger
from tqdm import tqdm

from pipeline import accounting, documents, storage
from pipeline.executors import ClusterError, check_cluster_versions, make_executor, quiet_console, start_ray
from pipeline.recipe import Recipe
from pipeline.stage import StageContext, StageSpec


class RunError(Exception):
    """A stage could not complete; the message is one line for the user."""


@dataclass
class RunResult:
    run_dir: str
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # "stage: line", from every stage's _stats.json


def stage_hash(recipe: Recipe, name: str) -> str:
    """A stage's identity: its keys, the seed, and (recursively) its inputs' identities,
    so a change upstream marks every downstream stage as stale too."""
    spec = recipe.stage(name)
    ups = [stage_hash(recipe, i) for i in spec.inputs]
    payload = {"seed": recipe.seed, "spec": spec.model_dump(mode="json"), "inputs": ups}
    return hashlib.sha256(documents.dumps(payload).encode()).hexdigest()[:16]


def _completed(logging_dir: str) -> int:
    return len(storage.ls(storage.join(logging_dir, "completions")))


def _task_error(logging_dir: str) -> str | None:
    """The exception line of the first failed task's log (Ray reports failures only there)."""
    for log in storage.glob(storage.join(logging_dir, "logs", "task_*.log")):
        lines = [line.rstrip() for line in storage.read_bytes(log).decode("utf-8", "replace").splitlines()]
        if any("| ERROR" in line for line in lines):
            tail = [line for line in lines if line and not line.startswith(" ")]
            return tail[-1][:300] if tail else None
    return None


def _watch(label: str, logging_dir: str, tasks: int, stop: threading.Event, show: bool) -> None:
    bar = tqdm(total=tasks, desc=label, unit="task", disable=not show, leave=True, dynamic_ncols=True)
    last = 0
    while True:
        n = _completed(logging_dir)
        if n > last:
            bar.update(n - last)
            last = n
        if stop.is_set():
            break
        stop.wait(0.5)
    bar.close()


class Runner:
    def __init__(
        self,
        recipe: Recipe,
        executor: str | None = None,
        address: str | None = None,
        workers: int | None = None,
        progress: bool = True,
        owns_run_dir: bool = False,
    ):
        """`owns_run_dir`: a stand-alone command's `--output` belongs to the command, so a stage completed there
        with other settings is redone; a recipe's run_dir is the user's, and such a stage is refused instead."""
        self.recipe = recipe
        self.owns_run_dir = owns_run_dir
        self.executor = executor or recipe.executor
        if address and self.executor != "ray":
            raise RunError("--address joins a Ray cluster; it needs --executor ray")
        self.address = address
        self.workers = workers or recipe.workers
        self.progress = progress
        self.run_dir = recipe.run_dir

    def stage_dir(self, name: str) -> str:
        return storage.join(self.run_dir, name)

    def is_done(self, spec: StageSpec) -> bool:
        try:
            saved = storage.read_bytes(storage.join(self.stage_dir(spec.name), "_SUCCESS")).decode().strip()
        except FileNotFoundError:
            return False
        if saved != stage_hash(self.recipe, spec.name):
            if self.owns_run_dir:
                self.fresh([spec.name])
                return False
            raise RunError(
                f"stage {spec.name!r} in {self.run_dir} was completed with a different config; "
                f"run with --fresh {spec.name} to redo it, or use a new run_dir"
            )
        return True

    def fresh(self, names: list[str]) -> None:
        """Delete the named stages' outputs, and those of every stage downstream, so they run again."""
        for n in names:
            self.recipe.stage(n)  # KeyError for unknown names, handled by the CLI
        names = [s.name for s in self.recipe.stages if s.name in names or self.recipe.upstream([s.name]) & set(names)]
        _, root = storage.fs_and_path(self.run_dir)
        local = "://" not in self.run_dir or self.run_dir.startswith("file://")
        resolve = os.path.realpath if local else posixpath.normpath
        root = resolve(root)
        targets = [(n, *storage.fs_and_path(self.stage_dir(n))) for n in names]
        for n, _fs, p in targets:  # all checked before anything is deleted
            # only a real directory strictly inside run_dir: never a link out of it, nor run_dir itself
            if resolve(p) == root or not resolve(p).startswith(root.rstrip("/") + "/") or (local and os.path.islink(p)):
                raise RunError(f"--fresh {n}: {p} is not a directory inside run_dir {self.run_dir}; nothing deleted")
        for _n, fs, p in targets:
            if fs.exists(p):
                fs.rm(p, recursive=True)

    def run(self, only: list[str] | None = None) -> RunResult:
        with storage.configured(self.recipe.storage_options) as env:
            return self._run(only, env)

    def _run(self, only: list[str] | None, env: dict[str, str]) -> RunResult:
        quiet_console()
        order = self.recipe.order()
        if only:
            unknown = [n for n in only if n not in {s.name for s in order}]
            if unknown:
                raise RunError(f"unknown stage(s) in --stages: {', '.join(unknown)}")
            order = [s for s in order if s.name in only]
        try:
            storage.write_json(storage.join(self.run_dir, "recipe.json"), self.recipe.redacted())
        except Exception as e:  # noqa: BLE001 - missing credentials, unreachable endpoint, read-only path
            raise RunError(f"cannot write to run_dir {self.run_dir}: {storage.describe(e)}") from None
        started_ray = False
        result = RunResult(self.run_dir)
        try:
            todo = []
            for spec in order:
                if self.is_done(spec):
                    result.skipped.append(spec.name)
                else:
                    todo.append(spec)
            if todo and self.executor == "ray":
                try:
                    started_ray = start_ray(self.address, env)
                    if self.address:
                        check_cluster_versions()
                except ClusterError as e:
                    raise RunError(str(e)) from None
            self._run_all(todo, result)
            for spec in order:
                stats = storage.read_json(storage.join(self.stage_dir(spec.name), "_stats.json"), {}) or {}
                result.warnings += [f"{spec.name}: {w}" for w in stats.get("warnings", [])]
        finally:
            if started_ray:
                import ray

                ray.shutdown()
        return result

    def _run_all(self, todo: list[StageSpec], result: RunResult) -> None:
        """Runs each stage once its inputs are done; up to `parallel_stages` independent stages at once.
        One at a time, a stage runs in this thread, so an in-process task keeps its timeout signal."""
        pending, running = list(todo), {}
        names = {s.name for s in todo}
        done = {i for s in todo for i in s.inputs if i not in names and self.is_done(self.recipe.stage(i))}
        width = self.recipe.parallel_stages
        with ThreadPoolExecutor(max_workers=width) as pool:
            while pending or running:
                ready = [s for s in pending if all(i in done for i in s.inputs)]
                if not ready and not running:
                    missing = next(i for i in pending[0].inputs if i not in done)
                    raise RunError(f"stage {pending[0].name!r} needs {missing!r}, which has not completed; run it first")
                for spec in ready[: max(0, width - len(running))]:
                    pending.remove(spec)
                    if width == 1:
                        self.run_stage(spec)
                        done.add(spec.name)
                        result.ran.append(spec.name)
                    else:
                        running[pool.submit(self.run_stage, spec)] = spec
                if running:
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        spec = running.pop(fut)
                        fut.result()  # a failed stage raises its RunError here
                        done.add(spec.name)
                        result.ran.append(spec.name)

    @staticmethod
    def _planned(spec: StageSpec, ctx: StageContext):
        """The stage's phases (a list, or a generator that plans each phase after the previous one ran);
        a planning error (no match, credentials, endpoint) is one line."""
        phases = None
        while True:
            try:
                phases = iter(spec.phases(ctx)) if phases is None else phases
                phase = next(phases)
            except StopIteration:
                return
            except RunError:
                raise
            except Exception as e:  # noqa: BLE001 - planning reads inputs
                raise RunError(f"stage {spec.name!r}: {storage.describe(e)}") from None
            yield phase

    def run_stage(self, spec: StageSpec) -> dict:
        sdir = self.stage_dir(spec.name)
        ctx = StageContext(
            run_dir=self.run_dir,
            stage=spec.name,
            seed=self.recipe.seed,
            input_dirs=[self.stage_dir(i) for i in spec.inputs],
            max_shard_bytes=self.recipe.max_shard_bytes,
        )
        t0 = time.time()
        phases_info = []
        all_stats = []
        for phase in self._planned(spec, ctx):
            logdir = storage.join(sdir, "_logs", phase.name)
            label = spec.name if phase.name == "main" else f"{spec.name}/{phase.name}"
            ex = make_executor(self.executor, phase.steps, phase.tasks, self.workers, logdir,
                               self.recipe.retries, self.recipe.task_timeout_s)
            stop = threading.Event()
            watcher = threading.Thread(target=_watch, args=(label, logdir, phase.tasks, stop, self.progress), daemon=True)
            watcher.start()
            p0 = time.time()
            try:
                ex.run()
            except Exception as e:  # the executor re-raises the first failing task's error
                raise RunError(f"stage {spec.name!r} failed: {type(e).__name__}: {e} (task logs: {logdir}/logs)") from e
            finally:
                stop.set()
                watcher.join()
            done = _completed(logdir)
            if done < phase.tasks:
                why = _task_error(logdir)
                raise RunError(
                    f"stage {spec.name!r} phase {phase.name!r}: only {done}/{phase.tasks} tasks completed"
                    f"{': ' + why if why else ''} (task logs: {logdir}/logs); run again to resume"
                )
            all_stats += accounting.task_stats(logdir)
            phases_info.append({"name": phase.name, "tasks": phase.tasks, "elapsed_s": round(time.time() - p0, 3)})
        books = accounting.merge(all_stats)
        stats = {
            "stage": spec.name,
            "kind": spec.kind,
            "inputs": spec.inputs,
            "tasks": phases_info[-1]["tasks"] if phases_info else 0,
            "phases": phases_info,
            "elapsed_s": round(time.time() - t0, 3),
            "executor": self.executor,
            **books,
            "warnings": spec.warnings(sdir),
        }
        for w in stats["warnings"]:
            logger.warning(f"{spec.name}: {w}")
        storage.write_json(storage.join(sdir, "_stats.json"), stats)
        storage.write_text(storage.join(sdir, "_SUCCESS"), stage_hash(self.recipe, spec.name) + "\n")
        return stats

