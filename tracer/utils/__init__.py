"""Utilities beside autograd (torch.utils): activation checkpointing."""

from tracer.utils import checkpoint

__all__ = ["checkpoint"]
