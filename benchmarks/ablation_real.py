"""Wall and CPU time of the real-data ablation (`codecurate demo --real`, what `make ablation` runs).

    .venv/bin/python -m benchmarks.ablation_real [--run-dir runs/real] [-- extra demo options]

Runs the command as a child and samples the CPU time (user + system) of its whole process tree from
/proc every half second, because the local executor's workers are children of a forkserver that
`getrusage`/`time` never wait for. A process's last half second before it exits can be missed, so the
figure is a slight lower bound. Prints wall seconds, CPU seconds, CPU/wall and the largest summed RSS.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat(pid: int) -> tuple[int, float, int] | None:
    """(parent pid, CPU seconds, RSS bytes) of a live process, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK, int(fields[21]) * PAGE


def tree_usage(root: int) -> tuple[dict[int, float], int]:
    """CPU seconds per process of `root`'s tree, and the tree's summed RSS, now."""
    procs = {int(p): s for p in os.listdir("/proc") if p.isdigit() and (s := _stat(int(p)))}
    members, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        kids = [pid for pid, s in procs.items() if s[0] == parent and pid not in members]
        members.update(kids)
        frontier += kids
    return {p: procs[p][1] for p in members if p in procs}, sum(procs[p][2] for p in members if p in procs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-dir", default="runs/real")
    ap.add_argument("extra", nargs="*", help="more `codecurate demo` options (after --)")
    args = ap.parse_args()
    cmd = [sys.executable, "-m", "pipeline.cli", "demo", "--real", "--run-dir", args.run_dir, *args.extra]
    t0, cpu, peak = time.time(), {}, 0
    child = subprocess.Popen(cmd)
    while child.poll() is None:
        now, rss = tree_usage(child.pid)
        cpu.update({p: max(cpu.get(p, 0.0), s) for p, s in now.items()})
        peak = max(peak, rss)
        time.sleep(0.5)
    wall, total = time.time() - t0, sum(cpu.values())
    print(f"\nablation_real: rc {child.returncode}, wall {wall:.0f} s, cpu {total:.0f} s ({total / wall:.2f} cores), "
          f"peak tree RSS {peak / 2**30:.2f} GiB, {len(cpu)} processes")
    return child.returncode


if __name__ == "__main__":
    sys.exit(main())
