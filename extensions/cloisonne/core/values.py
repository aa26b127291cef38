"""The one parser of sizes ("2G", "512M"), of on/off switches and of "host:port" written as text
(settings, environment variables, group properties). Standard library only: workspaces use it."""

from __future__ import annotations

import re

_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*$", re.IGNORECASE)

SWITCH_WORDS = {"on": True, "off": False, "true": True, "false": False, "1": True, "0": False,
                "yes": True, "no": False}  # fmt: skip


def parse_switch(text: str, *, field: str = "") -> bool:
    word = str(text).strip().lower()
    if word not in SWITCH_WORDS:
        where = f"{field}={text!r}: " if field else ""
        raise ValueError(f"{where}expected 'on' or 'off'")
    return SWITCH_WORDS[word]


def parse_size(value: object) -> int:
    """Bytes from an int or a text such as '2G', '512M', '1.5GiB'; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size such as '2G', got {value!r}")
    if isinstance(value, int):
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"expected a size such as '2G' or '512M', got {value!r}")
    number, unit = match.groups()
    return int(float(number) * _UNITS[unit.upper()])


def format_size(n: int) -> str:
    for unit in ("T", "G", "M", "K"):
        if n % _UNITS[unit] == 0:
            return f"{n // _UNITS[unit]}{unit}"
    return str(n)


def parse_host_port(text: str) -> tuple[str, int]:
    """``("host", port)`` from "host:port" (the last colon splits); ValueError otherwise."""
    host, sep, port = str(text).strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected 'host:port', got {text!r}")
    return host, int(port)
