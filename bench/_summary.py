"""The closing table of ``bench/run.py``: each benchmark records its headline figures.

A benchmark calls ``record(...)`` for every figure it checks against a target;
``run.py`` prints them all, one line each, after the last benchmark. Run on
its own, a benchmark records into a table nobody prints, which costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    benchmark: str
    figure: str
    target: str
    verdict: str  # PASS, MISS, or "" for a figure without a target here


ROWS: list[Row] = []


def record(benchmark: str, figure: str, target: str = "", ok: bool | None = None) -> None:
    ROWS.append(Row(benchmark, figure, target, "" if ok is None else ("PASS" if ok else "MISS")))


def table() -> str:
    if not ROWS:
        return ""
    width_b = max(len("benchmark"), *(len(r.benchmark) for r in ROWS))
    width_f = max(len("figure"), *(len(r.figure) for r in ROWS))
    width_t = max(len("target"), *(len(r.target) for r in ROWS))
    lines = [
        f"{'benchmark':<{width_b}}  {'figure':<{width_f}}  {'target':<{width_t}}  verdict",
        f"{'-' * width_b}  {'-' * width_f}  {'-' * width_t}  -------",
    ]
    lines += [
        f"{r.benchmark:<{width_b}}  {r.figure:<{width_f}}  {r.target:<{width_t}}  {r.verdict}"
        for r in ROWS
    ]
    return "\n".join(lines)
