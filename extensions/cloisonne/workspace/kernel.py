"""The workspace's Python kernel: ipykernel with the audit hook installed first.

Started from the root-owned kernelspec in jupyter_config/kernels/python3 (argv[0] "python"
is replaced by the server's own interpreter).
"""

from __future__ import annotations

import os
import site
import sysconfig

from .audit_hook import install


def add_user_packages() -> None:
    """What `pip install` put in this user's project home (PIP_PREFIX) joins the kernel's path,
    after the platform's own packages, and never the server's. Processes the kernel starts
    (`%pip`, `!python`) get it on PYTHONPATH, so pip sees what is already there."""
    prefix = os.environ.get("CLOISONNE_USER_PREFIX")
    if not prefix:
        return
    where = sysconfig.get_path("purelib", "posix_prefix", vars={"base": prefix,
                                                                 "platbase": prefix})  # fmt: skip
    site.addsitedir(where)
    path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = f"{path}:{where}" if path else where


def main() -> None:
    install()
    add_user_packages()
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()


if __name__ == "__main__":
    main()
