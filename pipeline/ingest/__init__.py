"""Stage 1, ingest: RTSP/file sources with reconnect and health, the packet ring that keeps the
camera's own H.264 for evidence clips, and the bounded frame hub (drops old live frames)."""
