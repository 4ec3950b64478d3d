"""Recipes: YAML files that name a run's stages, validated with pydantic on load.

Every problem in a recipe becomes one line `FILE: KEY: what was expected`, all problems are
reported at once, and nothing is written before the whole recipe is valid.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline import registry
from pipeline.stage import PLAIN_NAME, StageSpec


class RecipeError(Exception):
    """A recipe is invalid. `problems` holds one human-readable line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))



# ---- the recipe ---------------------------------------------------------------------------


class RecipeHead(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    run_dir: str
    seed: int = 0
    executor: Literal["ray", "local"] = "ray"
    workers: int = Field(default=2, ge=1)
    retries: int = Field(default=2, ge=0)
    task_timeout_s: float | None = Field(default=None, gt=0)
    max_shard_bytes: int = Field(default=512 * 2**20, ge=2**16)
    parallel_stages: int = Field(default=1, ge=1)
    storage_options: dict[str, dict[str, Any]] = {}
    vars: dict[str, str] = {}
    stages: list[dict[str, Any]] = Field(min_length=1)


class Recipe(BaseModel):
    name: str
    run_dir: str
    seed: int
    executor: Literal["ray", "local"]
    workers: int
    stages: list[StageSpec]
    retries: int = 2
    task_timeout_s: float | None = None
    max_shard_bytes: int = 512 * 2**20
    parallel_stages: int = 1
    storage_options: dict[str, dict[str, Any]] = {}
    source: str = ""
    raw: dict[str, Any] = {}

    def redacted(self) -> dict[str, Any]:
        """The resolved recipe as written to `recipe.json`: every storage option's value hidden."""
        return redact(self.raw) | {"source": self.source}

    def stage(self, name: str) -> StageSpec:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(name)

    def order(self) -> list[StageSpec]:
        """Stages in dependency order (listing order among independent stages)."""
        done: set[str] = set()
        out: list[StageSpec] = []
        pending = list(self.stages)
        while pending:
            for s in pending:
                if all(i in done for i in s.inputs):
                    out.append(s)
                    done.add(s.name)
                    pending.remove(s)
                    break
        return out

    def upstream(self, names: list[str]) -> set[str]:
        """All stages that the named stages depend on, transitively."""
        seen: set[str] = set()
        todo = list(names)
        while todo:
            for i in self.stage(todo.pop()).inputs:
                if i not in seen:
                    seen.add(i)
                    todo.append(i)
        return seen


_SECRET_KEY = re.compile(r"key|secret|token|password|passwd|credential|session|auth", re.I)


def redact(obj: Any, hide: bool = False) -> Any:
    """`obj` with the values under any `storage_options` (and any secret-looking key) replaced."""
    if isinstance(obj, dict):
        return {k: redact(v, hide or k == "storage_options" or bool(_SECRET_KEY.search(str(k)))) for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact(v, hide) for v in obj]
    return "***" if hide and obj is not None else obj


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _interpolate(obj: Any, env: dict[str, str], problems: list[str], where: str, loc: str = "") -> Any:
    if isinstance(obj, str):

        def sub(m: re.Match) -> str:
            if m.group(1) not in env:
                problems.append(f"{where}: {loc}: unknown variable ${{{m.group(1)}}} (known: {', '.join(sorted(env))})")
                return m.group(0)
            return env[m.group(1)]

        return _VAR.sub(sub, obj)
    if isinstance(obj, dict):
        return {k: _interpolate(v, env, problems, where, f"{loc}.{k}" if loc else str(k)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_interpolate(v, env, problems, where, f"{loc}[{i}]") for i, v in enumerate(obj)]
    return obj


def _loc(parts: tuple) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _describe(err: dict, model: type[BaseModel] | None, prefix: str) -> str:
    loc = _loc(tuple(err["loc"]))
    key = f"{prefix}.{loc}" if prefix and loc else (prefix or loc or "(top level)")
    t = err["type"]
    if t == "extra_forbidden":
        allowed = sorted(model.model_fields) if model else []
        return f"{key}: unknown key (expected one of: {', '.join(allowed)})"
    if t == "missing":
        return f"{key}: missing required key"
    msg = err["msg"].removeprefix("Value error, ")
    got = err.get("input")
    if t.endswith("_type") or t.endswith("_parsing") or t == "literal_error":
        return f"{key}: {msg} (got {got!r})"
    return f"{key}: {msg}"


def parse_recipe(data: Any, source: str = "<recipe>", overrides: dict[str, str] | None = None) -> Recipe:
    """Validate an already-parsed YAML mapping. Raises `RecipeError` listing every problem."""
    where = source
    if not isinstance(data, dict):
        raise RecipeError([f"{where}: the recipe must be a mapping of keys, got {type(data).__name__}"])
    try:
        head = RecipeHead.model_validate(data)
    except ValidationError as e:
        raise RecipeError([f"{where}: {_describe(err, RecipeHead, '')}" for err in e.errors()]) from None

    problems: list[str] = []
    env = {"run_dir": head.run_dir, **head.vars, **(overrides or {})}
    env["run_dir"] = _interpolate(env["run_dir"], {k: v for k, v in env.items() if k != "run_dir"}, problems, where, "run_dir")
    run_dir = env["run_dir"]
    stages: list[StageSpec] = []
    names: set[str] = set()
    for i, raw in enumerate(head.stages):
        label = f"stages[{i}]"
        if not isinstance(raw, dict):
            problems.append(f"{where}: {label}: a stage must be a mapping, got {type(raw).__name__}")
            continue
        name = raw.get("name")
        if isinstance(name, str) and PLAIN_NAME.fullmatch(name):  # else `stages[i]`: the name is what is wrong
            label = f"stages.{name}"
        kind = raw.get("kind")
        if kind not in registry.KINDS:
            problems.append(f"{where}: {label}.kind: unknown stage kind {kind!r} (expected one of: {', '.join(sorted(registry.KINDS))})")
            continue
        cls = registry.kind_class(kind)
        raw = _interpolate(raw, env, problems, where, label)
        try:
            spec = cls.model_validate(raw)
        except ValidationError as e:
            problems += [f"{where}: {_describe(err, cls, label)}" for err in e.errors()]
            if isinstance(name, str):  # its problems are reported; stages reading it are not "unknown stage"
                names.add(name)
            continue
        if spec.name in names:
            problems.append(f"{where}: {label}.name: duplicate stage name {spec.name!r}")
        names.add(spec.name)
        if cls.needs_input and not spec.inputs:
            problems.append(f"{where}: {label}.input: stage kind {kind!r} needs an input stage")
        stages.append(spec)

    for s in stages:
        for inp in s.inputs:
            if inp not in names:
                problems.append(f"{where}: stages.{s.name}.input: unknown stage {inp!r} (stages: {', '.join(sorted(names))})")
    if not problems:
        problems += _cycles(stages, where)
    options = _storage_options(_interpolate(head.storage_options, env, problems, where, "storage_options"), stages, where, problems)
    if problems:
        raise RecipeError(problems)
    return Recipe(
        name=head.name,
        run_dir=run_dir,
        seed=head.seed,
        executor=head.executor,
        workers=head.workers,
        stages=stages,
        retries=head.retries,
        task_timeout_s=head.task_timeout_s,
        max_shard_bytes=head.max_shard_bytes,
        parallel_stages=head.parallel_stages,
        storage_options=options,
        source=source,
        raw={**_interpolate(data, env, [], where), "run_dir": run_dir},
    )


def _storage_options(top: dict, stages: list[StageSpec], where: str, problems: list[str]) -> dict:
    """The recipe's per-protocol storage options, merged with any stage's own (`web_ingest`):
    they configure every filesystem of the run (see `pipeline.storage.configure`)."""
    merged = {k: dict(v) for k, v in top.items()}
    for s in stages:
        for proto, opts in (getattr(s, "storage_options", None) or {}).items():
            mine = merged.setdefault(proto, {})
            for k, v in opts.items():
                if k in mine and mine[k] != v:
                    problems.append(f"{where}: stages.{s.name}.storage_options.{proto}.{k}: differs from another "
                                    f"stage's or the recipe's (one value per protocol and key)")
                mine[k] = v
    return merged


def _cycles(stages: list[StageSpec], where: str) -> list[str]:
    deps = {s.name: set(s.inputs) for s in stages}
    done: set[str] = set()
    while True:
        ready = [n for n, d in deps.items() if n not in done and d <= done]
        if not ready:
            break
        done.update(ready)
    stuck = sorted(set(deps) - done)
    return [f"{where}: stages: dependency cycle among {', '.join(stuck)}"] if stuck else []


def load_recipe(path: str | Path, overrides: dict[str, str] | None = None) -> Recipe:
    """Read and validate a recipe file. Raises `RecipeError` with one line per problem."""
    path = str(path)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise RecipeError([f"{path}: cannot read recipe: {e.strerror}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise RecipeError([f"{path}: invalid YAML: {at}{problem}"]) from None
    return parse_recipe(data, path, overrides)
