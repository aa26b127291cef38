"""Start jupyterhub-singleuser inside a workspace, without its slowest import.

jupyter_events validates event schemas with jsonschema, which imports ``rfc3987_syntax`` when
installed; that module builds Lark parsers at import time, about 1 s of CPU — a third of a
workspace's start-up — only to check the optional "iri" string formats, which no Jupyter event
schema relies on. Marking it absent makes jsonschema skip those format checks (its documented
behaviour when the package is missing). Kernels are separate processes and are unaffected.
"""

from __future__ import annotations

import sys


def main() -> None:
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[assignment]
    from jupyterhub.singleuser import main as singleuser_main

    sys.exit(singleuser_main())


if __name__ == "__main__":
    main()
