"""How large a message on the monitor's topics may be, from the largest line the parser accepts.

A line is at most ``MAX_LINE_CHARS`` characters (rules_engine.event_reader), up to 4 bytes each in UTF-8;
the record batch, key and headers around it get an envelope on top. Producers, consumers and topics are
all configured from these numbers, so a line the parser would judge is never refused on the way to it.
A dead letter carries a message's whole text as a JSON string, where escaping takes up to 6 bytes per
byte (``\\u00XX``), so the dead-letter and findings output gets room for that."""

from __future__ import annotations

from sandboxwatch.rules_engine.event_reader import MAX_LINE_CHARS

ENVELOPE_BYTES = 64 * 1024
MAX_EVENT_MESSAGE_BYTES = 4 * MAX_LINE_CHARS + ENVELOPE_BYTES
MAX_OUTPUT_MESSAGE_BYTES = 6 * 4 * MAX_LINE_CHARS + ENVELOPE_BYTES
