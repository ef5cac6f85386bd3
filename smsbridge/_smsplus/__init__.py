"""The smsplus gateway: its declaration (spec), wire shapes, adapter, client and fake."""

from .spec import SPEC

__all__ = ["SPEC"]
