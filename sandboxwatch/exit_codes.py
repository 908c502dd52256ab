"""The exit statuses of every ``sandboxwatch`` command (docs/cli.md), and the error that means status 2.

One list, so a supervisor, a CI job or a participant's script reads the same number the same way from
``check``, ``up --once``, ``audit verify``, an ingest connector or a stream worker."""

from __future__ import annotations

EXIT_OK = 0
# A breach or critical finding (check, up --once), a trail problem (audit verify), a participant not
# compliant (findings summary).
EXIT_FINDINGS = 1
# The input cannot be used at all: a bad licence, settings, file or option, nothing valid read, a data dir in
# use, a store that cannot be used or reached, an output that cannot be written (a full disk).
EXIT_UNUSABLE = 2
# findings summary: no event of the participant in the period, so nothing was judged.
EXIT_NO_DATA = 4
# A bug, not the input's fault: reported in one line, never as exit 1.
EXIT_INTERNAL = 3
# A stream worker whose agent failed on something it could not contain (EX_SOFTWARE): its supervisor restarts it.
EXIT_AGENT_FAILED = 70


class Unusable(Exception):
    """Input that cannot be used at all (exit 2), as opposed to bad lines inside it; the message is the one
    line the user sees."""


def unwritable(option: str, path: str, exc: OSError) -> Unusable:
    """An output the command cannot write (a missing folder, a directory, a full disk such as /dev/full):
    the user's to fix, so exit 2 with the option, the file and the system's reason in one line."""
    reason = exc.strerror or type(exc).__name__
    return Unusable(f"{option} {path}: cannot write: {reason}")
