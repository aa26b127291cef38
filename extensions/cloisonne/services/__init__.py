"""Hub-managed services."""
