"""The event index (SQLite or PostgreSQL) with its migrations."""
