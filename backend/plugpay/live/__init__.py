"""Publish/subscribe for live sessions: in-process, or Redis across instances."""
