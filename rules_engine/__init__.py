"""Deterministic licence checks shared by the stream workers, the self-check CLI and backtests.

Everything here is a pure function of its inputs: events carry their own time, money is ``Decimal``,
and rule state is passed in explicitly, so replaying the same events always yields the same findings.
"""

from sandboxwatch.rules_engine.engine import Engine
from sandboxwatch.rules_engine.events import Event
from sandboxwatch.rules_engine.findings import Finding
from sandboxwatch.rules_engine.licence import Licence, LicenceError, load_licence

__all__ = ["Engine", "Event", "Finding", "Licence", "LicenceError", "load_licence"]
