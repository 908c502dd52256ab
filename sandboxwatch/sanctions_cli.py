"""``sandboxwatch sanctions import``: an OFAC SDN file -> the address list a ``blocked_addresses`` rule names.

Exit 0 with the count written; exit 2 when the file is not a known OFAC format, has no digital currency
addresses, or lacks its publication date (sdn.csv: give ``--published``). The output is replaced atomically,
and a running monitor takes the new version from its next batch on (rules_engine/reference_lists.py)."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path
from typing import Any

from sandboxwatch.exit_codes import EXIT_OK, EXIT_UNUSABLE


def add_sanctions_commands(commands: Any) -> None:
    sanctions = commands.add_parser("sanctions", help="reference lists for the blocked_addresses rule")
    kinds = sanctions.add_subparsers(dest="sanctions_command", required=True)
    imp = kinds.add_parser("import", help="OFAC SDN (SDN.XML, SDN_ADVANCED.XML or sdn.csv) digital currency addresses")
    imp.add_argument("--source", required=True, help="the downloaded OFAC file")
    imp.add_argument("--out", required=True, help="the address file the blocked_addresses rule names (file:)")
    imp.add_argument("--published", help="the list's publication date, YYYY-MM-DD (required for sdn.csv)")
    imp.set_defaults(run=cmd_sanctions_import)


def cmd_sanctions_import(args: argparse.Namespace) -> int:
    from sandboxwatch.ingest.sanctions import SanctionsError, read_sanctions, write_address_file

    try:
        # An empty --published (an unset variable) is refused, not taken for "none given"; only YYYY-MM-DD
        # (fromisoformat also reads 20251021 and 2025-W43-2).
        published = None
        if args.published is not None:
            if len(args.published) != 10 or args.published[4::3] != "--":
                raise ValueError(args.published)
            published = date.fromisoformat(args.published)
    except ValueError:
        print(f"sandboxwatch sanctions import: --published {args.published!r} is not YYYY-MM-DD", file=sys.stderr)
        return EXIT_UNUSABLE
    source, out = Path(args.source), Path(args.out)
    try:
        listed = read_sanctions(source, published)
        count = write_address_file(listed, source, out)
    except SanctionsError as exc:
        print(f"sandboxwatch sanctions import: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    except OSError as exc:
        print(f"sandboxwatch sanctions import: cannot write {out}: {exc.strerror}", file=sys.stderr)
        return EXIT_UNUSABLE
    print(
        f"sandboxwatch sanctions import: {count} addresses from the {listed.format} list published "
        f"{listed.published.isoformat()} written to {out}",
        file=sys.stderr,
    )
    return EXIT_OK
