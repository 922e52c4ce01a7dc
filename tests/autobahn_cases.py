"""Which Autobahn|Testsuite cases the suite runs by default (client and server tests alike).

Cases 12 and 13 (permessage-deflate) move about 11 GB each way through zlib: about 24 min on
this kind of machine, more than CI can give on three Pythons.  By default cases 1 to 10 run
whole, and the first case of every group of 12 (message sizes) and 13 (deflate parameter
sets): every path of the compression, a tenth of its bytes.  ``KAKEHASHI_AUTOBAHN_CASES="*"``
runs all 517 (docs/websocket.md's tables are from such runs); a list such as ``"1.*,2.*"``
narrows them while fixing something.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

__all__ = ["CASES", "grade"]

DEFAULT_CASES = ",".join(
    [f"{group}.*" for group in range(1, 11)]
    + [f"12.{group}.1" for group in range(1, 6)]
    + [f"13.{group}.1" for group in range(1, 8)]
)
CASES = os.environ.get("KAKEHASHI_AUTOBAHN_CASES", DEFAULT_CASES).split(",")


def grade(results: dict[str, Any], elapsed: float) -> list[tuple[str, str, str]]:
    """The cases of an Autobahn report (``index.json``'s entry for our agent) that fail the
    bar: FAILED, or a close that is neither OK nor INFORMATIONAL.  Prints the tally."""
    behaviors: dict[str, int] = {}
    bad = []
    for case, result in sorted(results.items()):
        behaviors[result["behavior"]] = behaviors.get(result["behavior"], 0) + 1
        if result["behavior"] == "FAILED" or result["behaviorClose"] not in ("OK", "INFORMATIONAL"):
            bad.append((case, result["behavior"], result["behaviorClose"]))
    non_strict = sorted(c for c, r in results.items() if r["behavior"] == "NON-STRICT")
    print(f"\nautobahn: {len(results)} cases in {elapsed:.0f} s: {behaviors}; "
          f"non-strict: {non_strict}")  # fmt: skip
    return bad


# Where both Autobahn tests find what they run: the suite's script and its Python 2.7.
ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "autobahn.sh"
PYTHON2 = Path(
    os.environ.get("AUTOBAHN_PYTHON", str(Path.home() / ".pyenv/versions/2.7.18/bin/python"))
)
AGENT = "kakehashi"
MARKS = [
    pytest.mark.autobahn,
    pytest.mark.integration,
    pytest.mark.timeout(3600),
    pytest.mark.skipif(
        not PYTHON2.exists(),
        reason=f"Autobahn|Testsuite needs Python 2.7 (none at {PYTHON2}; set AUTOBAHN_PYTHON)",
    ),
]
