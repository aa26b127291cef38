"""Package allow-lists: which Python distributions a project's workspaces may install (pure).

A workspace has no route to the internet; the package proxy is its one way to get software,
and this module is what the proxy decides with. An allow-list entry is a distribution name with
an optional version range (``numpy``, ``pandas>=2.2,<3``); a site's list applies to every
project, a project's list (the ``packages`` property) adds to it. A name on both lists must
satisfy both ranges. Everything else is refused with a message that says how to ask.

Dependency closure is not computed here: pip asks the proxy for every distribution it needs,
dependencies included, and each of those requests (the index page and the file) is decided
on its own. A dependency off the list therefore fails the install with the same refusal.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

# what a distribution name may be (PEP 508), checked before canonicalising it
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


class AllowListError(ValueError):
    """An allow-list entry cannot be read; the message quotes it."""


@dataclass(frozen=True)
class Allowed:
    """One entry: a canonical distribution name and the versions allowed (empty: any)."""

    name: NormalizedName
    versions: SpecifierSet

    def __str__(self) -> str:
        return f"{self.name}{self.versions}"


def parse_entry(text: str) -> Allowed:
    """``"numpy"``, ``"pandas>=2.2,<3"`` or ``"scipy==1.14.1"`` as an :class:`Allowed`."""
    if not isinstance(text, str) or not text.strip():
        raise AllowListError(f"expected a package name such as 'numpy>=2', got {text!r}")
    raw = text.strip()
    cut = next((i for i, ch in enumerate(raw) if ch in "<>=!~ "), len(raw))
    name, spec = raw[:cut], raw[cut:].strip()
    if not name or not set(name) <= _NAME_CHARS or not name[0].isalnum() or not name[-1].isalnum():
        raise AllowListError(f"{text!r}: not a package name (letters, digits, '-', '_', '.')")
    try:
        versions = SpecifierSet(spec)
    except InvalidSpecifier:
        raise AllowListError(
            f"{text!r}: not a version range (examples: '>=2.1', '==1.4.2', '>=2,<3')"
        ) from None
    return Allowed(canonicalize_name(name), versions)


def parse_list(entries: Iterable[str]) -> tuple[Allowed, ...]:
    parsed = [parse_entry(e) for e in entries]
    seen: set[str] = set()
    for entry in parsed:
        if entry.name in seen:
            raise AllowListError(f"{entry.name!r} is listed twice: give one range")
        seen.add(entry.name)
    return tuple(parsed)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


@dataclass(frozen=True)
class AllowList:
    """The site's entries and one project's: what that project's workspaces may install."""

    project: str
    site: tuple[Allowed, ...] = ()
    extra: tuple[Allowed, ...] = ()

    def ranges(self, name: str) -> list[SpecifierSet] | None:
        """The ranges ``name`` must satisfy, or None when it is on neither list."""
        canonical = canonicalize_name(name)
        found = [e.versions for e in (*self.site, *self.extra) if e.name == canonical]
        return found or None

    def decide(self, name: str, version: str | None = None) -> Decision:
        ranges = self.ranges(name)
        if ranges is None:
            return Decision(False, refusal(name, self.project))
        if version is not None:
            parsed = Version(version)
            if not all(r.contains(parsed, prereleases=True) for r in ranges):
                allowed = ",".join(str(r) for r in ranges if str(r))
                return Decision(
                    False,
                    f"{canonicalize_name(name)} {version} is outside the range allowed in "
                    f"project {self.project} ({allowed}). {how_to_ask(name, self.project)}",
                )
        return Decision(True)


def how_to_ask(name: str, project: str) -> str:
    return (
        f"Ask a lead of project {project} or an admin to allow it "
        f"(cloisonne packages allow {project} {canonicalize_name(name)})."
    )


def refusal(name: str, project: str) -> str:
    """What a researcher reads when a package is not allowed (pip shows it as a warning)."""
    return (
        f"{canonicalize_name(name)} is not on the package allow-list of project {project}. "
        + how_to_ask(name, project)
    )


@dataclass(frozen=True)
class DistFile:
    """A distribution file as its name describes it."""

    filename: str
    name: NormalizedName
    version: str
    kind: str  # "wheel" or "sdist"


def parse_filename(filename: str) -> DistFile | None:
    """A wheel or sdist filename's name and version; None for anything else."""
    try:
        name, version, _build, _tags = parse_wheel_filename(filename)
        return DistFile(filename, name, str(version), "wheel")
    except (InvalidWheelFilename, ValueError):
        pass
    try:
        name, version = parse_sdist_filename(filename)
        return DistFile(filename, name, str(version), "sdist")
    except (InvalidSdistFilename, ValueError):
        return None


def workspace_token(key: bytes, project: str, user: str) -> str:
    """The credential a workspace of ``user`` in ``project`` gives the proxy (HMAC of both):
    the proxy knows who asked and for which project without a database of tokens."""
    return hmac.new(key, f"{project}\0{user}".encode(), hashlib.sha256).hexdigest()[:40]


def check_token(key: bytes, project: str, user: str, token: str) -> bool:
    return hmac.compare_digest(workspace_token(key, project, user), token)


def index_url(host: str, port: int, project: str, user: str, token: str) -> str:
    """``PIP_INDEX_URL`` for a workspace: the project's index, the credential in the URL."""
    return f"http://{user}:{token}@{host}:{port}/{project}/simple/"
