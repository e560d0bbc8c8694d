"""Standardisation of identity, payment and logistics attributes: pure DataFrame transforms."""
