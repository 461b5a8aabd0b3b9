"""On the PYTHONPATH of the ``chalice local`` the fuzz tests start: its handler sets
TCP_NODELAY, so an answer with a body is not held ~40 ms by Nagle against the client's
delayed ACK. Until ``tracerstack.chalice_local`` does it (notes/requests-details.md)."""

from chalice import local

local.ChaliceRequestHandler.disable_nagle_algorithm = True
