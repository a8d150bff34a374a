"""Every benchmark in this folder, one table: ``python tests/benchmarks/run_all.py [--quick]``.

A ``bench_*.py`` that exposes ``run(quick: bool = False) -> list[BenchRow]`` (``_harness.BenchRow``) is
imported and called; its rows carry the ratio to the bare Litestar route where one applies. A script
without ``run`` yet is executed as a subprocess with short arguments (``--quick``: shorter still) and
its last summary line is reported as the row's note. Each one is bounded by a timeout, so the whole
table takes minutes, not hours; a benchmark that fails or times out is a row saying so.

    .venv/bin/python tests/benchmarks/run_all.py [--quick] [--only hot_path,verify] [--pg URL]
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import subprocess
import sys
import time
from pathlib import Path

from _harness import PYTHON, BenchRow, print_rows

HERE = Path(__file__).parent
# Short runs of the scripts that have no run() yet: (arguments, --quick arguments, timeout seconds).
SCRIPT_ARGS: dict[str, tuple[list[str], list[str], int]] = {
    "bench_auth_overhead": (["--seconds", "4", "--rounds", "3"], ["--seconds", "2", "--rounds", "3"], 240),
    "bench_verify": (["--seconds", "4", "--rounds", "3"], ["--seconds", "2", "--rounds", "2"], 240),
    "bench_middleware_revocation": (["--iterations", "100"], ["--iterations", "20"], 180),
    "bench_revocation_propagation": (["--iterations", "100"], ["--iterations", "20"], 240),
    "bench_usage_load": (["--seconds", "10"], ["--seconds", "4"], 240),
    "bench_request_cpu": (["--seconds", "4", "--rounds", "2"], ["--seconds", "2", "--rounds", "1"], 240),
    "bench_post_floor": (["--seconds", "3", "--rounds", "2"], ["--seconds", "2", "--rounds", "1"], 180),
    "bench_usage_rebuild": (["--rows", "200000"], ["--rows", "50000"], 400),
    "bench_webhook_delivery": (
        ["--iterations", "20", "--backlog", "100"],
        ["--iterations", "5", "--backlog", "30"],
        240,
    ),
}


def _script_rows(name: str, quick: bool, pg: str | None) -> list[BenchRow]:
    full, short, timeout = SCRIPT_ARGS.get(name, ([], [], 300))
    args = list(short if quick else full)
    if pg and name in {"bench_webhook_delivery"}:
        args += ["--pg", pg]
    started = time.monotonic()
    try:
        done = subprocess.run(
            [PYTHON, str(HERE / f"{name}.py"), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=HERE,
        )
    except subprocess.TimeoutExpired:
        return [BenchRow(name, "did not finish", float(timeout), "s", note=f"timed out: {' '.join(args)}")]
    lines = [line.strip() for line in done.stdout.splitlines() if line.strip()]
    summary = lines[-1] if lines else (done.stderr.strip().splitlines() or ["no output"])[-1]
    status = "ok" if done.returncode == 0 else f"exit {done.returncode}"
    return [
        BenchRow(
            name.removeprefix("bench_"),
            f"{' '.join(args)} ({status})",
            time.monotonic() - started,
            "s",
            note=summary.replace("|", "/")[:200],
        )
    ]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short rounds: a few minutes in all")
    parser.add_argument("--only", help="comma-separated names (bench_ prefix optional)")
    parser.add_argument("--pg", help="also run the PostgreSQL variants: postgresql://postgres@127.0.0.1:5432")
    args = parser.parse_args()
    names = sorted(path.stem for path in HERE.glob("bench_*.py"))
    if args.only:
        wanted = {n if n.startswith("bench_") else f"bench_{n}" for n in args.only.split(",")}
        names = [n for n in names if n in wanted]
    rows: list[BenchRow] = []
    for name in names:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        module = importlib.import_module(name)
        run = getattr(module, "run", None)
        if run is None:
            rows += _script_rows(name, args.quick, args.pg)
            continue
        try:
            rows += run(args.quick)
            if args.pg and "pg" in inspect.signature(run).parameters:
                rows += run(args.quick, pg=args.pg)
        except Exception as exc:  # one failing benchmark must not hide the others' figures
            rows.append(BenchRow(name.removeprefix("bench_"), "failed", 0.0, "", note=str(exc)[:200]))
    print_rows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
