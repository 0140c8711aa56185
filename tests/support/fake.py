"""A scripted runner for unit tests that check the ORDER of commands (never a capability)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

from ocfs2lab.runner.base import DEFAULT_TIMEOUT, CommandResult, as_bytes, validate_call

Reply = tuple[int, str] | Callable[[tuple[str, ...], bytes | None], tuple[int, str]]


class FakeRunner:
    """Records every argv; answers from rules matched against the command line.

    Rules are (regex, reply) pairs tried in order; the first whose regex matches the
    space-joined argv answers. Unmatched commands succeed with empty output.
    """

    def __init__(self, rules: Sequence[tuple[str, Reply]] = ()) -> None:
        self.rules = [(re.compile(p), r) for p, r in rules]
        self.calls: list[tuple[str, ...]] = []
        self.inputs: list[bytes | None] = []

    @property
    def where(self) -> str:
        return "fake"

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        input: bytes | str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        args = validate_call(argv, timeout, env)
        data = as_bytes(input)
        self.calls.append(args)
        self.inputs.append(data)
        line = " ".join(args)
        code, out = 0, ""
        for pattern, reply in self.rules:
            if pattern.search(line):
                code, out = reply(args, data) if callable(reply) else reply
                break
        result = CommandResult(args, code, out.encode(), b"", 0.0, "fake")
        return result.check(timeout=timeout) if check else result

    def close(self) -> None:
        pass

    def lines(self) -> list[str]:
        """The commands run, space-joined."""
        return [" ".join(c) for c in self.calls]
