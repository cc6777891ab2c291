"""Pure domain: money, metering, tariffs and sessions; no I/O, nothing else of plugpay."""
