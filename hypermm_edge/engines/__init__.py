"""Inference backends behind one interface, chosen by a registry.

Importing this package imports no heavy module: each backend imports its runtime lazily.
"""

from hypermm_edge.engines.base import Backend, Engine, auto_backend, get_backend, registered_backends

__all__ = ["Backend", "Engine", "auto_backend", "get_backend", "registered_backends"]
