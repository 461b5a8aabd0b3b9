"""Lambda SnapStart: the expensive work at init, in the snapshot; what must differ between
restored environments, redone after each restore.

With ``SnapStart: ApplyOn: PublishedVersions`` (every function of the packaged templates)
Lambda runs a version's init once, when the version is published, snapshots the memory and
resumes each new execution environment of that version from the snapshot
(https://docs.aws.amazon.com/lambda/latest/dg/snapstart.html). Each app calls ``prepare()``
at import with its warm-ups: the imports, settings, adapters, parsed documents and AWS
clients its requests need, paid once per version instead of in a cold request. Lambda says
which init it is running in ``AWS_LAMBDA_INITIALIZATION_TYPE`` ("snap-start"); anywhere else
(an on-demand start, ``chalice local``, tests) the warm-ups do not run and everything stays
lazy, made on first use.

One snapshot becomes many environments, so nothing in it may be what one environment must
own (https://docs.aws.amazon.com/lambda/latest/dg/snapstart-uniqueness.html). The runtime
hooks (``snapshot_restore_py``, part of Lambda's Python runtimes:
https://docs.aws.amazon.com/lambda/latest/dg/snapstart-runtime-hooks-python.html) take care
of it:

- before the snapshot: close pooled database connections (``db.close``: a socket cannot
  be shared, and a proxy drops it long before a restore), drop the AWS clients' resolved
  credentials and open connections (``aws.forget_credentials``,
  ``dynamo.forget_credentials``; the parsed service models stay);
- after each restore: reseed ``random`` from the kernel (botocore's retry jitter uses it;
  identical seeds would retry in step). Ids, secrets and tokens come from ``secrets``,
  ``uuid.uuid4`` and ``os.urandom``, which read the kernel at each call, so nothing unique is
  made at init; times are read per request, and the caches with a time (client documents,
  the JWKS) are first filled by a request, never at init.
"""

from __future__ import annotations

import functools
import importlib
import os
import random
import sys
from collections.abc import Callable

from covidtracer import logs

log = logs.get_logger(__name__)

INITIALIZATION_TYPE = "AWS_LAMBDA_INITIALIZATION_TYPE"
SNAP_START = "snap-start"

_hooks_registered = False


def snapshot_init() -> bool:
    """Whether this is the init Lambda snapshots (a SnapStart version being published)."""
    return os.environ.get(INITIALIZATION_TYPE) == SNAP_START


def prepare(
    *warmups: str,
    imports: tuple[str, ...] = (),
    clients: tuple[str, ...] = (),
) -> None:
    """Registers the runtime hooks and, in a SnapStart init, imports ``imports`` (the heavy
    libraries the app imports on first use), calls ``warmups`` (``"module:function"``, named
    rather than imported, so that an app outside a SnapStart init imports nothing more:
    settings, adapters, parsed documents), makes the AWS ``clients`` and the clients of every
    DynamoDB table bound by then. No request is sent: nothing is asked of a dependency before
    it is needed. A warm-up that fails (a stage's settings broken, say) is logged and left to
    the first request, which answers it the way it would have without SnapStart."""
    register_hooks()
    if not snapshot_init():
        return
    from covidtracer import aws

    steps: list[Callable[[], object]] = [
        *(functools.partial(importlib.import_module, name) for name in imports),
        *(functools.partial(_call, warmup) for warmup in warmups),
        *(functools.partial(aws.client, service) for service in clients),
        _connect_tables,
    ]
    for warm in steps:
        try:
            warm()
        except Exception as exc:
            log.warning(
                "snapstart warm-up left to the first request",
                extra={"warmup": str(getattr(warm, "args", warm)),
                       "error_type": type(exc).__name__},
            )  # fmt: skip


def _call(target: str) -> object:
    module, _, function = target.partition(":")
    return getattr(importlib.import_module(module), function)()


def _connect_tables() -> None:
    dynamo = sys.modules.get("covidtracer.dynamo")
    if dynamo is not None:
        dynamo.connect_bound()


def register_hooks() -> None:
    """Registers ``before_snapshot`` and ``after_restore`` with Lambda's runtime (once)."""
    global _hooks_registered
    if _hooks_registered:
        return
    try:
        from snapshot_restore_py import (  # type: ignore[import-untyped,unused-ignore]
            register_after_restore,
            register_before_snapshot,
        )
    except ImportError:  # not Lambda's managed runtime, and not installed: no snapshots here
        return
    register_before_snapshot(before_snapshot)
    register_after_restore(after_restore)
    _hooks_registered = True


def before_snapshot() -> None:
    """Nothing an environment must own goes into the snapshot. Only the modules the app has
    loaded hold anything (an app that uses no database ships no ``db``)."""
    for name, forget in (
        ("covidtracer.db", "close"),
        ("covidtracer.aws", "forget_credentials"),
        ("covidtracer.dynamo", "forget_credentials"),
    ):
        module = sys.modules.get(name)
        if module is not None:
            getattr(module, forget)()


def after_restore() -> None:
    """What must differ between the environments restored from one snapshot."""
    random.seed(os.urandom(32))
