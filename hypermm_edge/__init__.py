"""hypermm-edge: HyperMM from PyTorch training to fast inference with missing modalities."""

__version__ = "0.1.0"
