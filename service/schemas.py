"""The JSON contract of the API. Other systems code against these names: change them only with a new /v2."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_TEXT = 10_000
MAX_BATCH = 512


class Author(BaseModel):
    followers: int | None = Field(None, ge=0, le=10**10, examples=[1200])
    verified: bool = False


class Engagement(BaseModel):
    likes: int = Field(0, ge=0, le=10**10)
    shares: int = Field(0, ge=0, le=10**10)
    replies: int = Field(0, ge=0, le=10**10)


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
    text: str = Field(min_length=1, max_length=MAX_TEXT)
    author: Author | None = None
    engagement: Engagement | None = None
    channel: str | None = Field(None, max_length=64)
    created_at: datetime | None = None

    _text = field_validator("text")(_not_blank)


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


class Correction(BaseModel):
    """An agent's correction: what the post really is, by the labeling guide."""
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "post_id": "1868203", "text": "@SkyFly how do I add a bag to my booking?",
        "predicted": {"intent": "complaint", "urgency": 2}, "intent": "question", "also": [], "urgency": 1,
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
