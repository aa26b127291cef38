"""Start jupyterhub-singleuser inside a workspace, without its slowest import.

jupyter_events validates event schemas with jsonschema, which imports ``rfc3987_syntax`` when
installed; that module builds Lark parsers at import time, about 1 s of CPU — a third of a
workspace's start-up — only to check the optional "iri" string formats, which no Jupyter event
schema relies on. Marking it absent makes jsonschema skip those format checks (its documented
behaviour when the package is missing). Kernels are separate processes and are unaffected.
"""

from __future__ import annotations

import ctypes
import os
import sys

from .egress import DEFAULT_PROBES, EarlyProbe

PR_SET_DUMPABLE = 4


def make_undumpable() -> None:
    """Code in a kernel runs as the same user as this server. Without Yama, it could read the
    server's memory (its token, its cookie secret) through /proc/<pid>/mem or ptrace; a
    non-dumpable process can only be inspected by root. Kernels are new programs (exec), so
    they are not affected."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) failed")


def main() -> None:
    make_undumpable()
    journal_fd = os.environ.get("CLOISONNE_AUDIT_JOURNAL_FD")
    if journal_fd:  # the guard's audit journal: never handed on to kernels or terminals
        os.set_inheritable(int(journal_fd), False)
    # The guard's egress self-test runs while the imports below take their second.
    EarlyProbe.start(os.environ.get("CLOISONNE_EGRESS_PROBES", " ".join(DEFAULT_PROBES)), 0.3)
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[assignment]
    from jupyterhub.singleuser import main as singleuser_main

    sys.exit(singleuser_main())


if __name__ == "__main__":
    main()
