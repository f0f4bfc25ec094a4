"""The emulator publishes an OpenAPI document of what it serves, and keeps to it under contract fuzzing.

schemathesis generates requests from `GET /openapi.json` and sends them to a live emulator on loopback;
no answer may be a 5xx, carry an undocumented status or content type, or stray from the response schemas.
Generated workspace, channel and message ids are mostly pointed at real ones, so the fuzzing reaches the
200 paths and not only the 404s.
"""

import uuid
from collections.abc import Iterator

import httpx
import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from pipelines.emulator.openapi import openapi_document
from pipelines.emulator.server import RunningEmulator, run_emulator
from pipelines.emulator.store import MessageStore
from tests.conftest import EMULATOR_NOW, EMULATOR_SPEC

EXAMPLES_PER_OPERATION = 40
CONTRACT_CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
def fuzzed_emulator() -> Iterator[RunningEmulator]:
    """Its own emulator: the fuzzing sends messages, which changes the store."""
    with run_emulator(store=MessageStore.generate(EMULATOR_SPEC, now=EMULATOR_NOW)) as running:
        yield running


# The document does not depend on the emulator's data, only on where it is served: requests go to the live
# emulator through `base_url`, and the first test checks that it serves this very document.
schema = schemathesis.openapi.from_dict(openapi_document("http://127.0.0.1"))


def test_the_document_is_public_and_names_every_api_route(fuzzed_emulator: RunningEmulator) -> None:
    document = httpx.get(f"{fuzzed_emulator.base_url}/openapi.json").json()
    assert document == openapi_document(fuzzed_emulator.base_url)
    assert document["openapi"].startswith("3.")
    assert document["servers"] == [{"url": fuzzed_emulator.base_url}]
    operations = {(method, path) for path, item in document["paths"].items() for method in item}
    assert len(operations) == 8
    assert not any("_emulator" in path for _, path in operations)


def _aim_at_real_resources(case: schemathesis.Case, emulator: RunningEmulator) -> None:
    """Real workspace id always; a real channel (and one of its messages) for most generated ids."""
    params = case.path_parameters
    params["workspaceId"] = emulator.workspace_id
    if "channelId" not in params:
        return
    channels = sorted(c["id"] for c in emulator.store.channels())
    pick = _index(params["channelId"], len(channels) + 1)
    if pick == len(channels):
        return  # keep the generated id: an unknown channel
    params["channelId"] = channels[pick]
    if "messageId" in params and _index(params["messageId"], 3):
        page = emulator.store.page(
            channel_id=channels[pick],
            start_ms=None,
            end_ms=None,
            after=None,
            oldest_first=False,
            limit=1,
            keep=(),
        )
        params["messageId"] = orjson.loads(page.items[0])["id"]


def _index(value: str, size: int) -> int:
    """A pick in range(size) drawn from a generated id; a malformed one (negative cases) picks the last."""
    try:
        return uuid.UUID(value).int % size
    except ValueError:
        return size - 1


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck))
def test_fuzzed_requests_get_documented_answers(
    case: schemathesis.Case, fuzzed_emulator: RunningEmulator
) -> None:
    _aim_at_real_resources(case, fuzzed_emulator)
    case.call_and_validate(
        base_url=fuzzed_emulator.base_url, headers=fuzzed_emulator.headers, checks=CONTRACT_CHECKS
    )
