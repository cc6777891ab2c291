"""Run the benchmarks in bench/ and print their figures.

    python bench/run.py                 # every benchmark
    python bench/run.py ocpp_ingest     # only the ones named
    python bench/run.py ocpp_ingest -- --parts ab   # options after -- go to them

A benchmark is a module ``bench/<name>.py`` or a package ``bench/<name>/``.
When it defines a top-level ``main()``, that is called (with ``sys.argv`` set
to its name and the options given after ``--``); otherwise the module is run as a script, as if by
``python bench/<name>.py``. Benchmarks print their own figures and targets;
they never gate on time, so this exits non-zero only when one crashes.
"""

from __future__ import annotations

import ast
import importlib
import runpy
import sys
import time
import traceback
from pathlib import Path

BENCH = Path(__file__).resolve().parent
SKIP = {"run", "conftest"}


def discover() -> dict[str, Path]:
    """name -> the file that holds its code (the module, or the package's __init__)."""
    found: dict[str, Path] = {}
    for path in sorted(BENCH.iterdir()):
        name = path.stem
        if name.startswith(("_", ".")) or name in SKIP:
            continue
        if path.is_file() and path.suffix == ".py":
            found[name] = path
        elif path.is_dir() and (path / "__init__.py").is_file():
            found[name] = path / "__init__.py"
    return found


def defines_main(path: Path) -> bool:
    """Whether the file has a top-level ``def main`` (decided without running it)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "main"
        for node in tree.body
    )


def run_one(name: str, path: Path, options: list[str]) -> bool:
    """Run one benchmark; False when it raised or returned a non-zero status."""
    saved_argv = sys.argv
    sys.argv = [name, *options]
    try:
        if defines_main(path):
            status = importlib.import_module(name).main()
        elif path.name == "__init__.py":
            runpy.run_module(name, run_name="__main__", alter_sys=True)
            status = 0
        else:
            runpy.run_path(str(path), run_name="__main__")
            status = 0
    except SystemExit as exc:
        status = exc.code
    except Exception:
        traceback.print_exc()
        return False
    finally:
        sys.argv = saved_argv
    if isinstance(status, str):  # SystemExit("message")
        print(status, file=sys.stderr)
        return False
    return not (isinstance(status, int) and not isinstance(status, bool) and status != 0)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    names, options = args, []
    if "--" in args:
        cut = args.index("--")
        names, options = args[:cut], args[cut + 1 :]
    available = discover()
    unknown = [n for n in names if n not in available]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}", file=sys.stderr)
        print(f"available: {', '.join(available) or '(none)'}", file=sys.stderr)
        return 2
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    failed = []
    for name in names or list(available):
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        try:
            ok = run_one(name, available[name], options)
        except KeyboardInterrupt:
            print(f"== {name}: interrupted", file=sys.stderr)
            return 130
        print(f"== {name}: {'done' if ok else 'FAILED'} in {time.perf_counter() - started:.0f} s\n")
        sys.stdout.flush()
        if not ok:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
