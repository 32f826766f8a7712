"""Starts the emulator binary (path in ODPS_EMULATOR_BIN) for the suite."""

import os
import shutil
import subprocess
import tempfile

import pytest
from odps import ODPS

ACCESS_ID = "emulator-test-id"
ACCESS_KEY = "emulator-test-secret"


class Emulator:
    """A running emulator process."""

    def __init__(self, *extra_args, data_dir=None):
        binary = os.environ.get("ODPS_EMULATOR_BIN")
        if not binary or not os.access(binary, os.X_OK):
            raise RuntimeError(
                "set ODPS_EMULATOR_BIN to the odps-emulator binary "
                "(scripts/pyodps-tests does this for you)"
            )
        self.owns_data = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="odps-emulator-pytest-")
        self.log_path = os.path.join(self.data_dir, "emulator.log")
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [binary, "--data", self.data_dir, "--port", "0",
             "--access-id", ACCESS_ID, "--access-key", ACCESS_KEY, *extra_args],
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        line = self.proc.stdout.readline()
        if "endpoint" not in line:
            self.stop()
            raise RuntimeError(f"emulator did not start: {line!r}")
        # "odps-emulator listening: endpoint http://127.0.0.1:P/api tunnel http://127.0.0.1:P"
        words = line.split()
        self.endpoint = words[words.index("endpoint") + 1]
        self.tunnel_endpoint = words[words.index("tunnel") + 1]

    def client(self, project="pytest_proj", access_key=ACCESS_KEY, access_id=ACCESS_ID):
        return ODPS(access_id, access_key, project=project, endpoint=self.endpoint)

    def log_text(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self, keep_data=False):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        if os.environ.get("ODPS_EMULATOR_LOG"):
            print(self.log_text())
        if self.owns_data and not keep_data:
            shutil.rmtree(self.data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def emulator():
    emu = Emulator()
    yield emu
    emu.stop()


@pytest.fixture()
def odps(emulator):
    return emulator.client()
