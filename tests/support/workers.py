"""Parallel test workers (pytest-xdist) sharing one Redis.

Each worker has its own temporary folder (so its own SQLite files) and its own
PostgreSQL database (support/databases.py names them at random). Redis is one
server for all of them, so each worker gets:

- its own Redis database number: PLUGPAY_TEST_REDIS_URL is rewritten before any
  test module reads it (redis://host:6379/0 becomes /1 on gw0, /2 on gw1, ...),
  which keeps keys apart (leases, rate limits);
- its own pub/sub channel names. Redis pub/sub ignores the database number: a
  message published on /1 reaches subscribers on /2. Two workers whose servers both
  hold a charger "CP-1" would otherwise both answer the command relay's broadcasts.
  The channel names of the in-process servers get the worker id in them.

A single process (no xdist) keeps the configured URL and the real channel names.
"""

from __future__ import annotations

import importlib
import os
from urllib.parse import urlsplit, urlunsplit

REDIS_DATABASES = 16  # Redis's default `databases`


def worker_id() -> str | None:
    """The xdist worker id ("gw0", "gw1"...), or None in a single process."""
    return os.environ.get("PYTEST_XDIST_WORKER") or None


def worker_index(worker: str) -> int:
    digits = worker.removeprefix("gw")
    return int(digits) if digits.isdigit() else 0


def redis_url_for(url: str, worker: str) -> str:
    """``url`` on a Redis database of ``worker``'s own, next to the configured one."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        return url  # unix sockets name the database in the query: left as they are
    path = parts.path.strip("/")
    base = int(path) if path.isdigit() else 0
    database = (base + 1 + worker_index(worker)) % REDIS_DATABASES
    return urlunsplit(parts._replace(path=f"/{database}"))


# The Redis names of plugpay's modules: (module, constant); each starts with "plugpay:".
REDIS_NAMES = [
    ("plugpay.ocpp.relay", "COMMANDS"),
    ("plugpay.ocpp.relay", "REPLIES"),
    ("plugpay.ocpp.relay", "LEASES"),
    ("plugpay.live.redis", "CHANNEL"),
]


def rename_redis_names(worker: str) -> dict[str, str]:
    """Put ``worker`` into the Redis channel and key names of the in-process servers;
    returns "module.CONSTANT" -> the new name."""
    renamed: dict[str, str] = {}
    for module_name, name in REDIS_NAMES:
        module = importlib.import_module(module_name)
        current = getattr(module, name, None)
        if not isinstance(current, str) or not current.startswith("plugpay:"):
            raise RuntimeError(
                f"{module_name}.{name} is gone or no longer starts with 'plugpay:';"
                " tests/support/workers.py keeps parallel workers' Redis channels apart"
                " through it and needs updating"
            )
        value = current.replace("plugpay:", f"plugpay-test-{worker}:", 1)
        setattr(module, name, value)
        renamed[f"{module_name}.{name}"] = value
    return renamed


def isolate_worker() -> str | None:
    """Give this xdist worker its own Redis database and channel names (call before
    any test module is imported). Returns the worker id, or None in a single process."""
    worker = worker_id()
    if worker is None:
        return None
    url = os.environ.get("PLUGPAY_TEST_REDIS_URL")
    if url:
        os.environ["PLUGPAY_TEST_REDIS_URL"] = redis_url_for(url, worker)
    rename_redis_names(worker)
    return worker
