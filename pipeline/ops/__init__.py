"""Running it: the command line, replay of recorded files, the Ray cluster, capacity
planning, the zone editor's file writer, the demo and the test RTSP server."""
