"""``plugpay jobs list`` and ``plugpay jobs retry``: the job queue, as the servers see it."""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime

from plugpay.cli.common import CliError, with_runtime
from plugpay.runtime import Runtime
from plugpay.services.ports.jobs import Job, JobState


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("jobs", help="the job queue: pending, running, failed")
    sub = parser.add_subparsers(dest="jobs_command", required=True, metavar="ACTION")
    listing = sub.add_parser("list", help="jobs, newest first, with attempts and last error")
    listing.add_argument("--state", choices=[s.value for s in JobState], default=None)
    listing.add_argument("--limit", type=int, default=50, help="how many (default 50)")
    listing.set_defaults(run=run_list)
    retry = sub.add_parser("retry", help="run a failed (or waiting) job again, now")
    retry.add_argument("job_id", type=int)
    retry.set_defaults(run=run_retry)


def _when(at: datetime | None) -> str:
    if at is None:
        return "-"
    seconds = (at - datetime.now(UTC)).total_seconds()
    if abs(seconds) < 90:
        return f"{seconds:+.0f}s"
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def format_jobs(jobs: list[Job]) -> str:
    if not jobs:
        return "no jobs"
    header = ("ID", "KIND", "STATE", "TRIES", "RUNS", "FOR", "LAST ERROR")
    rows = [header]
    for job in jobs:
        every = f"every {job.every_seconds}s" if job.every_seconds else "-"
        target = job.session_id or job.charger_id or every
        rows.append(
            (
                str(job.id),
                job.kind,
                job.state,
                str(job.attempts),
                _when(job.run_at) if job.state == JobState.PENDING else _when(job.done_at),
                target[:24],
                (job.last_error or "")[:60],
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def run_list(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise CliError("--limit must be at least 1")
    state = JobState(args.state) if args.state else None

    async def action(runtime: Runtime) -> list[Job]:
        return await runtime.jobs.listing(state, args.limit)

    print(format_jobs(asyncio.run(with_runtime(action))))
    return 0


def run_retry(args: argparse.Namespace) -> int:
    async def action(runtime: Runtime) -> tuple[Job | None, Job | None]:
        before = await runtime.jobs.get(args.job_id)
        return before, await runtime.jobs.retry_now(args.job_id)

    before, after = asyncio.run(with_runtime(action))
    if before is None:
        raise CliError(f"no job {args.job_id} (see: plugpay jobs list)")
    if after is None:
        raise CliError(
            f"job {args.job_id} is {before.state}: only failed or pending jobs are retried"
        )
    print(f"job {after.id} ({after.kind}) will run again now")
    return 0
