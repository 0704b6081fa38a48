"""The ports of ``make run``: read from the environment, refused with a message naming the variable, held."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tradingsite.ports import PortError, hold_port, port_setting


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port on 127.0.0.1 that another server listens on for the test's duration."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        yield s.getsockname()[1]


@pytest.mark.parametrize(("raw", "expected"), [(None, 8000), ("", 8000), (" 8123 ", 8123), ("65535", 65535)])
def test_port_setting_reads_the_variable_or_the_default(raw: str | None, expected: int) -> None:
    """An unset or empty variable gives the default; a port number is taken as it is."""
    environ = {} if raw is None else {"PORT": raw}
    assert port_setting(environ, "PORT", 8000) == expected


@pytest.mark.parametrize("raw", ["abc", "80.5", "0", "-1", "65536", "8000s"])
def test_port_setting_refuses_what_is_no_port(raw: str) -> None:
    """A value that is not a port from 1 to 65535 is refused, naming the variable, the value and what is expected."""
    with pytest.raises(PortError) as caught:
        port_setting({"SIM_PORT": raw}, "SIM_PORT", 9900)
    assert f"SIM_PORT={raw!r}" in str(caught.value)
    assert "1 to 65535" in str(caught.value)


def test_a_held_port_is_taken_for_everyone_else_until_released(busy_port: int) -> None:
    """A taken port is refused with whose it is, which variable moves it and a free port to try. A port held by
    ``hold_port`` is taken for a second holder too, while a client's connection is refused at once (not left
    waiting); once released it is free again."""
    with pytest.raises(PortError) as caught:
        hold_port("127.0.0.1", busy_port, what="the site's", variable="PORT", retry="make run")
    message = str(caught.value)
    assert f"the site's port {busy_port} on 127.0.0.1 is in use" in message
    suggested = int(message.rsplit("PORT=", 1)[1].split()[0])
    assert message.endswith(f"run PORT={suggested} make run")
    assert suggested > busy_port

    with hold_port("127.0.0.1", suggested, what="the site's", variable="PORT", retry="make run"):
        with pytest.raises(PortError, match=f"port {suggested} on 127.0.0.1 is in use"):
            hold_port("127.0.0.1", suggested, what="the site's", variable="PORT", retry="make run")
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", suggested), timeout=5)
    hold_port("127.0.0.1", suggested, what="the site's", variable="PORT", retry="make run").release()


def test_a_host_that_is_not_this_machine_is_named() -> None:
    """A WEB_HOST that does not resolve, or is no address of this machine, is refused naming WEB_HOST."""
    for host in ("no-such-host.invalid", "192.0.2.1"):  # 192.0.2.0/24: TEST-NET-1, never a local address
        with pytest.raises(PortError, match="WEB_HOST"):
            hold_port(host, 8000, what="the site's", variable="PORT", retry="make run")
