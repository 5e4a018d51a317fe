"""The outcome of one conformance case."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from snnkit.conformance.metrics import Comparison


@dataclass(frozen=True)
class PlannedCase:
    """One case to run in one dtype: against the method's oracle, or with ``peer`` its
    agreement with that exact event method."""

    case: str
    dtype: str
    peer: str | None = None

    @property
    def name(self) -> str:
        """How tables and JSON show it: the case, or ``"case = peer"`` for an agreement."""
        return _shown(self.case, self.peer)


def _shown(case: str, peer: str | None) -> str:
    return case if peer is None else f"{case} = {peer}"


@dataclass(frozen=True)
class CaseResult:
    """``status`` is passed | failed | skipped (method does not offer it) | error (crashed);
    ``peer``: the exact event method this case was an agreement with (None: the oracle)."""

    method: str
    case: str
    dtype: str
    device: str
    tolerance: float
    status: str
    max_rel_err: float = math.nan
    cosine: float = math.nan
    norm_ratio: float = math.nan
    detail: str = ""
    peer: str | None = None

    @property
    def name(self) -> str:
        """The case as shown: ``"case = peer"`` for an agreement with a peer."""
        return _shown(self.case, self.peer)

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def counts_as_failure(self) -> bool:
        return self.status in ("failed", "error")

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["case"] = self.name
        out["passed"] = self.passed
        for key in ("max_rel_err", "cosine", "norm_ratio"):
            if not math.isfinite(out[key]):
                out[key] = None
        return out

    @staticmethod
    def base(
        method, case: str, representation: str, dtype: str, device: str, peer: str | None = None
    ) -> dict:
        """The fields every result of one (method, case, dtype, device, peer) shares."""
        from snnkit.conformance.metrics import TOLERANCES

        tolerance = TOLERANCES[representation, dtype]
        return {
            "method": method.name,
            "case": case,
            "dtype": dtype,
            "device": device,
            "tolerance": tolerance,
            "peer": peer,
        }

    @classmethod
    def from_comparison(cls, base: dict, cmp: Comparison, detail: str = "") -> CaseResult:
        ok = cmp.max_rel_err <= base["tolerance"]
        return cls(
            **base,
            status="passed" if ok else "failed",
            max_rel_err=cmp.max_rel_err,
            cosine=cmp.cosine,
            norm_ratio=cmp.norm_ratio,
            detail=detail,
        )

    @classmethod
    def skip(cls, base: dict, why: str) -> CaseResult:
        return cls(**base, status="skipped", detail=why)

    @classmethod
    def fail(cls, base: dict, why: str) -> CaseResult:
        return cls(**base, status="failed", detail=why)

    @classmethod
    def error(cls, base: dict, why: str) -> CaseResult:
        return cls(**base, status="error", detail=why)
