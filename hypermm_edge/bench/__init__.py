"""Latency measurement: per stage, per modality subset, optionally against PyTorch eager."""
