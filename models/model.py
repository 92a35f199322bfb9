"""The versioned model file: every number the scoring uses, so stream and backtest agree.

A worker and a backtest given the same ``ChurnModel`` produce the same scores for the same
events; ``churnwatch train`` writes a new file, workers load it at start.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

__all__ = ["ChurnModel", "DEFAULT_MODEL_PATH", "load_model"]

DEFAULT_MODEL_PATH = Path(__file__).with_name("default_model.json")
MODEL_FORMAT = "churnwatch-model/1"


@dataclass(frozen=True, slots=True)
class ChurnModel:
    """Parameters of the scores. Durations are in days here because people set them."""

    version: str = "builtin-0"
    horizon_days: float = 30.0  # churn risk is P(churn within this horizon)
    # Hysteresis on risk: an at-risk alert opens above ``risk_enter`` and closes below ``risk_exit``.
    risk_enter: float = 0.6
    risk_exit: float = 0.4
    # Lifecycle thresholds (days of silence, also scaled by the user's own cadence, see lifecycle).
    new_days: float = 14.0
    dormant_days: float = 21.0
    churned_days: float = 45.0
    overdue_factor: float = 2.0  # "overdue" once silence exceeds this many usual intervals
    decline_ratio: float = 0.5  # "declining" once recent activity is below this share of baseline
    retention_days: float = 180.0  # expire a churned user's state this long after churn is reported
    review_interval_days: float = 1.0  # longest gap between two looks at a silent user
    # Logistic risk model: weight per feature name, plus intercept (see models.risk).
    risk_weights: Mapping[str, float] = field(default_factory=dict)
    risk_intercept: float = 0.0
    # BG/NBD population parameters (r, alpha, a, b), alpha in days; None until fitted.
    bgnbd: Mapping[str, float] | None = None
    # Population reference points (quantiles) for health and RFM; filled by ``train``.
    population: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 < self.risk_exit < self.risk_enter < 1.0:
            raise ValueError(
                f"need 0 < risk_exit < risk_enter < 1, got risk_exit={self.risk_exit}, risk_enter={self.risk_enter}"
            )
        for name in ("horizon_days", "new_days", "dormant_days", "churned_days", "retention_days", "review_interval_days"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0 days, got {getattr(self, name)}")
        if self.dormant_days >= self.churned_days:
            raise ValueError(f"dormant_days ({self.dormant_days}) must be below churned_days ({self.churned_days})")

    def to_json(self) -> str:
        return json.dumps({"format": MODEL_FORMAT, **asdict(self)}, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ChurnModel":
        data = json.loads(text)
        if data.pop("format", None) != MODEL_FORMAT:
            raise ValueError(f"not a {MODEL_FORMAT} model file")
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"model file has unknown fields: {sorted(unknown)}")
        return cls(**data)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n", encoding="utf-8")

    def with_(self, **changes: Any) -> "ChurnModel":
        return replace(self, **changes)


def load_model(path: str | Path | None = None) -> ChurnModel:
    """The model at ``path``, else the shipped default, else built-in defaults."""
    target = Path(path) if path else DEFAULT_MODEL_PATH
    if target.exists():
        return ChurnModel.from_json(target.read_text(encoding="utf-8"))
    if path:
        raise FileNotFoundError(f"model file {target} does not exist")
    return ChurnModel()
