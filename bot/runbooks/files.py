"""Reading a runbook file: size and encoding checks, with an error that says what is wrong."""

from __future__ import annotations

from pathlib import Path

from bot.runbooks.model import MAX_FILE_BYTES


class RunbookFileError(Exception):
    """A file that cannot be a runbook (binary, too large, unreadable); the message says why."""


def read_runbook_text(path: Path) -> str:
    """Read a runbook file as text, refusing what the bot cannot show: over 1 MB, binary, not
    UTF-8, unreadable."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise RunbookFileError(
                f"the file is {size / 1_048_576:.1f} MB; runbooks over 1 MB are not loaded: "
                "split it into smaller runbooks"
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise RunbookFileError(f"cannot read the file: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise RunbookFileError("the file is over 1 MB; runbooks over 1 MB are not loaded")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")) or _utf16_without_bom(raw[:8192]):
        raise RunbookFileError(
            "UTF-16 text (as some Windows editors save it): save the file as UTF-8"
        )
    if b"\0" in raw[:8192]:
        raise RunbookFileError("binary file, not markdown text: remove it or rename it")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RunbookFileError(
            f"not UTF-8 text (invalid byte at offset {exc.start}): save the file as UTF-8"
        ) from None


def _utf16_without_bom(head: bytes) -> bool:
    """Text saved as UTF-16 without a byte-order mark: ASCII with a NUL after (or before)
    every character."""
    head = head[: len(head) - len(head) % 2]
    return len(head) >= 4 and any(not any(half) for half in (head[1::2], head[0::2]))
