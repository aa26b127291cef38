"""What the workspace guard allows to reach the browser (pure).

The browser is an egress channel: anything a server sends it can be saved. The guard closes
the routes that exist to hand files over (downloads, exports) and lets through what the UI
needs to work: text and notebooks to edit, up to a size, and small images for display.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

EXPORT_HINT = (
    "Files leave a workspace only through the export airlock: right-click the file and choose "
    "“Request export…”."
)
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp"}


@dataclass(frozen=True)
class GuardSettings:
    max_text_bytes: int = 10 * 1024**2
    max_image_bytes: int = 512 * 1024
    max_upload_bytes: int = 100 * 1024**2


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    status: int = 200

    @classmethod
    def allow(cls, reason: str) -> Decision:
        return cls(True, reason)

    @classmethod
    def deny(cls, reason: str, status: int = 403) -> Decision:
        return cls(False, reason, status)


def is_image(path: str) -> bool:
    return posixpath.splitext(path.lower())[1] in IMAGE_EXTENSIONS


def decide_read(route: str, path: str, fmt: str | None, size: int, s: GuardSettings) -> Decision:
    """A read of file bytes through the contents manager.

    ``route`` is "files" (the /files/ URL: a download when not an image shown by the UI) or
    "contents" (the REST API the editor uses). ``fmt`` is "text", "base64" or None (notebook,
    directory).
    """
    if is_image(path):
        if size <= s.max_image_bytes:
            return Decision.allow("small image shown by the UI")
        return Decision.deny(
            f"{path} is an image of {size} bytes, over the {s.max_image_bytes}-byte display "
            f"limit. {EXPORT_HINT}"
        )
    if route == "files":
        return Decision.deny(f"Downloading {path} is not allowed. {EXPORT_HINT}")
    if fmt == "base64":
        return Decision.deny(f"{path} is a binary file; its bytes are not sent to the browser.")
    if size > s.max_text_bytes:
        return Decision.deny(
            f"{path} is {size} bytes, over the {s.max_text_bytes}-byte limit for opening files "
            "in the browser. Work on it from a notebook instead."
        )
    return Decision.allow("text or notebook within the size limit")


def decide_upload(path: str, size: int, s: GuardSettings) -> Decision:
    if size > s.max_upload_bytes:
        return Decision.deny(
            f"Uploading {path} ({size} bytes) is over the {s.max_upload_bytes}-byte limit.", 413
        )
    return Decision.allow("upload within the size limit")
