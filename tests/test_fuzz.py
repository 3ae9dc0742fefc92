"""Generated bad input: schemathesis reads the service's own OpenAPI schema and sends 1,000 requests per
endpoint, valid and invalid, to the app in-process with a real (scikit-learn) model. No answer may be a
5xx, and every answer must match the schema: status code, content type, body."""

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import checks
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode

from model import Predictor
from service.app import create_app
from service.settings import Settings

pytestmark = pytest.mark.slow

REQUESTS_PER_ENDPOINT = 1000
# Every operation in the schema; a new endpoint fails `test_every_endpoint_is_fuzzed` until it is listed here.
OPERATIONS = [("POST", "/v1/score"), ("POST", "/v1/score/batch"), ("POST", "/v1/admin/reload"),
              ("GET", "/v1/info"), ("GET", "/health"), ("GET", "/ready"), ("POST", "/v1/feedback"),
              ("GET", "/v1/stats")]
# A batch over 512 posts is 413 (documented), not one of schemathesis's default rejection codes.
CONFIG = {"checks": {"negative_data_rejection": {"expected-statuses": [
    "400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]}}}


@pytest.fixture(scope="module")
def predictor(sklearn_model):
    return Predictor.from_pretrained(sklearn_model)


@pytest.fixture
def schema(predictor, tmp_path, monkeypatch):
    # A new app per test: schemathesis ends the app's lifespan when a test ends. model_dir is an empty
    # folder, so a reload that names no folder is refused (422). Hypothesis also tries string constants from our
    # code, "models/default" among them: run from the empty folder, so that it is refused too rather than
    # loading the real model, which took more than the client's 10 s on a slow CPU (tests/test_faults.py
    # reloads real folders).
    monkeypatch.chdir(tmp_path)
    app = create_app(Settings(model_dir=tmp_path), predictor=predictor)
    return schemathesis.openapi.from_asgi("/openapi.json", app, config=SchemathesisConfig.from_dict(CONFIG))


def test_every_endpoint_is_fuzzed(schema):
    found = {(op.method.upper(), op.path) for op in (r.ok() for r in schema.get_all_operations())}
    assert found == set(OPERATIONS)


# What the schema does not describe, so the generator would not vary it: unknown query parameters and
# odd request ids (the one header the service reads besides the key). It also gives the GET endpoints,
# which take no input, distinct requests to send.
extras = st.tuples(
    st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=16), max_size=3),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\r\n"), max_size=200)
    .map(str.lstrip))  # an HTTP header value starts with a visible character


@pytest.mark.parametrize("method,path", OPERATIONS)
def test_generated_requests(schema, method, path, capsys):
    operation = schema[path][method]
    cases = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(GenerationMode.NEGATIVE)
    # The generator cannot know which folders hold a model, nor the serving model's intents (they change with
    # a reload, so the schema cannot list them): such schema-valid requests are still 422.
    excluded = [checks.positive_data_acceptance] if path in ("/v1/admin/reload", "/v1/feedback") else []
    statuses: Counter = Counter()
    modes: Counter = Counter()

    @settings(max_examples=REQUESTS_PER_ENDPOINT, deadline=None, database=None, phases=[Phase.generate, Phase.shrink],
              suppress_health_check=list(HealthCheck))
    @given(case=cases, extra=extras)
    def run(case, extra):
        query, request_id = extra
        case.query = {**(case.query or {}), **query}
        case.headers = {**(case.headers or {}), "x-request-id": request_id}
        response = case.call()
        statuses[response.status_code] += 1
        modes[case.meta.generation.mode.value if case.meta else "explicit"] += 1
        case.validate_response(response, excluded_checks=excluded)

    run()
    sent = sum(statuses.values())
    with capsys.disabled():
        print(f"\nfuzz {method} {path}: {sent} requests ({dict(modes)}), statuses {dict(sorted(statuses.items()))}")
    assert sent >= REQUESTS_PER_ENDPOINT
    assert not [s for s in statuses if s >= 500]
