"""The workspace's Python kernel: ipykernel with the audit hook installed first.

Started from the root-owned kernelspec in jupyter_config/kernels/python3 (argv[0] "python"
is replaced by the server's own interpreter).
"""

from __future__ import annotations

from .audit_hook import install


def main() -> None:
    install()
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()


if __name__ == "__main__":
    main()
