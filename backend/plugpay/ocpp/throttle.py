"""Backoff for failed charger handshakes, per charger id and per client address.

A wrong password costs about 23 ms of argon2 whenever the right one is not
yet cached (after a restart): unthrottled, a stream of guesses takes the CPU
that reconnecting chargers need. So after ``free_failures`` failures a key
(a charger id, a client address) is locked, and a handshake it would refuse
is answered 429 at once, before any password is checked. Each further failure
doubles the lockout, up to ``max_lockout``; a key is forgotten ``window``
seconds after its last failure or lockout, and a charger id at once when its
right password is given.

Only what costs or reveals something counts: a wrong password, and a charger
id that does not exist (per address only, so that trying made-up ids cannot
flush the table of real ones). A handshake without a password, or with
another charger's name, checks nothing and counts nothing.

Who may still try:

- a locked address may not, for any charger id (known or not: a locked
  address learns nothing, not even which ids exist);
- a locked charger id may, from an address with no recent failure. Many
  addresses trying one id therefore cannot keep the real charger out: its own
  address is clean, and each attacking address gets one verification of that
  id before it is itself refused, instead of ``free_failures``. Without an
  address (no ``client`` in the scope) the id's lock applies.

Addresses are the real clients only when the proxy in front is trusted to
say so (uvicorn's ``proxy_headers`` with ``FORWARDED_ALLOW_IPS`` naming it):
otherwise every charger has the proxy's address, and one attacker's failures
lock them all out until the lockout ends.

Verifications also queue, one at a time per charger id and a few at a time
per address, so that a burst of handshakes sent at once is counted as it goes
instead of all being checked before the first failure is known.

The tables live in this process: each instance protects its own CPU, and
behind a load balancer a guesser gets its free failures once per instance.
They hold at most ``max_entries`` keys each, the oldest dropped first: an
attacker cycling ids or addresses costs memory up to that bound and at worst
has its oldest locks forgotten early.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

FREE_FAILURES = 5
WINDOW_SECONDS = 300.0
FIRST_LOCKOUT_SECONDS = 1.0
MAX_LOCKOUT_SECONDS = 300.0
MAX_ENTRIES = 10_000
# Verifications in flight per address without failures: enough for the store
# lookups of a storm of chargers behind one proxy, few enough that a burst of
# guesses is counted before it costs much argon2.
CLEAN_ADDRESS_SLOTS = 16


def client_address(client: object) -> str | None:
    """The key of the ASGI scope's ``client``: its IPv4 address, or the /64 of an
    IPv6 one (one host picks freely among the addresses of its network)."""
    if not isinstance(client, (list, tuple)) or not client or not isinstance(client[0], str):
        return None
    try:
        ip = ipaddress.ip_address(client[0])
    except ValueError:
        return client[0][:64]  # a name (a unix socket, a test client): as it is
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass(slots=True)
class _Failures:
    count: int
    last: float
    locked_until: float
    # The charger id every failure of an address was for; None once they differ.
    charger_id: str | None

    def expires(self, window: float) -> float:
        return max(self.last, self.locked_until) + window


class _Gates:
    """At most ``room(key)`` holders per key, the others waiting in order; a key
    is kept only while someone holds or waits."""

    def __init__(self, room: Callable[[str], int]) -> None:
        self._room = room
        self._inside: dict[str, int] = {}
        self._waiting: dict[str, deque[asyncio.Future[None]]] = {}

    def __bool__(self) -> bool:
        return bool(self._inside or self._waiting)

    @asynccontextmanager
    async def turn(self, key: str | None) -> AsyncIterator[None]:
        if key is None:
            yield
            return
        if key in self._waiting or self._inside.get(key, 0) >= self._room(key):
            await self._wait(key)
        self._inside[key] = self._inside.get(key, 0) + 1
        try:
            yield
        finally:
            if self._inside[key] == 1:
                del self._inside[key]
            else:
                self._inside[key] -= 1
            self._wake(key)

    async def _wait(self, key: str) -> None:
        loop = asyncio.get_running_loop()
        again = False
        while True:
            queue = self._waiting.setdefault(key, deque())
            waiter = loop.create_future()
            if again:  # woken, but the room shrank meanwhile: first in line still
                queue.appendleft(waiter)
            else:
                queue.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter in queue:
                    queue.remove(waiter)
                elif not waiter.cancelled():
                    self._wake(key)  # woken, then cancelled: the next one's turn
                self._forget(key)
                raise
            if self._inside.get(key, 0) < self._room(key):
                self._forget(key)
                return
            again = True

    def _forget(self, key: str) -> None:
        queue = self._waiting.get(key)
        if queue is not None and not queue:
            del self._waiting[key]

    def _wake(self, key: str) -> None:
        queue = self._waiting.get(key)
        while queue:
            waiter = queue.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


class HandshakeThrottle:
    def __init__(
        self,
        *,
        free_failures: int = FREE_FAILURES,
        window: float = WINDOW_SECONDS,
        first_lockout: float = FIRST_LOCKOUT_SECONDS,
        max_lockout: float = MAX_LOCKOUT_SECONDS,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if free_failures < 1 or max_entries < 1:
            raise ValueError("free_failures and max_entries must be at least 1")
        self.free_failures = free_failures
        self.window = window
        self.first_lockout = first_lockout
        self.max_lockout = max_lockout
        self.max_entries = max_entries
        self._clock = clock
        self._ids: OrderedDict[str, _Failures] = OrderedDict()
        self._addresses: OrderedDict[str, _Failures] = OrderedDict()
        self._id_gates = _Gates(lambda _: 1)
        self._address_gates = _Gates(self._address_room)

    def __len__(self) -> int:
        return len(self._ids) + len(self._addresses)

    def _live(self, table: OrderedDict[str, _Failures], key: str | None) -> _Failures | None:
        if key is None:
            return None
        entry = table.get(key)
        if entry is not None and self._clock() >= entry.expires(self.window):
            del table[key]
            return None
        return entry

    def retry_after(self, charger_id: str, address: str | None) -> float | None:
        """Seconds until a handshake for ``charger_id`` from ``address`` may be
        verified; None when it may be now."""
        now = self._clock()
        by_address = self._live(self._addresses, address)
        if by_address is not None and by_address.locked_until > now:
            return by_address.locked_until - now
        by_id = self._live(self._ids, charger_id)
        # A clean address still gets its verification of a locked id.
        clean = address is not None and by_address is None
        if by_id is not None and by_id.locked_until > now and not clean:
            return by_id.locked_until - now
        return None

    @asynccontextmanager
    async def turn(self, charger_id: str, address: str | None) -> AsyncIterator[None]:
        """Hold a verification slot of ``charger_id`` and ``address``; check
        ``retry_after`` again once inside, the wait may have changed it."""
        async with self._id_gates.turn(charger_id), self._address_gates.turn(address):
            yield

    def _address_room(self, address: str) -> int:
        # An address with failures is verified one attempt at a time, so that
        # its count is exact; a clean one (a storm of chargers behind one
        # proxy) a few at a time.
        return 1 if self._live(self._addresses, address) is not None else CLEAN_ADDRESS_SLOTS

    def failed(self, charger_id: str | None, address: str | None) -> float | None:
        """Count a failed handshake (``charger_id`` None: no such charger). The
        lockout it starts, in seconds, if it starts one."""
        lockouts = []
        if charger_id is not None:
            lockouts.append(self._fail(self._ids, charger_id, charger_id))
        if address is not None:
            lockouts.append(self._fail(self._addresses, address, charger_id))
        locked = [seconds for seconds in lockouts if seconds is not None]
        return max(locked) if locked else None

    def succeeded(self, charger_id: str, address: str | None) -> None:
        """The right password: the id is forgiven, and so is the address if all its
        failures were for this id (a charger that had a wrong password); an address
        that also failed for others is not, or owning one charger would reset the
        count for guessing at the rest."""
        self._ids.pop(charger_id, None)
        by_address = self._live(self._addresses, address)
        if address is not None and by_address is not None and by_address.charger_id == charger_id:
            del self._addresses[address]

    def _fail(
        self, table: OrderedDict[str, _Failures], key: str, charger_id: str | None
    ) -> float | None:
        now = self._clock()
        entry = self._live(table, key)
        if entry is None:
            entry = table[key] = _Failures(0, now, 0.0, charger_id)
            while len(table) > self.max_entries:
                table.popitem(last=False)
        else:
            table.move_to_end(key)
            if entry.charger_id != charger_id:
                entry.charger_id = None
        entry.count += 1
        entry.last = now
        beyond = entry.count - self.free_failures
        if beyond < 0:
            return None
        # The exponent is capped: past it the lockout is at its maximum anyway.
        seconds = min(math.ldexp(self.first_lockout, min(beyond, 64)), self.max_lockout)
        entry.locked_until = max(entry.locked_until, now + seconds)
        return seconds
