"""gridsight HTTP API (FastAPI app factory)."""
