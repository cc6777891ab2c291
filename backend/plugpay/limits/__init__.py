"""Rate limiters: in process (one server instance), or in Redis across instances."""
