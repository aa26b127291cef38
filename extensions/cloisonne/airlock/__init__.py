"""The export airlock: request model, state machine, permissions, what each viewer sees."""
