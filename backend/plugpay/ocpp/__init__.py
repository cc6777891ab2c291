"""Charger gateway: the OCPP WebSocket endpoint, per-version handlers, live connections."""
