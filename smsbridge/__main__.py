"""``python -m smsbridge``: the command line."""

from ._cli import entry_point

entry_point()
