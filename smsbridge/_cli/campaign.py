"""A campaign's identity and its journal, for the commands that keep one (``send`` through
one gateway, ``send route`` through several)."""

from __future__ import annotations

import argparse
import hashlib
import os
from pathlib import Path

import msgspec

from .._campaign import Campaign, Journal
from .._core.gateway import Message
from .args import UsageError

__all__ = ["campaign_of", "open_journal"]


def campaign_of(
    name: str,
    args: argparse.Namespace,
    message: Message,
    digest: str,
    total: int,
    reading: str | None = None,
) -> Campaign:
    """The campaign the options describe, sent through ``name`` (a gateway, or a routing);
    ``reading`` says which columns of the file are read."""
    if message.kind == "template":
        content = f"template {message.template}"
    elif message.kind == "personal":
        fallback = f" (else {args.text!r})" if args.text else ""
        content = f"texts from the file's text column{fallback}"
    else:
        content = f"text {message.text!r}"
    source = str(args.to_file) if args.to_file else "--to"
    # a file name that is not UTF-8 (its bytes as surrogates): shown escaped, storable
    source = source.encode("utf-8", "backslashreplace").decode()
    key = hashlib.sha256(
        msgspec.json.encode([name, args.sender, args.template, args.text, digest])
    ).hexdigest()
    description = (
        f"{name}, sender {args.sender!r}, {content}, {total:,} recipients from "
        f"{source} (input {digest[:12]})"
    )
    return Campaign(key=key, description=description, total=total, reading=reading)


def open_journal(path: Path) -> Journal:
    """The journal at ``path`` (created if missing), or a usage error saying why not."""
    folder = path.parent
    if not folder.is_dir():
        raise UsageError(f"cannot keep a journal at {path}: no folder {folder}")
    if not path.exists() and not os.access(folder, os.W_OK):
        raise UsageError(f"cannot keep a journal at {path}: {folder} is not writable")
    try:
        return Journal(path, exclusive=True)
    except OSError as e:
        raise UsageError(f"cannot keep a journal at {path}: {e.strerror or e}") from None
