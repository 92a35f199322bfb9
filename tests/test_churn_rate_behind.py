"""``churn-rate`` says when its MRR figures are read mid-catch-up (QA24b F2, 2026-12-05).

The live MRR counters move with the account watermark: while the account side replays a backlog
they hold only the statements up to its time. A school platform's August read "churned 0.00, lost
0" (the truth 26,181.00, 17 schools) while ``accounts show`` said the account side was 280 days
behind; ``churn-rate`` now says so under the figures.
"""

from __future__ import annotations

from streams.settings import Settings
from streams.views import account_side_behind_ms, behind_note

DAY_MS = 86_400_000


class _Reader:
    """The one read ``account_side_behind_ms`` makes: the earliest pending account review (seconds)."""

    def __init__(self, first_s: int | None) -> None:
        self.first_s, self.topics = first_s, []

    def earliest_account_due(self, topic: str) -> int | None:
        self.topics.append(topic)
        return self.first_s


def test_an_account_side_months_behind_is_measured_and_said() -> None:
    settings, now = Settings(), 400 * DAY_MS
    reader = _Reader((now - 280 * DAY_MS) // 1000)
    behind = account_side_behind_ms(reader, settings, now)  # type: ignore[arg-type]
    assert behind == 280 * DAY_MS and reader.topics == [settings.topic_events]
    note = behind_note(behind, now)
    assert note.startswith("the account side is 280 days behind the stream time (catching up a backlog)")
    assert "up to about 1970-05-01 00:00 UTC only" in note


def test_a_current_account_side_or_one_within_its_designed_lag_says_nothing() -> None:
    settings, now = Settings(), 400 * DAY_MS
    # the grace (7 days) plus the lateness and the hour an account watermark lags by design
    within = (now - settings.account_grace_ms - settings.allowed_lateness_ms) // 1000
    for first in (None, now // 1000 + 3600, within):
        assert account_side_behind_ms(_Reader(first), settings, now) == 0  # type: ignore[arg-type]
    assert behind_note(0, now) == ""
