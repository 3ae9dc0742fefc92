"""One predictor result plus the post's metadata in, the API's result fields out.

The API (`service.app`) and the batch scorer (`service.batch`) both call `to_score`, so a post scored
either way gets the same intent, escalated urgency, reasons and route.
"""

from model import URGENCY_NAMES

from .routing import Rules
from .schemas import Post

TEXT_REASONS = [
    "text reads as low urgency: no reply needed soon",
    "text reads as a routine request",
    "text reads as urgent: blocked now, escalating, or ready to buy",
    "text reads as critical: safety, security, fraud, legal or public risk",
]


def to_score(post: Post, result: dict, rules: Rules, model_version: str) -> dict:
    """One result in the `Score` shape (built as a dict: validating our own output again costs time)."""
    text_level = result["urgency"]
    followers = post.author.followers if post.author else None
    verified = bool(post.author and post.author.verified)
    interactions = post.engagement.shares + post.engagement.replies if post.engagement else None
    level, reasons = rules.escalate(result["intent"], text_level, followers, verified, interactions)
    route = rules.route(result["intent"], level)
    return {
        "id": post.id, "intent": result["intent"], "scores": result["scores"], "also": result["also"],
        "urgency": {"level": level, "name": URGENCY_NAMES[level], "score": result["urgency_score"],
                    "reasons": [TEXT_REASONS[text_level]] + reasons},
        "route": {"queue": route.queue, "priority": route.priority,
                  "respond_within_minutes": route.respond_within_minutes},
        "model_version": model_version}
