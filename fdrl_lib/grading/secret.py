"""The instructor's secret: it derives the hidden cases' seeds, so their inputs and answers
cannot be computed before grading.

Set it with ``FDRL_GRADER_SECRET`` (the secret itself) or ``FDRL_GRADER_SECRET_FILE`` (a file
holding it); never commit it, never put it in a notebook. The grader strips every
``FDRL_GRADER*`` variable from the kernel's environment and hides the file from the sandbox.
Without a secret (self-study), hidden cases use their public default seeds: they are practice,
and the report says so.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

ENV, ENV_FILE = "FDRL_GRADER_SECRET", "FDRL_GRADER_SECRET_FILE"

PRACTICE_NOTE = (
    "self-study grading: no instructor secret is set (FDRL_GRADER_SECRET or "
    "FDRL_GRADER_SECRET_FILE), so the hidden cases use their public seeds and are practice only"
)


def secret() -> bytes | None:
    """The secret as bytes, or None (self-study). A named file that cannot be read is an error."""
    value = os.environ.get(ENV, "")
    if value:
        return value.encode()
    path = os.environ.get(ENV_FILE, "")
    if path:
        try:
            text = Path(path).read_bytes().strip()
        except OSError as error:
            raise ValueError(f"{ENV_FILE}={path} cannot be read: {error}") from error
        if not text:
            raise ValueError(f"{ENV_FILE}={path} is empty; put the instructor's secret in it")
        return text
    return None


def secret_file() -> Path | None:
    """The secret's file when it comes from one (the sandbox hides it from the kernel)."""
    path = os.environ.get(ENV_FILE, "")
    return Path(path).resolve() if path and not os.environ.get(ENV) else None


def secret_tag() -> str:
    """Names the secret in cache keys without revealing it: 'practice' without one."""
    key = secret()
    return "practice" if key is None else hmac.new(key, b"cache-tag", hashlib.sha256).hexdigest()


def hidden_seed(key: bytes, lecture: str, case_id: str) -> int:
    """A case's seed: HMAC-SHA256(secret, lecture/case) as a 63-bit integer."""
    digest = hmac.new(key, f"{lecture}/{case_id}".encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") >> 1
