"""Payments: Stripe gateway, demo gateway, webhook intake."""
