"""Run one benchmark command and record its output with the machine, versions and date.

Usage, from the repository root::

    OPENBLAS_NUM_THREADS=1 python docs/performance/record.py OUT.txt -- python benchmarks/bench_x.py --quick

The text file starts with a header (command, UTC date, CPU, core count,
Python / numpy / scipy / numba / tensorapprox versions, BLAS thread setting)
followed by everything the benchmark printed. The performance page of the
documentation includes these files verbatim; nothing in them is edited by hand.
"""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def header(cmd: list[str]) -> str:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    versions = ", ".join(f"{d} {_version(d)}" for d in ("tensorapprox", "numpy", "scipy", "numba", "tensorly"))
    threads = ", ".join(f"{v}={os.environ.get(v, 'unset')}" for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"))
    return "\n".join([
        f"command:  {shlex.join(cmd)}",
        f"date:     {now}",
        f"machine:  {_cpu_model()}, {os.cpu_count()} logical cores visible, {platform.system()} {platform.release()}"
        " (a shared machine: absolute times are noisy, read the ratios)",
        f"python:   {platform.python_version()}",
        f"versions: {versions}",
        f"threads:  {threads}",
        "",
    ])


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    out, cmd = Path(argv[0]), argv[2:]
    t0 = time.perf_counter()
    # "python" means the interpreter running this script, so the versions in
    # the header are the versions the benchmark ran with
    run_cmd = [sys.executable, *cmd[1:]] if cmd[0] in ("python", "python3") else cmd
    proc = subprocess.run(run_cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    text = header(cmd) + proc.stdout
    if proc.returncode != 0:
        text += f"\n[exit status {proc.returncode}]\n{proc.stderr}"
    text += f"\n[wall time of the whole command: {wall:.0f} s]\n"
    out.write_text(text)
    print(text)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
