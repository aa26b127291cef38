"""What runs inside a workspace: the server launcher (and, later, the guard)."""
