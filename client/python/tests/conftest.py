"""Starts the real convserve-server once per test session on a free loopback port."""

import contextlib
import os
import pathlib
import re
import signal
import subprocess
import tempfile
import time

import pytest

import convserve

REPO = pathlib.Path(__file__).resolve().parents[3]


def pytest_configure(config):
    # installed_test.sh sets this: the tests must exercise the installed
    # package, never the source tree next to them.
    prefix = os.environ.get("CONVSERVE_INSTALLED_PREFIX")
    module = pathlib.Path(convserve.__file__).resolve()
    if prefix and pathlib.Path(prefix).resolve() not in module.parents:
        raise pytest.UsageError(f"convserve was imported from {module}, "
                                f"not from the package installed in {prefix}")


def pytest_report_header(config):
    return f"convserve {convserve.__version__} from {pathlib.Path(convserve.__file__).parent}"


def _server_binary():
    path = os.environ.get("CONVSERVE_SERVER_BIN") or str(REPO / "build" / "bin" / "convserve-server")
    if not os.access(path, os.X_OK):
        # A missing server is a failure, never a skip: these tests exist to run.
        pytest.fail(f"convserve-server not found at {path}; build it or set CONVSERVE_SERVER_BIN")
    return path


@contextlib.contextmanager
def running_server(*flags, **client_options):
    """Runs convserve-server with `flags` on a free loopback port until it is
    SERVING (asked through a client made with `client_options`); yields its
    address and stops it with SIGTERM afterwards."""
    binary = _server_binary()
    log_file = tempfile.NamedTemporaryFile(prefix="convserve-server-", suffix=".log", delete=False)
    process = subprocess.Popen([binary, "--address", "127.0.0.1:0", *flags], stdout=log_file,
                               stderr=subprocess.STDOUT)
    log_path = log_file.name

    def log_text():
        with open(log_path, errors="replace") as f:
            return f.read()

    try:
        port = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            match = re.search(r"\(port (\d+)\)", log_text())
            if match:
                port = int(match.group(1))
                break
            if process.poll() is not None:
                break
            time.sleep(0.1)
        if port is None:
            pytest.fail(f"convserve-server did not start:\n{log_text()}")
        address = f"127.0.0.1:{port}"
        # Wait for the warm-up convolution: health turns SERVING after it.
        with convserve.Client(address, timeout=5, **client_options) as client:
            while True:
                try:
                    if client.health() == "SERVING":
                        break
                except convserve.ConvServeError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"convserve-server never became SERVING:\n{log_text()}")
                time.sleep(0.1)
        yield address
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log_file.close()
        os.unlink(log_path)


@pytest.fixture(scope="session")
def server_address():
    with running_server() as address:
        yield address


@pytest.fixture(scope="session")
def client(server_address):
    with convserve.Client(server_address, timeout=60) as c:
        yield c
