"""Run a hub-managed service so that it dies with the hub.

JupyterHub stops its managed services on a clean shutdown, but when the hub crashes they are
orphaned and a restarted hub starts a second copy. PR_SET_PDEATHSIG makes the kernel send the
service a signal when its parent (the hub) dies; the setting survives exec. The signal is
SIGKILL: a SIGTERM can be blocked (masks are inherited) or handled slowly, and a full-suite run
once saw a culler outlive its hub by more than 10 s. Every service here is safe to kill at any
point (the audit store commits atomically; journal offsets move with their events).

Usage: python -m cloisonne.platform.with_hub COMMAND [ARGS...]
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() == 1:  # the hub died before prctl took effect
        raise SystemExit("the hub is gone; not starting")
    os.execvp(sys.argv[1], sys.argv[1:])


if __name__ == "__main__":
    main()
