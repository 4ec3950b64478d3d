"""Run model-written Python in a sandboxed subprocess: temp dir, rlimits, timeout, no network, no escapes.

Layers, each of which alone stops the common failure:
- a fresh temporary working directory, a minimal environment, `python -I -B` (no site/user paths, no .pyc);
- rlimits: CPU seconds, address space, file size, no core dumps; a wall-clock timeout that kills the group;
- an audit hook (PEP 578, cannot be removed from Python code) that refuses sockets, subprocesses, ctypes,
  and any write, rename or delete outside the temporary directory;
- where unprivileged user namespaces work, the process also runs in an empty network namespace.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import lru_cache

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


def _limits(cpu_s: int, memory_mb: int):
    def apply():
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
        resource.setrlimit(resource.RLIMIT_FSIZE, (16 << 20, 16 << 20))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def run_python(program: str, timeout: float = 10.0, memory_mb: int = 1024) -> Result:
    """Run `program` as __main__; it passes if it exits 0 within `timeout` seconds."""
    with tempfile.TemporaryDirectory(prefix="codecurate-sandbox-") as tmp:
        with open(os.path.join(tmp, "program.py"), "w", encoding="utf-8") as f:
            f.write(program)
        cmd = [*_netns_prefix(), sys.executable, "-I", "-B", "-c", _GUARD]
        env = {"PATH": "/usr/bin:/bin", "HOME": tmp, "TMPDIR": tmp, "LANG": "C.UTF-8"}
        proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, preexec_fn=_limits(int(timeout) + 1, memory_mb),
                                start_new_session=True)
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return Result(False, "timeout", f"no result within {timeout:g}s")
        if proc.returncode == 0:
            return Result(True, "passed")
        lines = err.decode("utf-8", "replace").strip().splitlines()
        detail = lines[-1] if lines else f"exit status {proc.returncode}"
        if proc.returncode < 0:
            detail = f"killed by signal {-proc.returncode}" + (f" ({detail})" if lines else "")
        return Result(False, "failed", detail[:500])
