"""Engines behind one protocol: ``get("forward")`` (dual numbers), ``get("reverse")`` (tape)."""
from . import forward, reverse  # noqa: F401  (registration)
from .base import Engine, get, names, register

__all__ = ["Engine", "get", "names", "register"]
