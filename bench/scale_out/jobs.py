"""Job-queue worker for the scale-out benchmark, in its own process (as an instance's).

    python jobs.py insert --database-url URL --count N --run R   # queue N trivial jobs
    python jobs.py work   --database-url URL --start-at EPOCH --limit S

``insert`` adds N jobs of kind ``bench.noop`` (keys ``bench:R:<n>``) in one
transaction, with the rows ``store.jobs.insert_job`` writes. ``work`` runs
plugpay's ``JobWorker`` over ``SqlJobQueue`` (claim with a lease, run, finish:
each job its own finishing transaction, as in production) with a handler that
does nothing, from ``--start-at`` until stdin closes or ``--limit`` seconds have
passed; then prints how many jobs it ran and its CPU time as one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/, for ocpp_ingest

from ocpp_ingest.servers import die_with_parent

KIND = "bench.noop"


async def insert(args: argparse.Namespace) -> dict[str, Any]:
    from plugpay.services.ports.jobs import NewJob
    from plugpay.store import tables
    from plugpay.store.chargers import now
    from plugpay.store.database import Database
    from plugpay.store.jobs import job_values

    db = Database(args.database_url)
    stamp = now()
    rows = [
        job_values(NewJob(KIND, f"bench:{args.run}:{n}", {"n": n}), stamp)
        for n in range(args.count)
    ]
    try:
        async with db.begin() as conn:
            await conn.execute(tables.jobs.insert(), rows)
    finally:
        await db.dispose()
    return {"inserted": len(rows)}


async def work(args: argparse.Namespace) -> dict[str, Any]:
    from plugpay.services.jobs import JobWorker
    from plugpay.store.database import Database
    from plugpay.store.jobs import SqlJobQueue

    db = Database(args.database_url)
    ran = [0]

    async def noop(_job: Any) -> None:
        ran[0] += 1

    worker = JobWorker(SqlJobQueue(db), {KIND: noop}, concurrency=args.concurrency)
    delay = args.start_at - time.time()
    if delay > 0:
        await asyncio.sleep(delay)
    loop = asyncio.get_running_loop()
    told = asyncio.Event()

    def read_stdin() -> None:  # a daemon thread: never holds the process at exit
        sys.stdin.readline()
        loop.call_soon_threadsafe(told.set)

    threading.Thread(target=read_stdin, daemon=True).start()
    cpu0 = time.process_time()
    task = loop.create_task(worker.run())
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(told.wait(), args.limit)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    cpu = time.process_time() - cpu0
    await db.dispose()
    return {"ran": ran[0], "cpu": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["insert", "work"])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--run", default="0")
    parser.add_argument("--start-at", type=float, default=0.0)
    parser.add_argument("--limit", type=float, default=120.0)
    parser.add_argument("--concurrency", type=int, default=16, help="JobWorker's default")
    args = parser.parse_args()
    die_with_parent()
    runner = insert if args.mode == "insert" else work
    print(json.dumps(asyncio.run(runner(args))), flush=True)


if __name__ == "__main__":
    main()
