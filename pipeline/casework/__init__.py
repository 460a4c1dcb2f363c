"""After detection: cases and their SLA clocks, delivery to platforms (outbox), evidence
packages with privacy masking, and retention."""
