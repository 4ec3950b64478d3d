"""Run model-written programs so that a hostile one cannot reach the host: `run_python`, `run_program`.

Each run gets a fresh temporary directory and its own process tree in fresh PID, mount, network, IPC and UTS
namespaces (`unshare` from util-linux); `jail.py`, the tree's init, gives it a root holding only the toolchain
directories (read-only) and the temp dir (at /sandbox, the one writable place), then runs it without any
privilege (a fresh user namespace, uid 65534 on the host when we are root) under rlimits: CPU seconds, memory,
file size, process count, no core dumps. At the timeout the evaluator kills the init, and with it everything
the program started. Nothing in the program's own interpreter enforces any of this.

Where the kernel refuses these namespaces, generated code is not run at all unless the user allowed it with
`--unsafe-exec` (`allow_unsafe_exec`): then it runs in the temp dir under the same rlimits and timeout only.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import re
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import cache

_PROBLEM = re.compile(r"error|exception|panicked|\bassertion\b", re.IGNORECASE)
_JAIL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "jail.py")
_SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
           "/etc/alternatives", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime")
_NOBODY = 65534
_OUTPUT_TAIL = 64 << 10
_unsafe_exec = False


@dataclass
class Result:
    passed: bool
    status: str  # "passed", "failed" or "timeout"
    detail: str = ""


class Refused(ValueError):
    """Generated code would run without isolation and the user did not pass --unsafe-exec."""


def allow_unsafe_exec(allowed: bool) -> None:
    """Whether generated code may run without isolation where none is available (the CLI's --unsafe-exec)."""
    global _unsafe_exec
    _unsafe_exec = allowed


def require() -> str | None:
    """None where programs run isolated; else why not, if --unsafe-exec allowed running them anyway; else Refused."""
    reason = isolation()
    if reason and not _unsafe_exec:
        raise Refused(f"refusing to run generated code: no sandbox here ({reason}); pass --unsafe-exec to run it without one")
    return reason


def _python() -> str:
    """The base interpreter (not a venv's): its prefix is all the sandbox needs to expose."""
    return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)


def _expose(tools: tuple[str, ...]) -> list[str]:
    """Host paths visible (read-only) in the sandbox: system dirs, Java's /etc config, each tool's install prefix."""
    paths = [p for p in _SYSTEM if os.path.lexists(p)]
    paths += sorted(os.path.join("/etc", e) for e in os.listdir("/etc") if e.startswith("java"))
    for tool in tools:
        exe = os.path.realpath(tool)
        if not any(exe.startswith(p.rstrip("/") + "/") for p in map(os.path.realpath, paths)):
            prefix = os.path.dirname(os.path.dirname(exe))  # .../bin/tool -> ...; never the whole of /
            paths.append(prefix if prefix != "/" else os.path.dirname(exe))
    return paths


def _limits(cpu_s: int, memory_mb: int, memory: str, nproc: int) -> dict:
    return {"RLIMIT_CPU": cpu_s, memory: memory_mb << 20, "RLIMIT_FSIZE": 64 << 20,  # room for a compiled binary
            "RLIMIT_CORE": 0, "RLIMIT_NPROC": nproc}


def _command(tmp: str, argv: list[str], limits: dict, tools: tuple[str, ...]) -> tuple[list[str], dict]:
    """`unshare ... python jail.py` and its environment: the isolated run of `argv` in `tmp`/work."""
    as_root = os.geteuid() == 0
    cfg = {"root": os.path.join(tmp, "root"), "work": os.path.join(tmp, "work"), "expose": _expose((_python(), *tools)),
           "as_nobody": as_root, "limits": limits, "argv": argv,
           "env": {"PATH": "/usr/bin:/bin", "HOME": "/sandbox", "TMPDIR": "/sandbox", "LANG": "C.UTF-8"}}
    namespaces = ["--pid", "--fork", "--kill-child", "--mount", "--net", "--ipc", "--uts"]
    cmd = [shutil.which("unshare") or "unshare", *namespaces, *([] if as_root else ["--map-root-user"]), _python(), "-I", "-S", _JAIL]
    # marshal: the init starts faster without json's imports; in its environment: the program cannot read that
    return cmd, {"CODECURATE_JAIL": marshal.dumps(cfg).hex()}


def _kill(proc: subprocess.Popen) -> None:
    """Kill `proc`'s process group, and wait until the init it forked (unshare's child) is gone: the kernel has then
    killed every process of its PID namespace, setsid daemons included."""
    inits = []
    with contextlib.suppress(OSError), open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
        for pid in f.read().split():
            with contextlib.suppress(OSError):
                inits.append(os.pidfd_open(int(pid)))  # held before the kill: the pid cannot be reused meanwhile
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    for fd in inits:
        select.select([fd], [], [], 30)  # readable once the init has exited
        os.close(fd)


def _tail(f) -> list[str]:
    f.seek(max(0, os.fstat(f.fileno()).st_size - _OUTPUT_TAIL))
    return f.read().decode("utf-8", "replace").strip().splitlines()


def _run(argv: list[str], tmp: str, timeout: float, limits: dict, tools: tuple[str, ...] = (), native: bool = False) -> Result:
    """Run `argv` in `tmp`/work, isolated when the kernel allows; it passes if it exits 0 within `timeout` seconds.
    The detail is the output's last line (a Python traceback's exception), or for native toolchains the first line
    that names an error, exception, panic or assertion."""
    isolated = require() is None
    work = os.path.join(tmp, "work")
    if isolated:
        (cmd, env), cwd, preexec = _command(tmp, argv, limits, tools), tmp, None
        os.makedirs(os.path.join(tmp, "root"), exist_ok=True)  # stays empty: the tmpfs root lives in the namespace
        owner = _NOBODY if os.geteuid() == 0 else -1
        for name in [work, *(os.path.join(work, f) for f in os.listdir(work))]:
            os.chown(name, owner, owner, follow_symlinks=False)
    else:
        def preexec():
            for name, value in limits.items():
                resource.setrlimit(getattr(resource, name), (value, value))

        env = {"PATH": "/usr/bin:/bin", "HOME": work, "TMPDIR": work, "LANG": "C.UTF-8"}
        cmd, cwd = argv, work
    with open(os.path.join(tmp, "stdout"), "w+b") as out, open(os.path.join(tmp, "stderr"), "w+b") as err:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=err, preexec_fn=preexec, start_new_session=True)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(proc)
            return Result(False, "timeout", f"no result within {timeout:g}s")
        if code == 0:
            return Result(True, "passed")
        lines = _tail(err) or _tail(out)
    detail = lines[-1] if lines else f"exit status {code}"
    if native:
        detail = next((line.strip() for line in lines if _PROBLEM.search(line)), detail)
    signum = -code if code < 0 else code - 128 if isolated and code > 128 else 0
    if signum:
        detail = f"killed by signal {signum}" + (f" ({detail})" if lines else "")
    return Result(False, "failed", detail[:500])


@cache
def isolation() -> str | None:
    """Why programs cannot be isolated here (no `unshare`, namespaces refused), or None when they can."""
    if not shutil.which("unshare"):
        return "unshare (util-linux) is not installed"
    with tempfile.TemporaryDirectory(prefix="codecurate-sandbox-") as tmp:
        os.makedirs(os.path.join(tmp, "work"))
        check = f"import os, sys; sys.exit(os.getuid() != 1000 or os.path.exists({tmp!r}) or os.access('/usr', os.W_OK))"
        argv = [_python(), "-I", "-S", "-c", check]
        try:
            cmd, env = _command(tmp, argv, _limits(10, 1024, "RLIMIT_AS", 16), ())
            os.makedirs(os.path.join(tmp, "root"))
            proc = subprocess.run(cmd, cwd=tmp, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"namespaces: {e}"
        if proc.returncode != 0:
            lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            return lines[-1] if lines else f"the isolation check exited {proc.returncode}"
    return None


def run_python(program: str, timeout: float = 10.0, memory_mb: int = 1024) -> Result:
    """Run `program` as __main__ (standard library only: no site-packages); it passes if it exits 0 within `timeout` s."""
    with tempfile.TemporaryDirectory(prefix="codecurate-sandbox-") as tmp:
        os.makedirs(os.path.join(tmp, "work"))
        with open(os.path.join(tmp, "work", "program.py"), "w", encoding="utf-8") as f:
            f.write(program)
        return _run([_python(), "-I", "-S", "-B", "program.py"], tmp, timeout,
                    _limits(int(timeout) + 1, memory_mb, "RLIMIT_AS", 64))


@dataclass(frozen=True)
class Toolchain:
    source: str  # the file the program is written to
    run: tuple[str, ...]
    compile: tuple[str, ...] = ()


TOOLCHAINS = {
    "cpp": Toolchain("main.cpp", ("./main",), ("g++", "-std=c++17", "-o", "main", "main.cpp")),
    "js": Toolchain("main.js", ("node", "main.js")),
    "java": Toolchain("Problem.java", ("java", "-ea", "-Xmx256m", "-XX:+UseSerialGC", "-XX:-UsePerfData", "Problem"),
                      ("javac", "-J-Xmx512m", "-J-XX:-UsePerfData", "Problem.java")),
    "rs": Toolchain("main.rs", ("./main",), ("rustc", "-o", "main", "main.rs")),
    "sh": Toolchain("main.sh", ("bash", "main.sh")),
}


@cache
def _tool(name: str) -> str | None:
    """Resolved path of a toolchain binary; rustup's proxy resolved to the real rustc (the sandbox has no HOME)."""
    exe = shutil.which(name)
    if exe and name == "rustc" and os.path.basename(os.path.realpath(exe)) == "rustup":
        try:
            root = subprocess.run([exe, "--print", "sysroot"], capture_output=True, text=True, timeout=60,
                                  check=False).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return None
        exe = os.path.join(root, "bin", "rustc") if root else None
    return os.path.realpath(exe) if exe and os.access(exe, os.X_OK) else None


def unsandboxable(lang: str) -> str | None:
    """Why programs in `lang` cannot run here (no runner, toolchain not on PATH, no sandbox), or None."""
    chain = TOOLCHAINS.get(lang)
    if chain is None:
        return f"no runner for {lang}"
    for step in (chain.compile, chain.run):
        if step and not step[0].startswith("./") and _tool(step[0]) is None:
            return f"{step[0]} is not on PATH"
    try:
        require()
    except Refused as e:
        return str(e)
    return None


def run_program(lang: str, program: str, timeout: float = 10.0, memory_mb: int = 2048,
                compile_timeout: float = 120.0) -> Result:
    """Compile (where the language needs it) and run `program`; it passes if the run exits 0 in time."""
    reason = unsandboxable(lang)
    if reason:
        raise ValueError(f"cannot run {lang} programs: {reason}")
    chain = TOOLCHAINS[lang]
    tools = tuple(_tool(s[0]) for s in (chain.compile, chain.run) if s and not s[0].startswith("./"))
    with tempfile.TemporaryDirectory(prefix="codecurate-sandbox-") as tmp:
        os.makedirs(os.path.join(tmp, "work"))
        with open(os.path.join(tmp, "work", chain.source), "w", encoding="utf-8") as f:
            f.write(program)
        for step, limit in ((chain.compile, compile_timeout), (chain.run, timeout)):
            if not step:
                continue
            exe = step[0] if step[0].startswith("./") else _tool(step[0])
            r = _run([exe, *step[1:]], tmp, limit, _limits(int(limit) + 1, memory_mb, "RLIMIT_DATA", 128), tools, native=True)
            if not r.passed:
                if step is chain.compile and r.status == "failed":
                    return Result(False, "failed", f"compile error: {r.detail}")
                return r
        return Result(True, "passed")
