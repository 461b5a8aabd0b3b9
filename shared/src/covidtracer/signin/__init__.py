"""Passwordless email sign-in (DESIGN §2.1): triggers, sign-in use cases, token checks."""
