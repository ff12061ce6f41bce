#!/usr/bin/env python
"""What shipping bytecode saves a cold start: each handler imported with and without `.pyc` files beside its code
and its layers' packages, the way Lambda's read-only /opt and /var/task would meet them.

    .venv/bin/python bench/bytecode.py [--runs 11] [--only todos]

Lambda runs python3.12 on arm64; this machine runs its own Python on x86_64. So the two trees are built here for
this interpreter: the packages of both layer locks, copied from this venv (same versions as the locks pin), plus
`functions/`; one tree gets unchecked-hash bytecode from `infra.bytecode`, exactly as `make layers` and the code
archives do, the other none. Each sample is a fresh `python -I -B` (nothing written back, as on a read-only
mount) that imports one handler module; trees alternate per sample so both see the same load.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from infra import bytecode  # noqa: E402
from infra.layers import LAYERS, locked_packages  # noqa: E402
from infra.packaging import FUNCTIONS_DIR  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from coldstart import deployed_handlers  # noqa: E402

CHILD = ("import sys, time; sys.path[:0] = [sys.argv[1], sys.argv[1] + '/python']; t = time.perf_counter(); "
         "import importlib; importlib.import_module(sys.argv[2]); print((time.perf_counter() - t) * 1e3)")


def _copy_distribution(name: str, site: Path) -> None:
    """Every file pip installed for distribution `name` in this venv, copied under `site` (caches skipped)."""
    dist = metadata.distribution(name)
    for file in dist.files or ():
        source = Path(str(dist.locate_file(file)))
        if "__pycache__" in file.parts or file.parts[0] == ".." or not source.is_file():
            continue
        target = site / Path(*file.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


def build_tree(root: Path, *, compiled: bool) -> Path:
    site = root / "python"
    for layer in LAYERS:
        for name in locked_packages(layer.lock):
            _copy_distribution(name, site)
    shutil.copytree(FUNCTIONS_DIR, root / "functions", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    if compiled:
        version = f"{sys.version_info[0]}.{sys.version_info[1]}"
        compiler = bytecode.find_compiler(version)
        if compiler is None:
            raise SystemExit(f"no CPython {version} found to compile with")
        bytecode.compile_tree(compiler, root, runtime_path=str(root))
    return root


def sample(tree: Path, module: str) -> float:
    out = subprocess.run([sys.executable, "-I", "-B", "-c", CHILD, str(tree), module], capture_output=True, text=True,
                         check=True, env={"PATH": os.environ.get("PATH", "")}, timeout=60)
    return float(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--only", help="only handler modules whose name contains this")
    args = parser.parse_args()
    modules = list(dict.fromkeys(h.rpartition(".")[0] for h in deployed_handlers()))
    modules = [m for m in modules if not args.only or args.only in m]
    start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bytecode-bench-") as tmp:
        trees = {"with bytecode": build_tree(Path(tmp) / "with", compiled=True),
                 "source only": build_tree(Path(tmp) / "without", compiled=False)}
        times: dict[tuple[str, str], list[float]] = {(m, t): [] for m in modules for t in trees}
        for run in range(args.runs):
            for module in modules:
                for label in (list(trees) if run % 2 == 0 else list(trees)[::-1]):
                    times[(module, label)].append(sample(trees[label], module))
    end = os.getloadavg()
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {args.runs} fresh `python -I -B` per cell; "
          f"load average (1 min) {start[0]:.2f} at start, {end[0]:.2f} at end\n")
    print("| handler module | import with bytecode ms (median) | source only ms (median) | ratio |")
    print("|---|---:|---:|---:|")
    for module in modules:
        with_pyc = statistics.median(times[(module, "with bytecode")])
        without = statistics.median(times[(module, "source only")])
        print(f"| `{module}` | {with_pyc:.0f} | {without:.0f} | {without / with_pyc:.1f}x |")


if __name__ == "__main__":
    main()
