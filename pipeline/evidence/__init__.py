"""Stage 4, evidence: the writer (clips from the packet ring, annotated snapshots, hashes),
event reports and their JSON schema, and the storage backends (local directory, S3)."""
