"""Bad input at the edges: the CLI answers it with one line on stderr and a non-zero exit, never a traceback;
page tokens are checked before they are sent and pagination stops on a repeated or endless cursor.

The CLI cases run `python -m pipelines.cli` as a user would (all at once, to keep the module fast). The token
properties are hypothesis tests over the client's pure helpers and the emulator's token codec.
"""

import contextlib
import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.bird.client import _Call, _page_token_param, _Pager
from pipelines.bird.errors import InvalidRequestError, PaginationError
from pipelines.bird.query import MAX_PAGE_TOKEN_CHARS
from pipelines.emulator.query import decode_page_token, encode_page_token

REPO = Path(__file__).resolve().parents[1]
WORKSPACE = "c1dc7efa-34ae-49b6-bb61-eccf360f1ee9"


@dataclass(frozen=True)
class BadInput:
    """One way to call the CLI wrongly, and a word its one-line answer must contain."""

    name: str
    args: list[str]
    says: str
    env: dict[str, str] = field(default_factory=dict)
    read_only_data_dir: bool = False


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


BIRD_ENV = {"BIRD_ACCESS_KEY": "some-key", "BIRD_WORKSPACE_ID": WORKSPACE}
ONE_DAY = ["backfill", "--start", "2026-01-13", "--end", "2026-01-13"]
CASES = [
    BadInput("month 13", ["backfill", "--start", "2026-13-01", "--end", "2026-01-02"], "not a date"),
    BadInput("not a date", ["backfill", "--start", "yesterday", "--end", "2026-01-02"], "not a date"),
    BadInput("end before start", ["backfill", "--start", "2026-01-05", "--end", "2026-01-01"], "before"),
    BadInput("missing --end", ["backfill", "--start", "2026-01-05"], "--end"),
    BadInput("unknown option", [*ONE_DAY, "--bogus"], "--bogus"),
    BadInput("unknown command", ["backfil"], "backfil"),
    BadInput("concurrency 0", [*ONE_DAY, "--concurrency", "0"], "--concurrency"),
    BadInput("report range reversed", ["report", "--start", "2026-01-05", "--end", "2026-01-01"], "before"),
    BadInput("missing access key", ONE_DAY, "BIRD_ACCESS_KEY", env={"BIRD_WORKSPACE_ID": WORKSPACE}),
    BadInput(
        "workspace not a uuid", ONE_DAY, "workspace", env={**BIRD_ENV, "BIRD_WORKSPACE_ID": "my-workspace"}
    ),
    BadInput("API URL not http", ONE_DAY, "api_url", env={**BIRD_ENV, "BIRD_API_URL": "ftp://bird.example"}),
    BadInput(
        "rate limit not a number",
        ONE_DAY,
        "BIRD_RATE_LIMIT_PER_S",
        env={
            **BIRD_ENV,
            "BIRD_RATE_LIMIT_PER_S": "fast",
            "BIRD_API_URL": f"http://127.0.0.1:{_closed_port()}",
        },
    ),
    BadInput("sql on a missing warehouse", ["sql", "select 1 from messages"], "warehouse"),
    BadInput("read-only data directory", ONE_DAY, "data", env=BIRD_ENV, read_only_data_dir=True),
]


def _unwritable(path: Path) -> Path:
    """A directory this user cannot write in: mode 555; root writes anywhere, so for root one in sysfs."""
    if os.geteuid() == 0:
        return Path("/sys/bird-etl-data")
    path.mkdir()
    path.chmod(0o555)
    return path


@dataclass(frozen=True)
class Answer:
    returncode: int
    stderr: str


# Imports the CLI once, then forks one child per case: each child is a fresh `bird-etl` process in all that
# matters (its own environment, argv, stderr file and exit status) without paying the imports again.
DRIVER = """
import json, os, sys, traceback
from pipelines.cli import main

children = []
for case in json.loads(sys.argv[1]):
    pid = os.fork()
    if pid == 0:
        os.dup2(os.open(case["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 2)
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        os.environ.clear()
        os.environ.update(case["env"])
        sys.argv = ["bird-etl", *case["args"]]
        try:
            main()
            status = 0
        except SystemExit as exit:
            status = exit.code if isinstance(exit.code, int) else 1
        except BaseException:
            traceback.print_exc()  # what the interpreter prints for an uncaught exception
            status = 1
        raise SystemExit(status)  # and shut down as a CLI process does
    children.append(pid)
print(json.dumps([os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children]))
"""


@pytest.fixture(scope="module")
def answers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Answer]:
    """Every case's answer, from one driver process that forks a CLI process per case."""
    root = tmp_path_factory.mktemp("cli")
    base_env = {key: value for key, value in os.environ.items() if not key.startswith(("BIRD_", "DAGSTER_"))}
    runs = []
    for i, case in enumerate(CASES):
        data_dir = _unwritable(root / f"data-{i}") if case.read_only_data_dir else root / f"data-{i}"
        runs.append(
            {
                "args": ["--data-dir", str(data_dir), *case.args],
                "env": {**base_env, **case.env},
                "stderr": str(root / f"stderr-{i}.txt"),
            }
        )
    driver = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(runs)],
        env={**base_env, "PYTHONPATH": str(REPO)},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    codes = json.loads(driver.stdout.strip().splitlines()[-1])
    return {
        case.name: Answer(code, Path(run["stderr"]).read_text())
        for case, run, code in zip(CASES, runs, codes, strict=True)
    }


# Gaps the CLI (pipelines/cli.py, owned by the lead) still has; each mark goes with its fix.
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_gets_one_line_and_a_non_zero_exit(case: BadInput, answers: dict[str, Answer]) -> None:
    answer = answers[case.name]
    lines = [line for line in answer.stderr.splitlines() if line.strip()]
    assert answer.returncode != 0, answer.stderr
    assert "Traceback" not in answer.stderr, answer.stderr
    assert len(lines) == 1, answer.stderr
    assert case.says.lower() in lines[0].lower(), lines[0]


# -- page tokens ---------------------------------------------------------------------------------------------


@settings(max_examples=30)
@given(st.text(min_size=1, max_size=MAX_PAGE_TOKEN_CHARS))
def test_a_token_within_birds_limit_is_sent_as_it_came(token: str) -> None:
    assert _page_token_param(token) == [("pageToken", token)]


@settings(max_examples=10)
@given(st.one_of(st.just(""), st.text(min_size=MAX_PAGE_TOKEN_CHARS + 1, max_size=MAX_PAGE_TOKEN_CHARS + 50)))
def test_an_empty_or_oversized_token_is_refused_before_sending(token: str) -> None:
    with pytest.raises(InvalidRequestError):
        _page_token_param(token)
    assert _page_token_param(None) == []


@dataclass(frozen=True)
class _Page:
    next_page_token: str | None


@given(st.lists(st.text(min_size=1, max_size=3), max_size=30), st.one_of(st.none(), st.integers(1, 40)))
def test_paging_asks_each_token_once_and_stops_on_a_repeat_or_the_cap(
    tokens: list[str], max_pages: int | None
) -> None:
    """Served `tokens`, then the end: each token is asked for once, and no more than max_pages pages."""

    def call_for(token: str | None) -> _Call[_Page]:
        return _Call("/workspaces/w/channels/messages", _page_token_param(token), lambda _body: _Page(None))

    pager = _Pager(call_for, max_pages)
    asked = [dict(pager.first().params).get("pageToken")]
    try:
        for token in [*tokens, None]:
            call = pager.next(_Page(token))
            if call is None:
                break
            asked.append(dict(call.params)["pageToken"])
    except PaginationError:
        refused = tokens[len(asked) - 1]
        assert refused in asked or len(asked) == max_pages
    else:
        assert asked == [None, *tokens]
    assert len(set(asked)) == len(asked)
    assert max_pages is None or len(asked) <= max_pages


@given(st.integers(0, 2**53), st.uuids())
def test_the_emulator_cursor_round_trips(created_ms: int, message_id: object) -> None:
    key = (created_ms, str(message_id))
    assert decode_page_token(encode_page_token(key)) == key


@given(st.text(max_size=200))
def test_any_other_token_is_a_value_error_never_a_crash(token: str) -> None:
    with contextlib.suppress(ValueError):
        decode_page_token(token)
