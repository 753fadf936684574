"""The real Kafka + MongoDB-protocol fixture of the system tests, shared with the repository's tests/."""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # so that `tests.stack` and `tests.support` import under importlib mode

from tests.conftest import infra  # noqa: E402, F401 - re-exported fixture
