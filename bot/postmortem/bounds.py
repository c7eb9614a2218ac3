"""Limits on rendering a postmortem template: how long it runs, how large a value it builds and
how much it writes. A team's template is code: one that loops for ever or builds gigabytes
must cost its draft (the built-in template is used instead), never Firebreak's process, nor the
incident lock the generation holds while it renders.

Jinja's sandbox already refuses what is unsafe and caps ``range``; these bound what is merely
too costly. CPU time is checked as the template's code runs (a trace function, for the rendering
thread only, while it renders, looking at the clock every thousand calls); ``*`` and ``**`` are
checked before they compute; what Jinja's ``~`` builds, and the output as it is written, are
measured."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from types import CodeType, FrameType
from typing import Any

from jinja2 import Template
from jinja2.sandbox import SandboxedEnvironment

TIME_LIMIT = 5.0
"""Seconds of CPU a render may use (the rendering thread's own: a busy machine does not cut a
render short); a 2,000-event incident renders in a fraction of one."""
SIZE_LIMIT = 5_000_000
"""Characters of the draft, and of any string or list a template builds on the way."""
POWER_LIMIT = 10_000
"""Bits of an integer ``**`` may make."""


class TooCostly(Exception):
    """The template went past a limit; the message says which."""


class BoundedEnvironment(SandboxedEnvironment):
    """The sandbox, with ``*`` and ``**`` checked before they build a huge value."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for sized, times in ((left, right), (right, left)):
                built = len(sized) * times if _repeatable(sized, times) else 0
                if built > SIZE_LIMIT:
                    raise TooCostly(
                        f"'*' would build {built:,} characters or items (the limit is "
                        f"{SIZE_LIMIT:,})"
                    )
        if operator == "**" and _power_bits(left, right) > POWER_LIMIT:
            raise TooCostly(f"'**' would build a number of more than {POWER_LIMIT:,} bits")
        return super().call_binop(context, operator, left, right)


def _repeatable(sized: object, times: object) -> bool:
    return isinstance(sized, str | list | tuple) and isinstance(times, int)


def _power_bits(base: object, exponent: object) -> int:
    """About how many bits ``base ** exponent`` takes, for whole numbers (0 for the rest)."""
    if not isinstance(base, int) or not isinstance(exponent, int) or exponent <= 0:
        return 0
    return exponent * abs(base).bit_length() if abs(base) > 1 else 0


def render_bounded(template: Template, variables: Mapping[str, Any]) -> str:
    """``template.render(variables)``, or ``TooCostly`` past a limit."""
    deadline = time.thread_time() + TIME_LIMIT
    steps = 0

    def check_time() -> None:
        if time.thread_time() > deadline:
            raise TooCostly(
                f"used more than {TIME_LIMIT:.0f} s of CPU without finishing (a loop that "
                "never ends?)"
            )

    def joined(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "return" and isinstance(arg, str | list) and len(arg) > SIZE_LIMIT:
            raise TooCostly(f"built a value of more than {SIZE_LIMIT:,} characters or items")
        return joined

    def called(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal steps
        steps += 1
        if not steps % _STEPS_PER_CHECK:
            check_time()
        code = frame.f_code
        if code not in local:
            local[code] = joined if code.co_name in _JOINS else None
        return local[code]

    local: dict[CodeType, Callable[[FrameType, str, Any], Any] | None] = {}

    written: list[str] = []
    size = 0
    previous = sys.gettrace()
    sys.settrace(called)
    try:
        for chunk in template.generate(variables):
            size += len(chunk)
            if size > SIZE_LIMIT:
                raise TooCostly(f"wrote more than {SIZE_LIMIT:,} characters")
            written.append(chunk)
    finally:
        sys.settrace(previous)
    return "".join(written)


_STEPS_PER_CHECK = 1000
"""Python calls made while rendering between two looks at the clock (a look is a system call;
tracing every line made a render several times slower)."""
_JOINS = frozenset({"str_join", "markup_join"})
"""Jinja's functions behind ``~``: what they return is measured."""
