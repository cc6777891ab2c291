"""JSON endpoints under /api/ and the operational endpoints."""
