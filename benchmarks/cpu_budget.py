"""Run a command and interrupt it (SIGINT) once its process tree has used a budget of CPU-seconds.

Equal compute for GAN families on a shared machine: with one torch thread per process, CPU time is
what the run's wall time would be alone on one quiet core, whatever else the cores are doing. The
training loop answers SIGINT with a checkpoint and exit code 130.

Usage:
    OMP_NUM_THREADS=1 python benchmarks/cpu_budget.py 900 -- medgan train configs/train/style_breastmnist.yaml \\
        --out runs/f17/breast_style --threads 1 --device cpu --no-progress
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its descendants (Linux ``/proc``)."""
    tick = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo += [int(k) for k in f.read().split()]
        except OSError:  # the process ended between the two reads
            continue
    return total


def main() -> int:
    if len(sys.argv) < 4 or "--" not in sys.argv:
        print(__doc__, file=sys.stderr)
        return 2
    budget = float(sys.argv[1])
    cmd = sys.argv[sys.argv.index("--") + 1 :]
    t0 = time.time()
    proc = subprocess.Popen(cmd)
    sent, cpu = False, 0.0
    while proc.poll() is None:
        time.sleep(2)
        cpu = max(cpu, tree_cpu_seconds(proc.pid))
        if not sent and cpu >= budget:
            proc.send_signal(signal.SIGINT)
            sent = True
            print(f"cpu_budget: {cpu:.0f} CPU-s used after {time.time() - t0:.0f} s wall: SIGINT", flush=True)
    rc = proc.wait()
    print(f"cpu_budget: rc={rc} cpu={cpu:.0f} wall={time.time() - t0:.0f}", flush=True)
    return rc if rc >= 0 else 128 - rc  # killed by a signal: the shell convention


if __name__ == "__main__":
    raise SystemExit(main())
