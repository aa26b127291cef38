"""Keys the site holds: a master key that never leaves its keeper (an HSM through PKCS#11, or a
file keyring for development), and per-project keys generated, wrapped by it and stored only
wrapped. Runs in the operator's tooling and the hub side; never imported by a workspace.
"""
