"""Trainer tooling: evaluation, baselines and (later) the full CLI workflow."""
