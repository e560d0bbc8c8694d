"""Scaling benchmark of the job against Splink 5 (`make bench`); nothing imports it."""
