"""Backends that run experiments: ``cluster`` talks to a Kubernetes API server with Katib installed.

Nothing heavy is imported here; ``katib_hp.backends.cluster`` imports the Kubernetes client when it is used.
"""
