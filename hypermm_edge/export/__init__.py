"""Checkpoint -> ONNX graphs (trunk, one head per modality, rho) -> engines + manifest."""
