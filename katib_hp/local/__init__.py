"""Run a Katib Experiment on this machine: each trial is a local process.

``suggest`` decides which parameter assignments to try next with the libraries and settings of Katib's own
suggestion services, ``hyperband`` runs the full Hyperband schedule, and ``earlystop`` applies Katib's
median stopping rule. Nothing heavy is imported here.
"""
