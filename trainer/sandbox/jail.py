"""Init of a sandbox: run by the host interpreter as `python -I -S jail.py` (its config in $CODECURATE_JAIL)
as PID 1 of the fresh PID, mount, network, IPC and UTS namespaces that `unshare` made, before any generated
code exists in the process tree.

It builds a new root on a small tmpfs holding only the toolchain directories (read-only binds), the program's
directory at /sandbox (the one writable place besides a private /dev/shm), a fresh /proc, a few device nodes,
/tmp -> /sandbox and a two-line /etc/passwd; pivots into it, drops the old root, and remounts / read-only. The
program then runs in a child that has given up every privilege: uid 65534 on the host where this runs as real
root, and in any case uid 1000 of a fresh user namespace with no capabilities and no_new_privs, under the
configured rlimits. When the child exits this init exits too, and the kernel kills whatever else it started;
when the evaluator kills this init at the timeout, the same happens. Standard library only.
"""

import ctypes
import marshal
import os
import resource
import sys

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 8, 32, 4096, 16384, 1 << 18
MNT_DETACH, CLONE_NEWUSER, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS = 2, 0x10000000, 4, 38
PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}
SANDBOX_UID, NOBODY = 1000, 65534
DEVICES = ("null", "zero", "full", "random", "urandom")
libc = ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount(src, dst, fstype, flags, data=None) -> None:
    args = [None if a is None else os.fsencode(a) for a in (src, dst, fstype, data)]
    _check(libc.mount(args[0], args[1], args[2], ctypes.c_ulong(flags), args[3]), f"mount {dst}")


def bind(src: str, dst: str, flags: int) -> None:
    """Bind `src` at `dst` (a new empty directory or file), then make it read-only/nosuid/... per `flags`."""
    if os.path.isdir(src):
        os.makedirs(dst, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        open(dst, "a").close()
    mount(src, dst, None, MS_BIND | MS_REC)
    mount(None, dst, None, MS_BIND | MS_REMOUNT | flags)


def build_root(root: str, work: str, expose: list[str]) -> None:
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=4m,mode=755")
    for path in expose:
        dst = root + path
        if os.path.islink(path):
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            os.symlink(os.readlink(path), dst)
        elif os.path.exists(path):
            bind(path, dst, MS_RDONLY | MS_NOSUID | MS_NODEV)
    bind(work, root + "/sandbox", MS_NOSUID | MS_NODEV)
    os.makedirs(root + "/proc")
    try:
        mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    except OSError:
        pass  # a kernel that masks parts of the host's /proc refuses a fresh one; programs run without /proc
    for name in DEVICES:
        bind("/dev/" + name, f"{root}/dev/{name}", MS_NOSUID)
    os.makedirs(root + "/dev/shm")
    mount("tmpfs", root + "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "size=16m,mode=1777")
    for i, name in enumerate(("stdin", "stdout", "stderr")):
        os.symlink(f"/proc/self/fd/{i}", f"{root}/dev/{name}")
    os.symlink("/proc/self/fd", root + "/dev/fd")
    os.symlink("/sandbox", root + "/tmp")
    os.makedirs(root + "/etc", exist_ok=True)
    with open(root + "/etc/passwd", "w") as f:
        f.write(f"root:x:0:0::/:/bin/sh\nsandbox:x:{SANDBOX_UID}:{SANDBOX_UID}::/sandbox:/bin/sh\n")
    with open(root + "/etc/group", "w") as f:
        f.write(f"root:x:0:\nsandbox:x:{SANDBOX_UID}:\n")
    _check(libc.sethostname(b"sandbox", 7), "sethostname")
    os.chdir(root)
    _check(libc.syscall(PIVOT_ROOT[os.uname().machine], b".", b"."), "pivot_root")
    _check(libc.umount2(b".", MNT_DETACH), "umount old root")
    os.chdir("/")
    mount(None, "/", None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def drop_privileges(as_nobody: bool, limits: dict) -> None:
    """Become uid/gid 1000 of a fresh user namespace (mapped to nobody on the host when we are real root)."""
    if as_nobody:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
        _check(libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), "dumpable")  # /proc/self/uid_map is ours to write again
    uid, gid = os.geteuid(), os.getegid()
    _check(libc.unshare(CLONE_NEWUSER), "unshare user namespace")
    for name, text in (("setgroups", "deny"), ("uid_map", f"{SANDBOX_UID} {uid} 1"), ("gid_map", f"{SANDBOX_UID} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    for name, value in limits.items():
        resource.setrlimit(getattr(resource, name), (value, value))


def main(cfg: dict) -> int:
    try:
        build_root(cfg["root"], cfg["work"], cfg["expose"])
    except (OSError, KeyError) as e:
        print(f"sandbox: {e}", file=sys.stderr)
        return 125
    child = os.fork()
    if child == 0:
        try:
            drop_privileges(cfg["as_nobody"], cfg["limits"])
            os.chdir("/sandbox")
            os.execve(cfg["argv"][0], cfg["argv"], cfg["env"])
        except OSError as e:
            print(f"sandbox: {e}", file=sys.stderr)
        os._exit(126)
    while True:  # as PID 1, also reap orphans until the program itself is done
        pid, status = os.wait()
        if pid == child:
            return os.waitstatus_to_exitcode(status) % 256 if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


if __name__ == "__main__":
    sys.exit(main(marshal.loads(bytes.fromhex(os.environ["CODECURATE_JAIL"]))))
