"""Fixtures of the tracker tests."""

from __future__ import annotations

import socket

import pytest


@pytest.fixture
def silent_server():
    """A real server socket that accepts connections (the kernel does) and never answers:
    an MLflow server that hangs, or one a crafted folder names."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.5)
    yield server
    server.close()
