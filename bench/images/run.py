"""Side-by-side benchmark: the seed's sharp code vs our Pillow pipeline, on the same generated inputs.

    .venv/bin/python bench/images/run.py [--rounds 7] [--per-round 3]

Installs sharp (bench/images/package.json) with npm into bench/images/node_modules if it is missing, generates
1 MP, 12 MP and 24 MP photo-like JPEGs and a 12 MP PNG, then times both implementations interleaved (round after
round, alternating which goes first, each in its own long-lived warm process, each timing from an in-memory
buffer). Prints the median ms per image and our/sharp ratio; the peak RSS of a fresh process per implementation
and input; PSNR/SSIM of both outputs against an ideal float-LANCZOS resize; and two correctness checks the seed
fails or passes (EXIF orientation, CMYK with an ICC profile). Targets from issue 4 are checked at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

JPEG_SIZES = {"1MP JPEG": (1224, 816), "12MP JPEG": (4240, 2832), "24MP JPEG": (6000, 4000)}
PNG_SIZES = {"12MP PNG": (4240, 2832)}
TARGET_RATIO = 0.6
TARGET_PSNR_DELTA = 0.5
TARGET_RSS_MB = 100.0


# --- our side: the same function the Lambda runs, with nothing else imported ------------------------------------


def _our_pipeline() -> Any:
    from functions.images.imaging import render
    from functions.images.models import Limits

    limits = Limits(max_bytes=200 * 1024 * 1024, max_pixels=100_000_000)
    return lambda data: render(data, limits)


def python_worker() -> None:
    """Long-lived timing process: same line protocol as sharp_worker.js."""
    pipeline = _our_pipeline()
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        data = Path(request["file"]).read_bytes()
        if request["cmd"] == "time":
            ms = []
            cpu_start = time.process_time()
            for _ in range(request["n"]):
                start = time.perf_counter()
                pipeline(data)
                ms.append((time.perf_counter() - start) * 1000)
            answer: dict[str, Any] = {"ms": ms, "cpuMs": (time.process_time() - cpu_start) * 1000 / request["n"]}
        else:
            rendered = pipeline(data)
            base = Path(request["out"]) / Path(request["file"]).name
            answer = {"thumbnail": f"{base}.ours.thumbnail.jpg", "medium": f"{base}.ours.medium.jpg"}
            Path(answer["thumbnail"]).write_bytes(rendered.thumbnail.data)
            Path(answer["medium"]).write_bytes(rendered.medium.data)
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


def python_once(file: str, n: int) -> None:
    pipeline = _our_pipeline()
    data = Path(file).read_bytes()
    for _ in range(n):
        pipeline(data)
    sys.stdout.write(json.dumps({"peakRssKiB": _vm_hwm_kib()}) + "\n")


def _vm_hwm_kib() -> int:
    """This process's own peak RSS. getrusage's maxrss is not: Linux carries the pre-exec fork's peak into it,
    and the fork of a driver holding decoded images is large."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


# --- driver ----------------------------------------------------------------------------------------------------


class Worker:
    """A warm worker process answering one JSON line per JSON request."""

    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=HERE)

    def ask(self, **request: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.proc.args} died (exit {self.proc.poll()})")
        return json.loads(line)  # type: ignore[no-any-return]

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def ensure_sharp() -> str:
    node = shutil.which("node")
    npm = shutil.which("npm")
    if node is None or npm is None:
        raise SystemExit("node and npm are needed for the sharp side of the benchmark")
    if not (HERE / "node_modules" / "sharp" / "package.json").exists():
        print("installing sharp into bench/images/node_modules ...", flush=True)
        subprocess.run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=HERE, check=True)
    return node


def peak_rss_mb(argv: list[str]) -> float:
    """Peak resident set size of a fresh process running `argv`, as it reports it (VmHWM) before exiting."""
    done = subprocess.run(argv, cwd=HERE, capture_output=True, text=True, check=True)
    return float(json.loads(done.stdout.strip().splitlines()[-1])["peakRssKiB"]) / 1024.0


@dataclass
class Input:
    label: str
    path: Path
    size: tuple[int, int]


def generate_inputs(folder: Path) -> list[Input]:
    from tests.functions.images_corpus import encode, photo_like

    inputs = []
    for label, size in {**JPEG_SIZES, **PNG_SIZES}.items():
        image = photo_like(*size, seed=size[0])
        path = folder / (label.replace(" ", "_").lower() + (".png" if "PNG" in label else ".jpg"))
        path.write_bytes(encode(image, "PNG") if "PNG" in label else encode(image, "JPEG", quality=90))
        inputs.append(Input(label, path, size))
    return inputs


Timings = dict[tuple[str, str], list[float]]


def time_interleaved(
    inputs: list[Input], sharp: Worker, ours: Worker, rounds: int, per_round: int
) -> tuple[Timings, Timings]:
    """Wall-clock ms of every run, and CPU ms per run (all threads) of every round, per (input, side)."""
    timings: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}
    for item in inputs:  # warm-up: first-call costs (lazy imports, JIT, allocator growth) are not per-image costs
        sharp.ask(cmd="time", file=str(item.path), n=1)
        ours.ask(cmd="time", file=str(item.path), n=1)
    for round_number in range(rounds):
        for item in inputs:
            order = [("sharp", sharp), ("ours", ours)]
            if round_number % 2:
                order.reverse()
            for name, worker in order:
                answer = worker.ask(cmd="time", file=str(item.path), n=per_round)
                timings.setdefault((item.label, name), []).extend(answer["ms"])
                cpu.setdefault((item.label, name), []).append(answer["cpuMs"])
    return timings, cpu


def quality(inputs: list[Input], sharp: Worker, ours: Worker, out: Path) -> dict[str, dict[str, float]]:
    from quality import decode_rgb, ideal, psnr, reference_jpeg, ssim

    from functions.images.imaging import MEDIUM_QUALITY, THUMBNAIL_QUALITY, medium_size

    results: dict[str, dict[str, float]] = {}
    for item in inputs:
        data = item.path.read_bytes()
        ours_files = ours.ask(cmd="write", file=str(item.path), out=str(out))
        sharp_files = sharp.ask(cmd="write", file=str(item.path), out=str(out))
        row: dict[str, float] = {}
        for kind, size, cover, q in (
            ("thumbnail", (200, 200), True, THUMBNAIL_QUALITY),
            ("medium", medium_size(*item.size), False, MEDIUM_QUALITY),
        ):
            truth = ideal(data, size, cover=cover)
            reference = decode_rgb(reference_jpeg(truth, q))
            for name, files in (("ours", ours_files), ("sharp", sharp_files)):
                decoded = decode_rgb(Path(files[kind]).read_bytes())
                if decoded.shape != truth.shape:
                    row[f"{name} {kind} psnr"] = row[f"{name} {kind} ssim"] = float("nan")
                    continue
                row[f"{name} {kind} psnr"] = psnr(decoded, truth)
                row[f"{name} {kind} ssim"] = ssim(decoded, truth)
            row[f"reference {kind} psnr"] = psnr(reference, truth)
            row[f"reference {kind} ssim"] = ssim(reference, truth)
        results[item.label] = row
    return results


def correctness(folder: Path, sharp: Worker, ours: Worker) -> list[str]:
    """The two cases the issue names: EXIF orientation and CMYK with an ICC profile."""
    from PIL import Image

    from tests.functions.images_corpus import RED, cmyk_jpeg, cyan_to_red_cmyk_profile, oriented_jpeg

    lines = []
    cases = {
        "orientation6.jpg": oriented_jpeg(6, display=(1200, 1800)),
        "cmyk_icc.jpg": cmyk_jpeg(cyan_to_red_cmyk_profile()),
    }
    for name, data in cases.items():
        (folder / name).write_bytes(data)
    for name in cases:
        answers = {
            who: worker.ask(cmd="write", file=str(folder / name), out=str(folder))
            for who, worker in (("ours", ours), ("sharp", sharp))
        }
        for who, files in answers.items():
            with Image.open(files["medium"]) as medium:
                rgb = medium.convert("RGB")
                if name.startswith("orientation"):
                    top_left = rgb.getpixel((10, 10))
                    ok = rgb.size == (533, 800) and all(abs(a - b) < 40 for a, b in zip(top_left, RED, strict=True))  # type: ignore[arg-type]
                    verdict = "OK" if ok else "WRONG"
                    lines.append(
                        f"  EXIF orientation 6, shown 1200x1800: {who:5s} medium {rgb.size}, top-left {top_left} "
                        f"-> {verdict}"
                    )
                else:
                    centre = rgb.getpixel((rgb.width // 2, rgb.height // 2))
                    r, g, b = centre  # type: ignore[misc]
                    ok = r > g + 60 and r > b + 60
                    lines.append(
                        f"  CMYK + ICC profile (cyan ink -> red): {who:5s} centre {centre} -> {'OK' if ok else 'WRONG'}"
                    )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--per-round", type=int, default=3)
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--no-quality", action="store_true", help="skip PSNR/SSIM and the correctness checks")
    parser.add_argument("--record", type=Path, metavar="DIR",
                        help="also write the report to DIR/<UTC time>.txt (the README quotes one)")
    args = parser.parse_args()
    started = dt.datetime.now(dt.UTC)

    node = ensure_sharp()
    with tempfile.TemporaryDirectory(prefix="bench-images-") as tmp:
        folder = Path(tmp)
        print("generating inputs ...", flush=True)
        inputs = generate_inputs(folder)
        sharp = Worker([node, str(HERE / "sharp_worker.js")])
        ours = Worker([sys.executable, str(HERE / "run.py"), "--worker"])
        try:
            print(
                f"timing: {args.rounds} interleaved rounds x {args.per_round} runs per image per side ...", flush=True
            )
            timings, cpu = time_interleaved(inputs, sharp, ours, args.rounds, args.per_round)
            scores: dict[str, dict[str, float]] = {}
            checks: list[str] = []
            if not args.no_quality:
                print("quality and correctness ...", flush=True)
                scores = quality(inputs, sharp, ours, folder)
                checks = correctness(folder, sharp, ours)
        finally:
            sharp.close()
            ours.close()
        rss = {
            (item.label, name): peak_rss_mb(argv)
            for item in inputs
            for name, argv in (
                ("sharp", [node, str(HERE / "sharp_worker.js"), "once", str(item.path), "3"]),
                ("ours", [sys.executable, str(HERE / "run.py"), "--once", str(item.path), "3"]),
            )
        }

    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        print(f"run.py --rounds {args.rounds} --per-round {args.per_round}{' --no-quality' if args.no_quality else ''}"
              f", started {started:%Y-%m-%d %H:%M} UTC, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        failures = report(inputs, timings, cpu, scores, rss, checks)
    sys.stdout.write(text.getvalue())
    if args.record is not None:
        args.record.mkdir(parents=True, exist_ok=True)
        path = args.record / f"{started:%Y%m%dT%H%M%SZ}.txt"
        path.write_text(text.getvalue())
        print(f"recorded in {path}")
    return 1 if failures and args.check else 0


def report(
    inputs: list[Input],
    timings: Timings,
    cpu: Timings,
    scores: dict[str, dict[str, float]],
    rss: dict[tuple[str, str], float],
    checks: list[str],
) -> list[str]:
    failures: list[str] = []
    print(f"\nmachine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the end\n")
    print(
        "median wall-clock ms per image (the target), mean CPU ms per image (all threads), peak RSS of a fresh process"
    )
    print(
        f"{'input':10s} {'size':>10s} {'sharp ms':>9s} {'ours ms':>8s} {'ours/sharp':>10s} "
        f"{'sharp CPU':>9s} {'ours CPU':>8s} {'sharp RSS MB':>12s} {'ours RSS MB':>11s}"
    )
    for item in inputs:
        sharp_ms = statistics.median(timings[(item.label, "sharp")])
        ours_ms = statistics.median(timings[(item.label, "ours")])
        ratio = ours_ms / sharp_ms
        size = f"{item.size[0]}x{item.size[1]}"
        print(
            f"{item.label:10s} {size:>10s} {sharp_ms:9.1f} {ours_ms:8.1f} {ratio:10.2f} "
            f"{statistics.mean(cpu[(item.label, 'sharp')]):9.1f} {statistics.mean(cpu[(item.label, 'ours')]):8.1f} "
            f"{rss[(item.label, 'sharp')]:12.1f} {rss[(item.label, 'ours')]:11.1f}"
        )
        if item.label in ("12MP JPEG", "24MP JPEG") and ratio > TARGET_RATIO:
            failures.append(f"{item.label}: ours/sharp {ratio:.2f} > {TARGET_RATIO}")
        if item.label == "24MP JPEG" and rss[(item.label, "ours")] >= TARGET_RSS_MB:
            failures.append(f"{item.label}: peak RSS {rss[(item.label, 'ours')]:.1f} MB >= {TARGET_RSS_MB}")

    print("\nquality against an ideal resize (full decode, float LANCZOS to the target size); PSNR dB / SSIM")
    print(f"{'input':10s} {'derivative':10s} {'reference JPEG':>16s} {'ours':>16s} {'sharp':>16s} {'ours-ref dB':>11s}")
    for item in inputs if scores else []:
        row = scores[item.label]
        for kind in ("thumbnail", "medium"):
            cells = [
                f"{row[f'{who} {kind} psnr']:6.2f} / {row[f'{who} {kind} ssim']:.4f}"
                for who in ("reference", "ours", "sharp")
            ]
            delta = row[f"ours {kind} psnr"] - row[f"reference {kind} psnr"]
            print(f"{item.label:10s} {kind:10s} {cells[0]:>16s} {cells[1]:>16s} {cells[2]:>16s} {delta:11.2f}")
            if delta < -TARGET_PSNR_DELTA:
                failures.append(f"{item.label} {kind}: PSNR {delta:.2f} dB below the reference")

    print("\ncorrectness")
    for line in checks:
        print(line)
        if line.endswith("WRONG") and "ours" in line:
            failures.append(line.strip())

    print("\ntargets: " + ("all met" if not failures else "MISSED"))
    for failure in failures:
        print(f"  - {failure}")
    return failures


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        python_worker()
    elif len(sys.argv) > 1 and sys.argv[1] == "--once":
        python_once(sys.argv[2], int(sys.argv[3]))
    else:
        sys.path.insert(0, str(HERE))  # quality.py, only for the driver (numpy stays out of the measured processes)
        sys.exit(main())
