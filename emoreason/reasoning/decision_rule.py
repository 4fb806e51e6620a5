"""The fitted decision rule: how the embedded engine weighs the AU evidence against the expression prior.

A multinomial logistic model over two kinds of terms, fitted on real faces the face model never
trained on (`emoreason train decision-rule`, emoreason/training/decision_rule.py):

    logit(e) = bias[e] + sum_k w_prior[e][k] * log P_prior(k) + sum_AU w_au[e][AU] * intensity(AU)

Each weight is printable (`python -m emoreason.reasoning.decision_rule` prints the table), so a
reader can see, say, how much AU12 at intensity 3 moves happiness against the prior. The file
records the face model it was fitted with; the engine uses the rule only with that prior and
only when the allowed labels include its classes; a label outside them (contempt) keeps a floor
probability. Elsewhere the hand-set likelihood model of embedded.py decides, as before.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..types import FaceObservation

DEFAULT_RULE = Path(__file__).resolve().parent / "rules" / "fer2013-logistic.json"
PRIOR_FLOOR = 1e-3


@dataclass
class DecisionRule:
    classes: list[str]  # the emotions it decides between
    prior_terms: list[str]  # the prior's emotions whose log-probabilities are features
    au_terms: list[int]  # the AU codes whose intensities are features
    bias: dict[str, float]
    w_prior: dict[str, dict[str, float]]  # emotion -> prior emotion -> weight
    w_au: dict[str, dict[int, float]]  # emotion -> AU code -> weight per intensity unit
    face_model: str  # the expression model the prior came from when it was fitted
    meta: dict

    @classmethod
    def load(cls, path: str | Path = DEFAULT_RULE) -> DecisionRule:
        data = json.loads(Path(path).read_text())
        return cls(
            classes=data["classes"],
            prior_terms=data["prior_terms"],
            au_terms=[int(c) for c in data["au_terms"]],
            bias=data["bias"],
            w_prior=data["w_prior"],
            w_au={e: {int(c): w for c, w in ws.items()} for e, ws in data["w_au"].items()},
            face_model=data["face_model"],
            meta=data.get("meta", {}),
        )

    def covers(self, obs: FaceObservation, allowed: Sequence[str]) -> bool:
        """Can the rule decide for this face and label set?"""
        return (
            bool(obs.aus)
            and bool(obs.expression_prior)
            and obs.prior_model == self.face_model
            and bool(set(allowed) & set(self.classes))
        )

    def terms(self, obs: FaceObservation, emotion: str) -> dict[str, float]:
        """Each term's contribution to `emotion`'s logit: 'prior' (all prior terms together) and 'AU<n>'."""
        intensity = {a.code: a.intensity for a in obs.aus}
        prior = sum(
            w * math.log(max(obs.expression_prior.get(k, 0.0), PRIOR_FLOOR)) for k, w in self.w_prior[emotion].items()
        )
        out = {"prior": prior}
        out.update({f"AU{c}": w * intensity.get(c, 0.0) for c, w in self.w_au[emotion].items()})
        return out

    def logits(self, obs: FaceObservation, allowed: Sequence[str]) -> dict[str, float]:
        """Logits of the allowed labels. A label outside the rule's classes (contempt: FER2013 has none)
        gets the floor probability relative to the best one, as labels the prior does not cover do in the
        likelihood model."""
        out = {e: self.bias[e] + sum(self.terms(obs, e).values()) for e in allowed if e in self.classes}
        floor = max(out.values()) + math.log(PRIOR_FLOOR)
        out.update({e: floor for e in allowed if e not in self.classes})
        return out

    def table(self) -> str:
        """The weights as a markdown table (rows: terms, columns: emotions)."""
        head = "| term | " + " | ".join(self.classes) + " |\n|---|" + "---|" * len(self.classes)
        rows = ["| bias | " + " | ".join(f"{self.bias[e]:+.2f}" for e in self.classes) + " |"]
        rows += [f"| log P({k}) | " + " | ".join(f"{self.w_prior[e][k]:+.2f}" for e in self.classes) + " |"
                 for k in self.prior_terms]  # fmt: skip
        rows += [f"| AU{c} intensity | " + " | ".join(f"{self.w_au[e][c]:+.2f}" for e in self.classes) + " |"
                 for c in self.au_terms]  # fmt: skip
        return "\n".join([head, *rows])


def load_default_rule() -> DecisionRule | None:
    """The shipped rule, or None if it is not there (a source checkout before `make decision-rule`)."""
    return DecisionRule.load() if DEFAULT_RULE.is_file() else None


if __name__ == "__main__":
    rule = load_default_rule()
    print(rule.table() if rule else f"no rule at {DEFAULT_RULE}")
