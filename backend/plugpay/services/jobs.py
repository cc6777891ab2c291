"""The job worker: runs what the units of work queued, each job on one worker only.

Every instance runs one worker. It claims due jobs with a lease, keeps the
lease alive while a handler runs, and then marks the job done, or due again
later with backoff, or failed. A job is idempotent by construction (provider
idempotency keys come from its key, state changes are compare-and-set), so a
job whose worker died mid-way is simply run again once its lease ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from plugpay.services.ports.jobs import Job, JobQueue

log = logging.getLogger(__name__)

Handler = Callable[[Job], Awaitable[object]]


class RetryLater(Exception):
    """The job could not be done now; try again (after ``delay`` seconds if given)."""

    def __init__(self, reason: str, delay: float | None = None) -> None:
        super().__init__(reason)
        self.delay = delay


class GiveUp(Exception):
    """The job can never succeed; it is kept as failed, with this reason."""


def backoff(attempts: int, base: float = 2.0, cap: float = 600.0) -> float:
    """Seconds before the next try: doubling from ``base``, capped, with some jitter
    so that many jobs failing together do not come back together."""
    delay = min(cap, base * 2 ** max(attempts - 1, 0))
    return float(delay * random.uniform(0.8, 1.0))


@dataclass
class JobWorker:
    queue: JobQueue
    handlers: dict[str, Handler] = field(default_factory=dict)
    worker_id: str = field(default_factory=lambda: worker_name())
    lease_seconds: float = 30.0
    poll_seconds: float = 0.5
    concurrency: int = 16
    max_attempts: int = 30
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _running: dict[int, asyncio.Task[None]] = field(default_factory=dict)

    def register(self, kind: str, handler: Handler) -> None:
        self.handlers[kind] = handler

    def wake(self) -> None:
        """Something was queued here: look at once instead of at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Claim and run jobs until cancelled."""
        try:
            while True:
                self._wake.clear()
                free = self.concurrency - len(self._running)
                claimed: list[Job] = []
                if free > 0:
                    try:
                        claimed = await self.queue.claim(self.worker_id, free, self.lease_seconds)
                    except Exception:
                        log.exception("claiming jobs failed")
                for job in claimed:
                    self._start(job)
                if len(claimed) == free and free > 0:
                    continue  # there may be more due right now
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
        finally:
            await self._interrupt()

    async def run_due(self) -> int:
        """Run every job due now to its end (tests and one-off commands); how many ran."""
        count = 0
        while True:
            claimed = await self.queue.claim(self.worker_id, self.concurrency, self.lease_seconds)
            if not claimed:
                return count
            await asyncio.gather(*(self._run(job) for job in claimed))
            count += len(claimed)

    def _start(self, job: Job) -> None:
        task = asyncio.get_running_loop().create_task(self._run(job))
        self._running[job.id] = task

        def done(_: asyncio.Task[None]) -> None:
            self._running.pop(job.id, None)
            self._wake.set()  # a slot is free

        task.add_done_callback(done)

    async def _run(self, job: Job) -> None:
        handler = self.handlers.get(job.kind)
        if handler is None:
            await self.queue.fail(job, self.worker_id, f"no handler for {job.kind}")
            log.error("job %s: no handler for kind %s", job.id, job.kind)
            return
        keeper = asyncio.get_running_loop().create_task(self._keep_lease(job))
        try:
            await handler(job)
        except RetryLater as exc:
            delay = exc.delay if exc.delay is not None else backoff(job.attempts)
            await self._retry(job, str(exc), delay)
            return
        except GiveUp as exc:
            log.error("job %s (%s) gave up: %s", job.id, job.key, exc)
            await self.queue.fail(job, self.worker_id, str(exc))
            return
        except asyncio.CancelledError:
            # Shutting down: give the job back at once rather than when its lease ends.
            with contextlib.suppress(Exception):
                await asyncio.shield(self.queue.retry(job, self.worker_id, "interrupted", _now()))
            raise
        except Exception as exc:
            log.exception("job %s (%s) failed on attempt %d", job.id, job.key, job.attempts)
            await self._retry(job, f"{type(exc).__name__}: {exc}", backoff(job.attempts))
            return
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
        await self.queue.finish(job, self.worker_id)

    async def _retry(self, job: Job, error: str, delay: float) -> None:
        if job.every_seconds:  # periodic work just runs again next period
            log.warning("periodic job %s failed: %s", job.key, error)
            await self.queue.finish(job, self.worker_id, error)
            return
        if job.attempts >= self.max_attempts:
            log.error("job %s (%s) failed %d times: %s", job.id, job.key, job.attempts, error)
            await self.queue.fail(job, self.worker_id, error)
            return
        await self.queue.retry(job, self.worker_id, error, _now() + timedelta(seconds=delay))

    async def _keep_lease(self, job: Job) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                if not await self.queue.extend(job.id, self.worker_id, self.lease_seconds):
                    log.error("job %s: lease lost while running", job.id)
                    return
            except Exception:
                log.warning("job %s: could not extend its lease", job.id)

    async def _interrupt(self) -> None:
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


def worker_name() -> str:
    """host:pid:random: which process holds a job, for whoever looks at the queue."""
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _now() -> datetime:
    return datetime.now(UTC)
