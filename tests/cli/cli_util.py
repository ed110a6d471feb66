"""Shared helpers of the CLI tests: where the binary and the assets are, running
the binary, and the one-clear-error-line check."""
import os
import pathlib
import subprocess

import pytest

SOURCE = pathlib.Path(__file__).resolve().parents[2]
ASSETS = pathlib.Path(os.environ.get("SINKLAB_ASSETS", SOURCE.parent / "shared" / "assets"))
MODEL = ASSETS / "models" / "stories260K" / "stories260K.bin"


def binary():
    path = os.environ.get("SINKLAB_BIN")
    if not path:
        for build in sorted(SOURCE.glob("build*/bin/sinklab")):
            path = str(build)
            break
    if not path or not pathlib.Path(path).exists():
        pytest.skip("the sinklab binary was not found (set SINKLAB_BIN)")
    return path


def run(*args, timeout=120):
    return subprocess.run([binary(), *map(str, args)], capture_output=True, text=True, timeout=timeout)


def assert_one_clear_error(result, *words):
    assert result.returncode not in (0, -6, -11), result  # an error exit, not a signal
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("sinklab: error: "), lines[0]
    for w in words:
        assert w in lines[0], lines[0]
    for bad in ("Traceback", "terminate called", "Segmentation", "Aborted"):
        assert bad not in result.stderr
