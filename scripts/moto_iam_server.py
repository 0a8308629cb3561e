#!/usr/bin/env python3
"""moto_server with one fix for its IAM mode, started by scripts/lib/services.sh.

moto (5.2) verifies SigV4 against a body it rebuilds from the parsed form with '+' for
spaces; botocore sends '+', the Rust SDK sends '%20' (both valid, AWS accepts either), so
every Rust request whose parameters contain a space (a message, an alarm description) fails
with SignatureDoesNotMatch. This retries the comparison over the '%20' encoding of the same
parameters, in the same order. It is not a relaxation: the signature must still match the
caller's secret key over the request's parameters; a wrong key fails both encodings.

    moto_iam_server.py [moto_server args...]   (set INITIAL_NO_AUTH_ACTION_COUNT)
"""

from __future__ import annotations

import sys
from urllib.parse import quote, urlencode

from moto.iam import access_control
from moto.server import main

_original_check = access_control.IAMRequestBase.check_signature


def _check_signature(self) -> None:
    try:
        _original_check(self)
    except Exception:
        if self._body or not isinstance(self._data, dict):
            raise
        self._body = urlencode(self._data, doseq=True, quote_via=quote)
        try:
            _original_check(self)
        finally:
            self._body = None


access_control.IAMRequestBase.check_signature = _check_signature

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
