"""Stage 3, rules: one module per incident type (parking, vending, bins, throwing) over the
shared geometry (zones, façades, camera model, schedules, occupancy, motion); ``camera`` runs a
camera's rules on its frames."""
