"""Reading a runbook file: size and encoding checks, with an error that says what is wrong."""

from __future__ import annotations

from pathlib import Path

from bot.runbooks.model import MAX_FILE_BYTES


class RunbookFileError(Exception):
    """A file that cannot be a runbook (binary, too large, unreadable); the message says why,
    ``line`` where (1: the file as a whole)."""

    def __init__(self, message: str, *, line: int = 1) -> None:
        super().__init__(message)
        self.line = line


def names_a_file(path: Path) -> bool:
    """A path to a file, or to a link that cannot be followed (``loop.md -> loop.md``, a link
    to a removed file): reading it says what is wrong, where "no such file" would not."""
    return path.is_file() or path.is_symlink()


def real_path(path: Path) -> Path:
    """``path`` with its links followed; a link that goes round in a loop is left as it is, in
    its directory's real path (Python 3.11 raises RuntimeError for a loop, 3.13 OSError)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path if path.parent == path else real_path(path.parent) / path.name


def read_runbook_text(path: Path) -> str:
    """Read a runbook file as text, refusing what the bot cannot show: over 1 MB, binary, not
    UTF-8, unreadable."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise RunbookFileError(
                f"the file is {size:,} bytes; runbooks over 1 MB ({MAX_FILE_BYTES:,} bytes) "
                "are not loaded: split it into smaller runbooks"
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
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise RunbookFileError(
            f"not UTF-8 text (byte 0x{raw[exc.start]:02x} in column {column}): save the file "
            "as UTF-8",
            line=line,
        ) from None


def _utf16_without_bom(head: bytes) -> bool:
    """Text saved as UTF-16 without a byte-order mark: ASCII with a NUL after (or before)
    every character."""
    head = head[: len(head) - len(head) % 2]
    return len(head) >= 4 and any(not any(half) for half in (head[1::2], head[0::2]))
