"""What proves that a call to the service comes from a workspace itself (pure).

A token's scopes cannot: a user may mint herself a token with ``access:servers!server=<her
name>/<any project>``, or carry her workspace's token out of it. So at each start the spawner
(root-side, out of user code's reach) records in the server's hub state a proof: the SHA-256 of
the server's own API token, the address the workspace's traffic leaves from (its sandbox's
veth, which the kernel stamps on every packet and nothing inside can change), and a spawn id.
The service reads that state with its own hub token and accepts a workspace call only when the
presented token is that very token and, where an address is recorded, the connection comes
from it. A user's own tokens therefore never speak for a workspace, whatever their scopes, and
the workspace's token is useless outside the workspace.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

STATE_KEY = "cloisonne_workspace"


@dataclass(frozen=True)
class WorkspaceProof:
    spawn_id: str
    token_sha256: str
    address: str = ""  # "" where the backend records none (Kubernetes: see the security model)

    def to_state(self) -> dict[str, str]:
        return {"spawn_id": self.spawn_id, "token_sha256": self.token_sha256,
                "address": self.address}  # fmt: skip

    @classmethod
    def from_state(cls, state: Mapping[str, Any] | None) -> WorkspaceProof | None:
        raw = (state or {}).get(STATE_KEY)
        if not isinstance(raw, Mapping) or not raw.get("token_sha256"):
            return None
        return cls(str(raw.get("spawn_id", "")), str(raw["token_sha256"]),
                   str(raw.get("address") or ""))  # fmt: skip


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_proof(api_token: str, address: str = "") -> WorkspaceProof:
    """The proof of one start of a server (a new spawn id each time)."""
    return WorkspaceProof(secrets.token_hex(6), token_digest(api_token), address)


def refusal(server: str, proof: WorkspaceProof | None, token: str, peer: str) -> str | None:
    """Why a call presenting ``token`` from ``peer`` is not the workspace ``server``
    ("user/project"), or None when it is."""
    if proof is None:
        return f"the workspace {server} is not running (no proof of it at the hub)"
    if not hmac.compare_digest(token_digest(token), proof.token_sha256):
        return (f"this token is not the workspace {server}'s own: a token a user makes, "
                "whatever its scopes, never speaks for a workspace")  # fmt: skip
    if proof.address and peer != proof.address:
        return (f"the workspace {server}'s token was sent from {peer or 'an unknown address'}, "
                "not from inside that workspace")  # fmt: skip
    return None
