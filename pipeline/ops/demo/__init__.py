"""Bundled demo: generated street footage streamed by a local RTSP server."""
