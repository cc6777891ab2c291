"""Notifications: Web Push and receipts."""
