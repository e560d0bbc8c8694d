"""Blocking, scoring, clustering and evaluation: the pure resolution core (DataFrames in, out)."""
