"""Shared domain code of the NZ COVID Tracer backend (vendored into each Chalice app)."""
