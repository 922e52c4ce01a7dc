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

__all__ = ["CASES"]

DEFAULT_CASES = ",".join(
    [f"{group}.*" for group in range(1, 11)]
    + [f"12.{group}.1" for group in range(1, 6)]
    + [f"13.{group}.1" for group in range(1, 8)]
)
CASES = os.environ.get("KAKEHASHI_AUTOBAHN_CASES", DEFAULT_CASES).split(",")
