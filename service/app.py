"""The FastAPI app: scoring, routing, info, health, metrics and hot reload."""

import asyncio
import hashlib
import hmac
import json
import logging
import math
import os
import signal
import time
import uuid
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from model import URGENCY_NAMES, ModelFolderError, Predictor, read_metadata

from . import feedback
from .batcher import BACKLOG_FACTOR, MicroBatcher
from .ratelimit import RateLimiter
from .replicas import Follower
from .routing import Rules
from .schemas import MAX_BATCH, MAX_TEXT, Batch, BatchScore, Error, Health, Info, Post, Ready, Reloaded, ReloadRequest, Score
from .scoring import to_score
from .settings import Settings

log = logging.getLogger("service")

# Posts used to check a model before it serves (start-up warm-up and hot reload).
SAMPLE_POSTS = ["@brand my order never arrived and nobody answers", "how do I reset my password?",
                "love the new app, thanks!", "what does the family plan cost? want to switch today", "lol ok"]


def error(status: int, error_type: str, message: str, detail=None, headers=None) -> JSONResponse:
    """The one error shape of the API."""
    body = {"error": message, "error_type": error_type}
    if detail is not None:
        body["detail"] = detail
    return JSONResponse(body, status_code=status, headers=headers)


class ApiError(Exception):
    def __init__(self, status: int, error_type: str, message: str, headers: dict | None = None):
        self.status, self.error_type, self.message, self.headers = status, error_type, message, headers


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("triage_requests", "HTTP requests", ["route", "status"], registry=r)
        self.latency = Histogram("triage_request_seconds", "Request latency", ["route"], registry=r,
                                 buckets=(.002, .005, .01, .02, .03, .05, .1, .2, .5, 1, 2, 5, 10))
        self.posts = Counter("triage_posts_scored", "Posts scored", ["intent", "urgency"], registry=r)
        self.batch = Histogram("triage_inference_batch_posts", "Posts per inference batch", registry=r,
                               buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512))
        self.model = Gauge("triage_model_info", "Model in service", ["version"], registry=r)
        self.log_dropped = Counter("triage_prediction_log_dropped", "Scored posts not written to the prediction "
                                   "log (database slow or down)", registry=r)


class ModelHolder:
    """The predictor in service; a reload swaps the reference in one assignment."""

    def __init__(self):
        self.predictor: Predictor | None = None
        self.error: str | None = None
        self.lock = asyncio.Lock()


def saved_backend(settings: Settings) -> str | None:
    """The backend the model folder asks for; None where it cannot be read (start-up then says why)."""
    try:
        return read_metadata(settings.model_dir).get("inference", {}).get("backend")
    except ModelFolderError:
        return None


def load_checked(path: Path, settings: Settings, rules: Rules) -> Predictor:
    """Load a model folder and prove it works on sample posts before it serves."""
    predictor = Predictor.from_pretrained(path, backend=settings.backend, threads=settings.inference_threads(),
                                         precision=settings.precision, margin=settings.cascade_margin)
    rules.check_labels(predictor.labels)
    warm_up = getattr(predictor.backend, "warm_up", None)  # OpenVINO compiles kernels per input shape
    if warm_up:
        warm_up(BACKLOG_FACTOR * settings.micro_batch_size)
    for result in predictor.predict(SAMPLE_POSTS):
        total = sum(result["scores"].values())
        if result["intent"] not in predictor.labels or not 0.98 < total < 1.02:
            raise ModelFolderError(f"{path}: the model gives invalid scores on sample posts ({total:.3f})")
    return predictor


class Observe:
    """Body size limit, request id, metrics and one JSON log line per request.

    Plain ASGI: Starlette's `@app.middleware("http")` costs about a millisecond a request, which
    is a third of the budget of a single-post request under load.
    """

    def __init__(self, app, settings: Settings, metrics: Metrics):
        self.app, self.settings, self.metrics = app, settings, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        headers = dict(scope["headers"])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:128] or uuid.uuid4().hex
        status = 500

        async def send_with_id(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # nosniff: a browser never renders an echoed post (say, with a <script> tag) as anything but JSON.
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode("latin-1")),
                                      (b"x-content-type-options", b"nosniff")]
            await send(message)

        length = headers.get(b"content-length", b"")
        limit = self.settings.max_body_bytes
        too_large = length.isdigit() and int(length) > limit
        if not length and scope["method"] in ("POST", "PUT", "PATCH"):
            # A chunked upload has no length: read it here, at most one chunk past the limit, then replay it.
            messages, size = await self._buffer(receive, limit)
            too_large = size > limit
            receive = self._replay(messages, receive)
        if too_large:
            response = error(413, "body_too_large", f"request body over {limit} bytes")
            await response(scope, receive, send_with_id)
        else:
            await self.app(scope, receive, send_with_id)
        route = scope.get("route")
        path = route.path if route else "unmatched"
        elapsed = time.perf_counter() - started
        self.metrics.requests.labels(path, str(status)).inc()
        self.metrics.latency.labels(path).observe(elapsed)
        state = scope.get("state", {})
        entry = {"request_id": request_id, "method": scope["method"], "route": path, "status": status,
                 "latency_ms": round(elapsed * 1000, 2), "posts": state.get("posts", 0)}
        if self.settings.log_text and state.get("texts"):
            entry["texts"] = state["texts"]
        log.info(json.dumps(entry))

    @staticmethod
    async def _buffer(receive, limit: int) -> tuple[list[dict], int]:
        messages, size = [], 0
        while True:
            message = await receive()
            messages.append(message)
            size += len(message.get("body", b""))
            if size > limit or message["type"] != "http.request" or not message.get("more_body"):
                return messages, size

    @staticmethod
    def _replay(messages: list[dict], receive):
        buffered = iter(messages)

        async def replay():
            return next(buffered, None) or await receive()

        return replay


def create_app(settings: Settings | None = None, predictor: Predictor | None = None) -> FastAPI:
    """The app. Tests pass a ready `predictor`; otherwise the model loads in the background at start."""
    settings = settings or Settings()
    settings = settings.for_backend(predictor.backend.name if predictor else settings.backend or saved_backend(settings))
    rules = Rules.load(settings.routing)
    holder, metrics = ModelHolder(), Metrics()
    batcher = MicroBatcher(holder, settings.micro_batch_size, settings.micro_batch_wait_ms / 1000,
                           settings.inference_streams)
    batcher.on_batch = metrics.batch.observe
    scoring_keys = settings.scoring_keys()
    db = feedback.Database(settings.database_url, settings.log_predictions, settings.log_prediction_text,
                           metrics.log_dropped)

    def serve(p: Predictor) -> None:
        holder.predictor = p
        metrics.model.clear()
        metrics.model.labels(p.version).set(1)

    async def load(path: Path) -> Predictor:
        return await asyncio.to_thread(load_checked, path, settings, rules)

    async def swap(path: Path) -> None:
        async with holder.lock:
            serve(await load(path))

    follower = Follower(db, settings.model_dir, settings.reload_poll_seconds, swap,
                        lambda: holder.predictor.version if holder.predictor else None)

    async def load_at_start():
        try:
            path = await follower.start_dir()
            try:
                serve(await load(path))
            except Exception as e:
                if path == settings.model_dir:
                    raise
                log.error(json.dumps({"event": "reload_follow_failed", "model_dir": str(path), "error": str(e)}))
                serve(await load(settings.model_dir))
            log.info(json.dumps({"event": "model_loaded", "version": holder.predictor.version}))
            follower.start(adopt=follower.seen is None)
        except Exception as e:
            holder.error = str(e)
            log.error(json.dumps({"event": "model_load_failed", "error": str(e)}))
            os.kill(os.getpid(), signal.SIGTERM)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher.start()
        migrations = asyncio.create_task(db.start())
        loader = None
        if predictor is not None:
            rules.check_labels(predictor.labels)
            serve(predictor)
        else:
            read_metadata(settings.model_dir)  # a missing folder stops start-up here, with its name
            loader = asyncio.create_task(load_at_start())
        if predictor is not None:
            await follower.start_dir(announce=False)  # only to know which reloads are older than this process
            follower.start(adopt=False)
        yield
        if loader:
            loader.cancel()
        await follower.stop()
        await batcher.stop()
        migrations.cancel()
        await db.close()
        log.info(json.dumps({"event": "stopped", "drained": True}))

    app = FastAPI(title="Social Triage", version="1", lifespan=lifespan,
                  description="Scores customer social media posts: intent, urgency, and the queue that gets them.",
                  responses={422: {"model": Error}, 401: {"model": Error}, 403: {"model": Error},
                             413: {"model": Error}, 415: {"model": Error}, 503: {"model": Error}})
    app.state.settings, app.state.holder, app.state.rules = settings, holder, rules

    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type", "Idempotency-Key"])

    # ---- errors: one JSON shape -------------------------------------------------------------
    @app.exception_handler(ApiError)
    async def api_error(request, exc: ApiError):
        return error(exc.status, exc.error_type, exc.message, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request, exc: RequestValidationError):
        errors = exc.errors()
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        is_json = content_type == "application/json" or content_type.endswith("+json")
        if not is_json and any(tuple(e["loc"]) == ("body",) for e in errors):
            # FastAPI leaves a body that is not declared JSON unparsed (so a browser form cannot post to
            # the API from another site); say so rather than "Input should be a valid dictionary".
            return error(415, "unsupported_media_type", "send the body as JSON with 'Content-Type: "
                         f"application/json', not {repr(content_type) if content_type else 'no Content-Type'}")
        if any(e["type"] == "too_long" and tuple(e["loc"][:2]) == ("body", "posts") for e in errors):
            return error(413, "too_many_posts", f"a batch holds at most {MAX_BATCH} posts")
        detail = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in errors]
        first = detail[0]
        where = ".".join(str(p) for p in first["loc"])
        return error(422, "validation_error", f"{where}: {first['msg']}", detail)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, exc: StarletteHTTPException):
        if exc.status_code == 400 and exc.__cause__ is not None:
            # FastAPI answers 400 where its JSON parser raises anything but a decode error: bytes that are
            # not UTF-8, nesting too deep, a number of thousands of digits. Malformed JSON is 422 elsewhere.
            cause = exc.__cause__
            why = ("not UTF-8" if isinstance(cause, UnicodeDecodeError) else "nested too deeply"
                   if isinstance(cause, RecursionError) else str(cause).split(";")[0])
            detail = [{"loc": ["body"], "msg": f"JSON decode error: {why}", "type": "json_invalid"}]
            return error(422, "validation_error", f"body: JSON decode error: {why}", detail)
        return error(exc.status_code, "http_error", str(exc.detail))

    app.add_middleware(Observe, settings=settings, metrics=metrics)

    # ---- dependencies ------------------------------------------------------------------------------
    def digest(key: str) -> bytes:
        return hashlib.sha256(key.encode()).digest()

    # Keys are compared as SHA-256 digests: equal lengths, so the time taken says nothing about a key's length.
    scoring_digests = [digest(k) for k in scoring_keys + settings.admin_keys] if scoring_keys else []
    admin_digests = [digest(k) for k in settings.admin_keys]
    limiter = RateLimiter(settings.rate_limit, settings.rate_limit_burst) if settings.rate_limit else None
    app.state.limiter = limiter

    def check_key(request: Request, digests: list[bytes]) -> bytes:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ApiError(401, "unauthorized", "missing API key: send 'Authorization: Bearer KEY'",
                           {"WWW-Authenticate": "Bearer"})
        given = digest(token)
        # Compare with every key so the time taken does not say which one matched.
        matched = False
        for d in digests:
            matched |= hmac.compare_digest(given, d)
        if not matched:
            raise ApiError(403, "forbidden", "API key not accepted")
        return given

    async def require_key(request: Request) -> None:
        client = check_key(request, scoring_digests).hex() if scoring_digests else None
        if limiter:
            # Buckets are keyed by the key's digest, never the key; with no keys set, by client address.
            wait = limiter.acquire(client or (request.client.host if request.client else "unknown"))
            if wait:
                raise ApiError(429, "rate_limited", f"over {settings.rate_limit:g} requests a second for this client; "
                               f"retry in {wait:.2f} s", {"Retry-After": str(math.ceil(wait))})

    async def require_admin(request: Request) -> None:
        if admin_digests:
            check_key(request, admin_digests)
        elif scoring_keys:
            raise ApiError(403, "forbidden", "admin endpoints are off: set TRIAGE_ADMIN_KEYS")

    def ready_predictor() -> Predictor:
        if holder.predictor is None:
            raise ApiError(503, "not_ready", holder.error or "the model is still loading; retry shortly",
                           {"Retry-After": "2"})
        return holder.predictor

    # ---- scoring -------------------------------------------------------------------------------------
    def score_of(post: Post, result: dict, p: Predictor) -> dict:
        score = to_score(post, result, rules, p.version)
        metrics.posts.labels(score["intent"], str(score["urgency"]["level"])).inc()
        return score

    async def score_posts(request: Request, posts: list[Post]) -> tuple[list[dict], Predictor]:
        ready_predictor()
        request.state.posts = len(posts)
        if settings.log_text:
            request.state.texts = [p.text for p in posts]
        results, p = await batcher.submit([post.text for post in posts])
        scored = [score_of(post, r, p) for post, r in zip(posts, results)]
        db.log(posts, scored)
        return scored, p

    v1 = APIRouter(prefix="/v1", dependencies=[Depends(require_key)], responses={429: {"model": Error}})

    @v1.post("/score", response_model=Score, summary="Score one post")
    async def score(post: Post, request: Request):
        return JSONResponse((await score_posts(request, [post]))[0][0])

    @v1.post("/score/batch", response_model=BatchScore, summary=f"Score 1 to {MAX_BATCH} posts, in order")
    async def score_batch(batch: Batch, request: Request):
        results, p = await score_posts(request, batch.posts)
        return JSONResponse({"results": results, "model_version": p.version})

    @v1.get("/info", summary="Model, labels, limits and routing rules", response_model=Info)
    async def info() -> dict:
        p = ready_predictor()
        return {
            "model": {"name": p.meta.get("name"), "version": p.version, "backend": p.backend_name,
                      "created": p.meta.get("created"), "base_model": p.meta.get("base_model")},
            "labels": p.labels, "urgency_levels": URGENCY_NAMES,
            "limits": {"max_text_chars": MAX_TEXT, "max_batch_posts": MAX_BATCH,
                       "max_body_bytes": settings.max_body_bytes, "rate_limit_per_s": settings.rate_limit,
                       "rate_limit_burst": limiter.burst if limiter else None},
            "routing": rules.model_dump(by_alias=True),
        }

    @v1.post("/admin/reload", summary="Load a model folder, check it, and swap it in",
             dependencies=[Depends(require_admin)], response_model=Reloaded, responses={409: {"model": Error}})
    async def reload(body: ReloadRequest | None = None) -> dict:
        path = Path(body.model_dir) if body and body.model_dir else settings.model_dir
        if holder.lock.locked():
            raise ApiError(409, "reload_in_progress", "another reload is running")
        async with holder.lock:
            previous = holder.predictor.version if holder.predictor else None
            try:
                new = await load(path)
            except Exception as e:  # whatever fails in a candidate model, the one in service stays
                log.warning(json.dumps({"event": "reload_refused", "model_dir": str(path), "error": str(e)}))
                raise ApiError(422, "bad_model", f"model not swapped, still serving {previous}: {e}") from e
            serve(new)
            shared = await follower.record(path, new.version)
        log.info(json.dumps({"event": "model_reloaded", "version": new.version, "previous": previous}))
        return {"model_version": new.version, "previous_version": previous, "model_dir": str(path), "shared": shared}

    v1.include_router(feedback.router(db, lambda: ready_predictor().labels, ApiError))
    app.include_router(v1)

    # ---- operations ----------------------------------------------------------------------------------
    @app.get("/health", summary="The process is up", response_model=Health)
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/ready", summary="503 until the model is loaded and warmed up", response_model=Ready)
    async def ready():
        if holder.predictor is None:
            return error(503, "not_ready", holder.error or "model loading")
        return {"status": "ready", "model_version": holder.predictor.version}

    @app.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
