"""What ``transition`` raises: each error says what was refused and why."""

from __future__ import annotations


class AirlockError(ValueError):
    """A request or an action on it is not valid; the message says why."""


class InvalidTransition(AirlockError):
    pass


class PermissionDenied(AirlockError):
    pass


class CommentRequired(AirlockError):
    pass


class NotReady(AirlockError):
    pass


class InvalidRequest(AirlockError):
    pass
