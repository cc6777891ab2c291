"""One live charger connection: reads frames, answers CALLs, sends our CALLs.

Inbound CALLs are handled one at a time, in order, as OCPP-J requires of the
charger anyway; answers to our own CALLs are matched by message id. The
reader never waits for a handler: CALLs queue for a worker while answers
are settled at once, so a handler that awaits a command to the same charger
(CALLs "can always cross each other", OCPP-J §4.1.1) gets its answer.
Every frame in either direction goes to the message log; a CALL from the
charger shares its row with our answer.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from plugpay.domain.errors import (
    ChargerOffline,
    CommandFailed,
    CommandTimeout,
    InvalidInput,
    PlugpayError,
)
from plugpay.ocpp import framing, schemas
from plugpay.ocpp.framing import Call, CallResult, FrameError
from plugpay.ocpp.metrics import CALL_ERRORS, HANDLER_SECONDS, MESSAGES, metric_code
from plugpay.services.ports import LoggedMessage, MessageLog

log = logging.getLogger(__name__)

Handler = Callable[["ChargerConnection", dict[str, Any]], Awaitable[dict[str, Any]]]


# A charger may not send a CALL before the last one is answered (OCPP-J
# §4.1.1); one that floods is read no faster than it is served.
MAX_QUEUED_CALLS = 32
# A connection's CALL worker stops after this long without a CALL.
WORKER_IDLE_SECONDS = 60.0


@functools.cache
def _answered(version: str, action: str) -> tuple[Any, Any]:
    """The labelled metrics of a handled CALL, looked up once per (version, action):
    only known actions with a handler get here, so the cache stays small."""
    return HANDLER_SECONDS.labels(action), MESSAGES.labels(version, action, "ok")


def _internal(unique_id: str) -> FrameError:
    return FrameError("internal", "Internal error", unique_id)


class ChargerConnection:
    def __init__(
        self,
        charger_id: str,
        version: str,
        send_text: Callable[[str], Awaitable[None]],
        handlers: dict[str, Handler],
        message_log: MessageLog,
        services: Any,
        call_timeout: float = 30.0,
    ) -> None:
        self.charger_id = charger_id
        self.version = version
        self._send_text = send_text
        self._handlers = handlers
        self._log = message_log
        self.services = services
        self.call_timeout = call_timeout
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._call_lock = asyncio.Lock()
        self._inbox: deque[tuple[Call, str]] = deque()
        self._worker: asyncio.Task[None] | None = None
        # The parked worker's wake-up call (a future of the worker's loop, not an
        # asyncio.Event: Event.wait asks for the running loop, a getpid() system
        # call per CALL on Python 3.11).
        self._wake: asyncio.Future[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._idle_check: asyncio.TimerHandle | None = None
        self._served = 0
        self._served_before = 0
        self.closed = False
        self.close_hook: Callable[[], Awaitable[None]] | None = None

    def _record(
        self,
        direction: str,
        frame: str,
        message_type: int | None,
        unique_id: str | None,
        action: str | None,
    ) -> None:
        self._log.append(
            LoggedMessage(
                self.charger_id,
                direction,
                message_type,
                unique_id,
                action,
                frame,
                datetime.now(UTC),
            )
        )

    async def _send(
        self, frame: str, message_type: int, unique_id: str, action: str | None
    ) -> None:
        self._record("out", frame, message_type, unique_id, action)
        await self._send_text(frame)

    # -- inbound ------------------------------------------------------------
    async def receive(self, text: str | bytes) -> None:
        """Handle one frame from the charger."""
        try:
            frame = framing.parse_frame(text)
        except FrameError as exc:
            raw = text if isinstance(text, str) else text.decode("utf-8", errors="replace")
            self._record("in", raw, None, exc.unique_id, None)
            if exc.reply:
                await self._reply_error(exc, None)
            else:  # a broken answer: fail the command it answers, never answer it
                self._settle(exc.unique_id, CommandFailed("FormationViolation", exc.description))
            return
        raw = text if isinstance(text, str) else text.decode()
        if isinstance(frame, Call):
            self._inbox.append((frame, raw))
            self._idle.clear()
            if self._worker is None or self._worker.done():
                self._start_worker()
            elif self._wake is not None and not self._wake.done():
                self._wake.set_result(None)
            if len(self._inbox) > MAX_QUEUED_CALLS:
                await self._idle.wait()
        elif isinstance(frame, CallResult):
            self._record("in", raw, framing.CALLRESULT, frame.unique_id, None)
            self._settle(frame.unique_id, frame.payload)
        else:
            self._record("in", raw, framing.CALLERROR, frame.unique_id, None)
            CALL_ERRORS.labels("in", metric_code(frame.code)).inc()
            self._settle(
                frame.unique_id, CommandFailed(frame.code, frame.description, frame.details)
            )

    async def _work(self, loop: asyncio.AbstractEventLoop) -> None:
        """Handle queued CALLs in order. An idle charger holds no task: the idle
        check stops a worker that served nothing for a while, and a new CALL
        starts one again."""
        while True:
            while self._inbox:
                call, raw = self._inbox.popleft()
                self._served += 1
                try:
                    await self._on_call(call, raw)
                except Exception:  # the answer could not be sent: the socket is gone
                    log.debug("answer to %s %s not sent", self.charger_id, call.action)
            self._idle.set()
            self._wake = loop.create_future()
            try:
                await self._wake
            finally:
                self._wake = None
            self._idle.clear()

    def _start_worker(self) -> None:
        loop = asyncio.get_running_loop()
        self._worker = loop.create_task(self._work(loop))
        self._served_before = self._served
        if self._idle_check is None:
            self._idle_check = loop.call_later(WORKER_IDLE_SECONDS, self._check_idle)

    def _check_idle(self) -> None:
        """Stop a worker that has waited since the last check; one timer a minute
        per busy connection, not one per CALL."""
        self._idle_check = None
        worker = self._worker
        if worker is None or worker.done() or self.closed:
            return
        if self._served == self._served_before and not self._inbox and self._idle.is_set():
            worker.cancel()  # it is parked on _wake: nothing is cut short
            self._worker = None
            return
        self._served_before = self._served
        self._idle_check = asyncio.get_running_loop().call_later(
            WORKER_IDLE_SECONDS, self._check_idle
        )

    async def drain(self) -> None:
        """Wait until every CALL received so far is handled, then stop the worker."""
        if self._idle_check is not None:
            self._idle_check.cancel()
            self._idle_check = None
        worker = self._worker
        if worker is None:
            return
        if self._inbox or not self._idle.is_set():
            await self._idle.wait()
        worker.cancel()
        self._worker = None

    def _settle(self, unique_id: str, outcome: dict[str, Any] | Exception) -> None:
        """Hand an answer to the command waiting for it; answers to nothing are ignored."""
        waiter = self._pending.pop(unique_id, None)
        if waiter is None or waiter.done():
            return
        if isinstance(outcome, Exception):
            waiter.set_exception(outcome)
        else:
            waiter.set_result(outcome)

    async def _on_call(self, call: Call, raw: str) -> None:
        at = datetime.now(UTC)
        started = time.perf_counter()
        action = call.action
        known = schemas.known_action(self.version, action)
        try:
            if not known:
                raise FrameError("not_implemented", f"Unknown action {action[:64]}")
            handler = self._handlers.get(action)
            if handler is None:
                raise FrameError("not_supported", f"{action} is not supported by this server")
            schemas.validate(self.version, action, call.payload, call.unique_id)
            response = await handler(self, call.payload)
        except FrameError as exc:
            exc.unique_id = call.unique_id
            answer = self._error_frame(exc, action if known else None)
        except InvalidInput as exc:
            answer = self._error_frame(FrameError("property", str(exc), call.unique_id), action)
        except PlugpayError as exc:
            answer = self._error_frame(FrameError("generic", str(exc), call.unique_id), action)
        except Exception:
            # Not acknowledged: the charger keeps the message and sends it again.
            log.exception("handler for %s from %s failed", action, self.charger_id)
            answer = self._error_frame(_internal(call.unique_id), action)
        else:
            answer = self._result_frame(call, response, started)
        self._log.exchange(
            self.charger_id, call.unique_id, action, raw, at, answer, datetime.now(UTC)
        )
        await self._send_text(answer)

    def _result_frame(self, call: Call, response: dict[str, Any], started: float) -> str:
        try:
            schemas.validate(self.version, call.action, response, call.unique_id, response=True)
        except FrameError as exc:
            log.error(
                "our %s answer to %s breaks the schema: %s", call.action, self.charger_id, exc
            )
            return self._error_frame(_internal(call.unique_id), call.action)
        seconds, answered = _answered(self.version, call.action)
        seconds.observe(time.perf_counter() - started)
        answered.inc()
        return framing.result_frame(call.unique_id, response)

    def _error_frame(self, exc: FrameError, action: str | None) -> str:
        code = framing.error_code(self.version, exc.kind)
        CALL_ERRORS.labels("out", code).inc()
        MESSAGES.labels(self.version, action or "-", "error").inc()
        return framing.error_frame(exc.unique_id, code, exc.description)

    async def _reply_error(self, exc: FrameError, action: str | None) -> None:
        frame = self._error_frame(exc, action)
        await self._send(frame, framing.CALLERROR, exc.unique_id, action)

    # -- outbound -----------------------------------------------------------
    async def call(
        self, action: str, payload: dict[str, Any], timeout: float | None = None
    ) -> dict[str, Any]:
        """Send a CALL and return the charger's answer (validated against the schema)."""
        try:
            schemas.validate(self.version, action, payload, "-")
        except FrameError as exc:
            raise InvalidInput(f"{action} for OCPP {self.version}: {exc.description}") from None
        async with self._call_lock:  # OCPP-J: one CALL in flight per direction
            if self.closed:
                raise ChargerOffline(f"charger {self.charger_id} is not connected")
            unique_id = str(uuid.uuid4())
            waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            self._pending[unique_id] = waiter
            try:
                try:
                    await self._send(
                        framing.call_frame(unique_id, action, payload),
                        framing.CALL,
                        unique_id,
                        action,
                    )
                except OSError:  # the socket went away under us
                    raise ChargerOffline(f"charger {self.charger_id} is not connected") from None
                result = await asyncio.wait_for(waiter, timeout or self.call_timeout)
            except TimeoutError:
                raise CommandTimeout(f"{self.charger_id} did not answer {action} in time") from None
            finally:
                self._pending.pop(unique_id, None)
        try:
            schemas.validate(self.version, action, result, unique_id, response=True)
        except FrameError as exc:
            raise CommandFailed(
                "FormationViolation", f"invalid {action} response: {exc.description}"
            ) from None
        return result

    def fail_pending(self, reason: str) -> None:
        for waiter in self._pending.values():
            if not waiter.done():
                waiter.set_exception(CommandFailed("ConnectionLost", reason))
        self._pending.clear()
        self.closed = True
