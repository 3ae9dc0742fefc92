"""The JSON contract of the API. Other systems code against these names: change them only with a new /v2."""

import re
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

MAX_TEXT = 10_000
MAX_BATCH = 512
# What the text validator below accepts, said in the schema for clients (and the fuzz tests): no null byte,
# and one character that is not white space. The class lists exactly the characters `str.isspace` knows.
WHITESPACE = r"\t\n\v\f\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
TEXT_PATTERN = rf"^[^\x00]*[^\x00{WHITESPACE}][^\x00]*$"




def _number(v):
    # A count is a JSON integer (12 or 12.0, as JSON Schema has it), not `true` or "12", which pydantic's
    # lax mode would read as 1 and 12.
    if isinstance(v, bool | str):
        raise ValueError("must be a number")
    return v


# The limits come before the validator: after it, pydantic writes them into the schema as "ge"/"le".
Count = Annotated[int, Field(ge=0, le=10**10), BeforeValidator(_number)]


class Author(BaseModel):
    followers: Count | None = Field(None, examples=[1200])
    verified: bool = Field(False, strict=True)


class Engagement(BaseModel):
    likes: Count = 0
    shares: Count = 0
    replies: Count = 0


def iso_datetime(v, name: str):
    # pydantic would read a number, or a numeric string, as Unix time; the contract is RFC 3339 text.
    if v is None or isinstance(v, datetime):
        return v
    if not isinstance(v, str) or not re.match(r"\d{4}-\d\d-\d\d", v):
        raise ValueError(f"{name} must be an RFC 3339 date-time string, e.g. 2026-11-25T10:00:00Z")
    return v


def _not_blank(v: str) -> str:
    if not v.strip():
        raise ValueError("text is blank")
    if "\x00" in v:
        raise ValueError("text contains a null byte")
    return v


class Post(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "1868203", "text": "@SkyFly stranded at JFK, flight cancelled and nobody at the desk. 3rd time asking!",
        "author": {"followers": 1200, "verified": False}, "engagement": {"likes": 3, "shares": 0, "replies": 1},
        "channel": "twitter", "created_at": "2026-11-25T10:00:00Z"}]})

    id: str | None = Field(None, max_length=128)
    text: str = Field(min_length=1, max_length=MAX_TEXT, json_schema_extra={"pattern": TEXT_PATTERN})
    author: Author | None = None
    engagement: Engagement | None = None
    channel: str | None = Field(None, max_length=64)
    created_at: datetime | None = None

    _text = field_validator("text")(_not_blank)

    _created = field_validator("created_at", mode="before")(lambda v: iso_datetime(v, "created_at"))


class Batch(BaseModel):
    posts: list[Post] = Field(min_length=1, max_length=MAX_BATCH)


class Urgency(BaseModel):
    level: int = Field(ge=0, le=3)
    name: str
    score: float = Field(description="expected urgency from the text, 0 (low) to 1 (critical)")
    reasons: list[str]


class RouteOut(BaseModel):
    queue: str | None
    priority: str
    respond_within_minutes: int | None


class Score(BaseModel):
    id: str | None
    intent: str
    scores: dict[str, float]
    also: list[str]
    urgency: Urgency
    route: RouteOut
    model_version: str


class BatchScore(BaseModel):
    results: list[Score]
    model_version: str


class ReloadRequest(BaseModel):
    model_dir: str | None = Field(None, description="folder to load; default: the folder the service started with")


class Error(BaseModel):
    error: str
    error_type: str
    detail: list[dict] | None = None


class Predicted(BaseModel):
    intent: str | None = Field(None, max_length=40)
    urgency: int | None = Field(None, ge=0, le=3)
    model_version: str | None = Field(None, max_length=128, description="as the score response gave it")


class Correction(BaseModel):
    """An agent's correction: what the post really is, by the labeling guide."""
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "post_id": "1868203", "text": "@SkyFly how do I add a bag to my booking?",
        "predicted": {"intent": "complaint", "urgency": 2, "model_version": "20261125-3f9a1c2e"},
        "intent": "question", "also": [], "urgency": 1,
        "agent": "agent-17", "note": "no complaint here"}]})

    post_id: str | None = Field(None, max_length=128)
    text: str = Field(min_length=1, max_length=MAX_TEXT)
    predicted: Predicted | None = None
    intent: str = Field(max_length=40)
    also: list[str] = Field([], max_length=10)
    urgency: int | None = Field(None, ge=0, le=3, description="0-3; leave out when unsure")
    agent: str | None = Field(None, max_length=128)
    note: str | None = Field(None, max_length=2000)

    _text = field_validator("text")(_not_blank)


class Stored(BaseModel):
    id: int
    post_id: str | None
    created_at: datetime
    replayed: bool = Field(description="true when an earlier request with the same Idempotency-Key stored it")


class StatsBucket(BaseModel):
    start: str
    posts: int
    intent: dict[str, int]
    urgency: dict[str, int]
    mean_confidence: float


class Stats(BaseModel):
    since: datetime
    bucket: str
    prediction_log: bool = Field(description="whether this service is logging predictions now")
    buckets: list[StatsBucket]


class Reloaded(BaseModel):
    model_version: str
    previous_version: str | None
    model_dir: str
    shared: bool = Field(description="recorded in the database: every worker and replica sharing it loads this "
                         "folder within reload_poll_seconds (false: the database is down, this process only)")


class ModelInfo(BaseModel):
    name: str | None
    version: str
    backend: str
    created: str | None
    base_model: str | None


class Limits(BaseModel):
    max_text_chars: int
    max_batch_posts: int
    max_body_bytes: int
    rate_limit_per_s: float | None = Field(description="requests a second per API key; null: no limit")
    rate_limit_burst: int | None


class Info(BaseModel):
    model: ModelInfo
    labels: list[str]
    urgency_levels: list[str]
    limits: Limits
    routing: dict = Field(description="the routing rules in force, as in routing.yaml")


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    status: str
    model_version: str
