"""Run model-written programs in a sandboxed subprocess: temp dir, rlimits, timeout, no network, no escapes.

Python, layers each of which alone stops the common failure:
- a fresh temporary working directory, a minimal environment, `python -I -B` (no site/user paths, no .pyc);
- rlimits: CPU seconds, address space, file size, no core dumps; a wall-clock timeout that kills the group;
- an audit hook (PEP 578, cannot be removed from Python code) that refuses sockets, subprocesses, ctypes,
  and any write, rename or delete outside the temporary directory;
- where unprivileged user namespaces work, the process also runs in an empty network namespace.

Other languages (HumanEval-X / MultiPL-E: C++, JavaScript, Java, Rust, Bash) compile and run with the same temp
dir, environment, rlimits (data segment instead of address space: JVM and V8 reserve large virtual ranges) and
timeout, inside user + mount + network namespaces where every mount but the temp dir is read-only; without
such namespaces they are not run at all (`unsandboxable` says why).
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import cache, lru_cache

_GUARD = r'''
import os, sys
_ROOT = os.path.realpath(os.getcwd())
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_DENY_PREFIXES = ("socket.", "subprocess.", "os.exec", "os.posix_spawn", "os.spawn", "ctypes.", "pty.", "_posixsubprocess")
_DENY = {"os.system", "os.fork", "os.forkpty", "os.kill", "os.killpg", "resource.setrlimit", "resource.prlimit",
         "sys.setprofile", "sys.settrace", "os.chdir", "os.chroot", "os.setuid"}
_PATH_EVENTS = {"os.remove", "os.rmdir", "os.rename", "os.mkdir", "os.symlink", "os.link", "os.chmod", "os.chown",
                "os.truncate", "os.utime", "shutil.rmtree", "shutil.move", "shutil.copyfile", "os.listxattr", "os.setxattr"}

def _inside(path):
    if isinstance(path, int):
        return True
    try:
        p = os.path.realpath(os.fsdecode(path))
    except Exception:
        return False
    return p == _ROOT or p.startswith(_ROOT + os.sep)

def _hook(event, args):
    if event in _DENY or event.startswith(_DENY_PREFIXES):
        raise PermissionError(f"sandbox: {event} is not allowed")
    if event == "open":
        path, mode, flags = args
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (flags or 0) & _WRITE_FLAGS
        if writing and not _inside(path):
            raise PermissionError(f"sandbox: writing {path!r} outside the sandbox directory is not allowed")
    elif event in _PATH_EVENTS:
        for a in args[:2]:
            if isinstance(a, (str, bytes, os.PathLike)) and not _inside(a):
                raise PermissionError(f"sandbox: {event} on {a!r} outside the sandbox directory is not allowed")

sys.addaudithook(_hook)
_src = open("program.py", encoding="utf-8").read()
exec(compile(_src, "program.py", "exec"), {"__name__": "__main__"})
'''


_PROBLEM = re.compile(r"error|exception|panicked|\bassertion\b", re.IGNORECASE)


@dataclass
class Result:
    passed: bool
    status: str  # "passed", "failed" or "timeout"
    detail: str = ""


@lru_cache(maxsize=1)
def _netns_prefix() -> tuple[str, ...]:
    """`unshare -rn` where this kernel lets an unprivileged user have an empty network namespace."""
    exe = shutil.which("unshare")
    if not exe:
        return ()
    try:
        ok = subprocess.run([exe, "-rn", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    return (exe, "-rn") if ok else ()


def _limits(cpu_s: int, memory_mb: int, memory: int = resource.RLIMIT_AS):
    def apply():
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
        resource.setrlimit(memory, (memory_mb << 20, memory_mb << 20))
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 20, 64 << 20))  # room for a compiled binary
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def _run(cmd: list[str], tmp: str, timeout: float, limits, native: bool = False) -> Result:
    """Run `cmd` in `tmp` with a minimal environment; it passes if it exits 0 within `timeout` seconds. The detail
    is the output's last line (a Python traceback's exception), or for native toolchains the first line that
    names an error, exception, panic or assertion."""
    env = {"PATH": "/usr/bin:/bin", "HOME": tmp, "TMPDIR": tmp, "LANG": "C.UTF-8"}
    proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, preexec_fn=limits, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return Result(False, "timeout", f"no result within {timeout:g}s")
    if proc.returncode == 0:
        return Result(True, "passed")
    lines = (err or out).decode("utf-8", "replace").strip().splitlines()
    detail = lines[-1] if lines else f"exit status {proc.returncode}"
    if native:
        detail = next((line.strip() for line in lines if _PROBLEM.search(line)), detail)
    if proc.returncode < 0:
        detail = f"killed by signal {-proc.returncode}" + (f" ({detail})" if lines else "")
    return Result(False, "failed", detail[:500])


def run_python(program: str, timeout: float = 10.0, memory_mb: int = 1024) -> Result:
    """Run `program` as __main__; it passes if it exits 0 within `timeout` seconds."""
    with tempfile.TemporaryDirectory(prefix="codecurate-sandbox-") as tmp:
        with open(os.path.join(tmp, "program.py"), "w", encoding="utf-8") as f:
            f.write(program)
        cmd = [*_netns_prefix(), sys.executable, "-I", "-B", "-c", _GUARD]
        return _run(cmd, tmp, timeout, _limits(int(timeout) + 1, memory_mb))


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

# In fresh user, mount and network namespaces: every mount read-only except the sandbox directory ($1).
_JAIL = r'''
mount --bind "$1" "$1" || exit 97
awk '{print $2}' /proc/self/mounts | while read -r m; do mount -o remount,bind,ro "$m" 2>/dev/null; done
mount -o remount,bind,rw "$1" && cd "$1" || exit 97
shift
exec "$@"
'''


@lru_cache(maxsize=1)
def _jail_prefix() -> tuple[str, ...]:
    """`unshare -rmn bash -c JAIL` where this kernel lets an unprivileged user have those namespaces."""
    unshare, bash = shutil.which("unshare"), shutil.which("bash")
    if not (unshare and bash):
        return ()
    with tempfile.TemporaryDirectory(prefix="codecurate-sandbox-") as tmp:
        probe = tmp + "-probe"  # beside the sandbox directory: must stay unwritable
        cmd = [unshare, "-rmn", bash, "-c", _JAIL, "jail", tmp, bash, "-c", f"! touch {probe} 2>/dev/null && touch ok"]
        try:
            ok = subprocess.run(cmd, cwd=tmp, capture_output=True, timeout=20, check=False).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            ok = False
        if os.path.exists(probe):
            os.remove(probe)
            ok = False
    return (unshare, "-rmn", bash, "-c", _JAIL, "jail") if ok else ()


@cache
def _tool(name: str) -> str | None:
    """Absolute path of a toolchain binary; rustup's proxy resolved to the real rustc (the sandbox has no HOME)."""
    exe = shutil.which(name)
    if exe and name == "rustc" and os.path.basename(os.path.realpath(exe)) == "rustup":
        try:
            root = subprocess.run([exe, "--print", "sysroot"], capture_output=True, text=True, timeout=60,
                                  check=False).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return None
        exe = os.path.join(root, "bin", "rustc") if root else None
    return exe if exe and os.access(exe, os.X_OK) else None


def unsandboxable(lang: str) -> str | None:
    """Why programs in `lang` cannot run here (no runner, toolchain not on PATH, no namespaces), or None."""
    chain = TOOLCHAINS.get(lang)
    if chain is None:
        return f"no runner for {lang}"
    for step in (chain.compile, chain.run):
        if step and not step[0].startswith("./") and _tool(step[0]) is None:
            return f"{step[0]} is not on PATH"
    if not _jail_prefix():
        return "no unprivileged user/mount/network namespaces to sandbox native programs"
    return None


def run_program(lang: str, program: str, timeout: float = 10.0, memory_mb: int = 2048,
                compile_timeout: float = 120.0) -> Result:
    """Compile (where the language needs it) and run `program`; it passes if the run exits 0 in time."""
    reason = unsandboxable(lang)
    if reason:
        raise ValueError(f"cannot run {lang} programs: {reason}")
    chain = TOOLCHAINS[lang]
    with tempfile.TemporaryDirectory(prefix="codecurate-sandbox-") as tmp:
        with open(os.path.join(tmp, chain.source), "w", encoding="utf-8") as f:
            f.write(program)
        for step, limit in ((chain.compile, compile_timeout), (chain.run, timeout)):
            if not step:
                continue
            exe = step[0] if step[0].startswith("./") else _tool(step[0])
            limits = _limits(int(limit) + 1, memory_mb, resource.RLIMIT_DATA)
            r = _run([*_jail_prefix(), tmp, exe, *step[1:]], tmp, limit, limits, native=True)
            if not r.passed:
                if step is chain.compile and r.status == "failed":
                    return Result(False, "failed", f"compile error: {r.detail}")
                return r
        return Result(True, "passed")
