"""PyTorch side of HyperMM: model, checkpoints, reference import. Never imported by the runtime."""
