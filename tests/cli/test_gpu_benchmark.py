"""`scripts/benchmark.py --only gpu` on a machine without a GPU: one line, exit code 0, and
docs/performance.md as it was (the GPU rows come from a machine with a GPU)."""

import subprocess
import sys

from helpers import REPO, subprocess_env


def test_the_gpu_benchmark_without_a_gpu_says_so_in_one_line(tmp_path):
    docs = [REPO / "docs" / "performance.md", REPO / "docs" / "performance.json"]
    before = [path.read_bytes() for path in docs]
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "benchmark.py"), "--only", "gpu"],
        cwd=tmp_path,
        env=subprocess_env(CUDA_VISIBLE_DEVICES=""),  # no GPU, also on a machine with one
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (line,) = result.stdout.splitlines()
    assert "sees no GPU" in line and 'pip install -e ".[gpu]"' in line
    assert [path.read_bytes() for path in docs] == before
