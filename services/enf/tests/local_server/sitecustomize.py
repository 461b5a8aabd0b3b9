"""Loaded by the ``chalice local`` servers these tests start (``enf_env`` puts this folder on
their PYTHONPATH): their sockets send without Nagle's delay.

``http.server`` writes a response's headers and its body in two writes; with Nagle on, the
body waits for the client's delayed ACK (~40 ms), so every request to a served app would
cost 45 ms (the hostile-values fuzz: 34 s instead of 2 s). Requested for
``tracerstack.chalice_local`` itself (notes/requests-enf.md); until then, this shim.
"""

try:
    from chalice import local
except ImportError:  # not a chalice process: nothing to change
    pass
else:
    local.ChaliceRequestHandler.disable_nagle_algorithm = True
