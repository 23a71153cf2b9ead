from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.fake_openai import FakeOpenAI

# No test may reach a provider: litellm must not look anything up on the network either.
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

# Every fake provider listens on loopback: a proxy configured on the machine (honoured by both provider
# paths) must not stand between the tests and them.
for _variable in ("NO_PROXY", "no_proxy"):
    os.environ[_variable] = ",".join(filter(None, [os.environ.get(_variable), "127.0.0.1", "localhost"]))

# The embedded models' joined weights (1.6 GB) stay where a user's would be, outside the per-test data
# directories below: joined and verified once per machine, not once per test.
if "CHORUS_MODELS_DIR" not in os.environ:
    import platformdirs

    os.environ["CHORUS_MODELS_DIR"] = os.path.join(platformdirs.user_data_dir("chorus-mcp"), "models")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True, scope="session")
def _private_data_directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Sessions are kept in the user's data directory by default (SQLite): during tests — and in the
    servers they start, which inherit the environment — that is a temporary directory instead."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))
        yield


@pytest.fixture(autouse=True)
def _private_data_directory_per_test(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """And a fresh one for each test: the response cache (on by default, SQLite in that directory) must
    not answer a test with what an earlier test was told. Servers a module shares were started with
    the session's directory and keep it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data-test")))
        yield


@pytest.fixture(scope="session")
def _fake_openai_server() -> Iterator[FakeOpenAI]:
    from tests.fake_openai import FakeOpenAI

    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def fake_openai(_fake_openai_server: FakeOpenAI) -> FakeOpenAI:
    """A fake OpenAI-compatible server on loopback (see tests/fake_openai.py), reset for this test.

    One server serves the whole session (starting uvicorn costs ~0.2 s); scripts, one-shot faults
    and recorded requests are cleared before every test.
    """
    _fake_openai_server.reset()
    return _fake_openai_server
