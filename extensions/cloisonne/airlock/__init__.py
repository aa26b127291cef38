"""The export airlock, pure (runs in the service): imports only core. Request model, state machine,
permissions, what each viewer sees."""
