"""Analyzers: one module per rule kind."""
