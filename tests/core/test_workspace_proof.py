"""The workspace proof: only the server's own token, from the workspace's own address."""

from __future__ import annotations

from cloisonne.core.workspace_proof import STATE_KEY, WorkspaceProof, new_proof, refusal

TOKEN = "the-servers-own-token"


def test_the_servers_own_token_from_its_address_is_the_workspace() -> None:
    proof = new_proof(TOKEN, "10.243.0.6")
    assert refusal("alice/cardio", proof, TOKEN, "10.243.0.6") is None


def test_a_token_the_user_made_is_never_the_workspace() -> None:
    proof = new_proof(TOKEN, "10.243.0.6")
    reason = refusal("alice/cardio", proof, "minted-by-alice", "10.243.0.6")
    assert reason and "not the workspace alice/cardio's own" in reason


def test_the_workspace_token_from_elsewhere_is_refused() -> None:
    proof = new_proof(TOKEN, "10.243.0.6")
    reason = refusal("alice/cardio", proof, TOKEN, "10.243.0.1")
    assert reason and "sent from 10.243.0.1" in reason


def test_no_running_workspace_no_proof() -> None:
    reason = refusal("alice/onco", None, TOKEN, "10.243.0.6")
    assert reason and "alice/onco is not running" in reason


def test_no_address_recorded_checks_the_token_only() -> None:
    proof = new_proof(TOKEN)
    assert refusal("alice/cardio", proof, TOKEN, "192.0.2.7") is None
    assert refusal("alice/cardio", proof, "other", "192.0.2.7")


def test_the_proof_survives_the_hubs_state_and_each_start_has_its_own_id() -> None:
    proof = new_proof(TOKEN, "10.243.0.6")
    assert WorkspaceProof.from_state({STATE_KEY: proof.to_state(), "pid": 12}) == proof
    assert WorkspaceProof.from_state({"pid": 12}) is None
    assert WorkspaceProof.from_state(None) is None
    assert new_proof(TOKEN).spawn_id != new_proof(TOKEN).spawn_id
    assert TOKEN not in str(proof.to_state())  # only its digest is kept
