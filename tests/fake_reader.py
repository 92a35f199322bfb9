"""What fake store readers of account tests share: no user state, and the model from its file.

The owner's book reads an account of one member's user as judged now (``streams.views._sole_now``,
QA17 F4), and the model to judge it with (``streams.views._model``); a fake that holds accounts
only answers that it has no user state, so such an account keeps its member record.
"""

from __future__ import annotations

from typing import Any


class NoUserStates:
    """Mix into a fake reader: ``load_user`` finds nothing, ``run`` runs the call on the fake itself."""

    def load_user(self, user_id: str) -> None:
        return None

    def run(self, call: Any) -> Any:
        return call(self)

    def model_in_use(self, file_model: Any) -> tuple[Any, str]:
        return file_model, ""

    def account_dues(self, topic: str, accounts: Any) -> dict[str, int]:
        """No account review pending: every account is judged at the stream time."""
        return {}
