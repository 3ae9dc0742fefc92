"""Routing rules and the metadata urgency escalation, read from one YAML file."""

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

DEFAULT_RULES = Path(__file__).with_name("routing.yaml")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReachTier(Strict):
    min_followers: int = Field(ge=0)
    raise_: int = Field(alias="raise", ge=0, le=3)


class EngagementTier(Strict):
    min_interactions: int = Field(ge=0)
    raise_: int = Field(alias="raise", ge=0, le=3)


class Escalation(Strict):
    applies_to: list[str] = ["complaint", "question", "sales_lead"]
    reach: list[ReachTier] = []
    verified_raise: int = Field(0, ge=0, le=3)
    engagement: list[EngagementTier] = []


class Route(Strict):
    intents: list[str] = Field(min_length=1)
    min_urgency: int = Field(0, ge=0, le=3)
    queue: str | None
    priority: Literal["P1", "P2", "P3", "P4", "P5"]
    respond_within_minutes: int | None = Field(ge=1)

    def matches(self, intent: str, level: int) -> bool:
        return (intent in self.intents or "*" in self.intents) and level >= self.min_urgency


class RulesError(ValueError):
    """A routing file that cannot be used; the message names the line."""


class Rules(Strict):
    escalation: Escalation = Escalation()
    routes: list[Route] = Field(min_length=1)

    @classmethod
    def load(cls, path: str | Path = DEFAULT_RULES) -> "Rules":
        path = Path(path)
        try:
            text = path.read_text()
            node = yaml.compose(text)
            data = yaml.safe_load(text)
        except OSError as e:
            raise RulesError(f"routing file {path}: {e.strerror}") from e
        except yaml.YAMLError as e:
            raise RulesError(f"routing file {path}: not valid YAML: {e}") from e
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            err = e.errors()[0]
            line = _line_of(node, err["loc"])
            where = ".".join(str(p) for p in err["loc"])
            raise RulesError(f"routing file {path}, line {line}: {where}: {err['msg']}") from e

    def check_labels(self, labels: list[str]) -> None:
        """Every intent the model can say needs a route."""
        for label in labels:
            if not any(r.matches(label, 3) for r in self.routes):
                raise RulesError(f"no routing rule matches intent {label!r}; add one (or a '*' rule)")

    def escalate(self, intent: str, level: int, followers: int | None, verified: bool,
                 interactions: int | None) -> tuple[int, list[str]]:
        """The level raised by author reach and public engagement, and the reasons in words."""
        e = self.escalation
        if intent not in e.applies_to:
            return level, []
        reasons, reach = [], 0
        tiers = [t for t in e.reach if followers is not None and followers >= t.min_followers]
        if tiers:
            reach = max(t.raise_ for t in tiers)
            reasons.append(f"author reach: {_short(followers)} followers")
        if verified and e.verified_raise:
            reach = max(reach, e.verified_raise)
            reasons.append("verified author")
        tiers = [t for t in e.engagement if interactions is not None and interactions >= t.min_interactions]
        public = max((t.raise_ for t in tiers), default=0)
        if public:
            reasons.append(f"public visibility: {interactions} shares and replies")
        # Reasons name every raise that applies, also when the level is already at its top.
        raised = min(3, level + reach + public)
        return raised, reasons

    def route(self, intent: str, level: int) -> Route:
        for r in self.routes:
            if r.matches(intent, level):
                return r
        raise RulesError(f"no routing rule matches intent {intent!r} at urgency {level}")


def _short(n: int) -> str:
    for unit, size in (("M", 1_000_000), ("k", 1_000)):
        if n >= size:
            return f"{n / size:.1f}".rstrip("0").rstrip(".") + unit
    return str(n)


def _line_of(node, loc) -> int:
    """1-based line of the YAML node at a pydantic error location (as deep as it exists)."""
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = [v for k, v in node.value if k.value == part]
            if not found:
                break
            node = found[0]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
    return node.start_mark.line + 1 if node is not None else 1
