"""The torch-free inference runtime: numpy, Pillow, nibabel and an engine backend only."""

from hypermm_edge.runtime.predictor import Prediction, Predictor

__all__ = ["Prediction", "Predictor"]
