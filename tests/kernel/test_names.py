"""Names and versions are matched whole: `$` also matches before a final newline, so a
pattern applied with `re.match(r"^...$")` took "web\\n" as a name. An invalid value is
echoed in the error only as a short prefix with its length (errors.shown)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from dspyops.client import OptimizerClient
from dspyops.errors import InvalidArgument
from dspyops.names import check_alias, check_name, parse_semver
from optimizer_svc.server import OptimizerConfig, start
from tests.support.harness import ServerThread


@pytest.mark.parametrize("value", ["web\n", "web\r\n", "1web\n", "a" * 63 + "\n"])
def test_a_name_with_a_trailing_newline_is_refused(value: str) -> None:
    with pytest.raises(InvalidArgument, match=r"deployment: .* is not a valid name"):
        check_name("deployment", value)
    with pytest.raises(InvalidArgument):
        check_alias("alias", "@" + value)


@pytest.mark.parametrize("value", ["1.0.0\n", "1.0.0\r\n", "01.0.0", "1.0"])
def test_a_version_with_a_trailing_newline_is_refused(value: str) -> None:
    with pytest.raises(InvalidArgument, match="is not a semantic version"):
        parse_semver("version", value)


def test_valid_names_and_versions_still_pass() -> None:
    assert check_name("program", "tickets.v2_a-b") == "tickets.v2_a-b"
    assert check_alias("alias", "@champion") == "champion"
    assert parse_semver("version", "10.0.3") == (10, 0, 3)


def test_an_invalid_value_is_echoed_as_a_short_prefix_with_its_length() -> None:
    long_name = "Web" * 7000  # 21,000 characters
    with pytest.raises(InvalidArgument) as info:
        check_name("deployment", long_name)
    message = str(info.value)
    assert len(message) < 400, message
    assert "21000 characters" in message
    with pytest.raises(InvalidArgument) as info:
        parse_semver("version", "9" * 50_000 + "x")
    assert len(str(info.value)) < 300 and "50001 characters" in str(info.value)


@pytest.fixture(scope="module")
def optimizer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[OptimizerClient, Path]]:
    tmp = tmp_path_factory.mktemp("names")
    server = ServerThread(lambda: start(OptimizerConfig(log=str(tmp / "log.db"), data_dir=tmp / "data")))
    with OptimizerClient(server.address) as client:
        yield client, tmp
    server.stop()


def test_create_deployment_refuses_a_trailing_newline_and_appends_nothing(
    optimizer: tuple[OptimizerClient, Path],
) -> None:
    client, _ = optimizer
    head = client.read_log().head
    for deployment, program in (("web\n", "tickets"), ("web", "tickets\n")):
        with pytest.raises(grpc.RpcError) as info:
            client.create_deployment(deployment, program)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        field = "deployment" if deployment != "web" else "program"
        assert info.value.details().startswith(f"{field}: "), info.value.details()
    assert client.read_log().head == head
