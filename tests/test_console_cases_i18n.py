"""The case desk's words (api/console/cases-i18n.json) exist in English and Vietnamese for every key the view
uses, with the same placeholders, so switching the console to Vietnamese never shows a key or a blank."""

from __future__ import annotations

import json
import re

from sandboxwatch.api.case_workflow import RESOLUTIONS, STATES
from tests.helpers import ROOT

CONSOLE = ROOT / "api" / "console"


def test_every_case_desk_word_is_in_both_languages() -> None:
    words = json.loads((CONSOLE / "cases-i18n.json").read_text(encoding="utf-8"))
    assert set(words) == {"en", "vi"}
    assert set(words["en"]) == set(words["vi"])
    for key, english in words["en"].items():
        assert words["vi"][key].strip(), key
        assert set(re.findall(r"{(\w+)}", english)) == set(re.findall(r"{(\w+)}", words["vi"][key])), key
    script = (CONSOLE / "cases.js").read_text(encoding="utf-8")
    used = set(re.findall(r"""\bct\(\s*["']([\w.]+)["']""", script))
    used |= set(re.findall(r'data-wp?="([\w.]+)"', script))
    used |= {f"state.{s}" for s in STATES} | {f"resolution.{r}" for r in RESOLUTIONS}
    assert len(used) > 30, "the scan found too few keys: it is broken"
    assert used - set(words["en"]) == set()
