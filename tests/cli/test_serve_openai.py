"""`sinklab serve` against clients nobody here wrote: the official `openai` npm
package, and the chat page in Debian's chromium driven by playwright-core
(tests/serve_client, pinned by its package-lock.json, installed from the npm
registry into the build folder on first use)."""
import os
import pathlib
import shutil
import subprocess

import pytest

import cli_util
from serve_util import Server

CLIENT = cli_util.SOURCE / "tests" / "serve_client"


def client_folder():
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        if os.environ.get("CI"):
            pytest.fail("node and npm are needed (scripts/setup.sh installs them)")
        pytest.skip("node/npm not installed (scripts/setup.sh installs them)")
    folder = pathlib.Path(cli_util.binary()).resolve().parents[1] / "serve-client"
    folder.mkdir(exist_ok=True)
    for name in ("package.json", "package-lock.json", "openai_sdk_check.mjs", "chat_page_check.mjs"):
        shutil.copyfile(CLIENT / name, folder / name)
    if not all((folder / "node_modules" / pkg / "package.json").exists() for pkg in ("openai", "playwright-core")):
        r = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=folder,
                           capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            message = "npm ci of the openai client failed: " + r.stderr[-2000:]
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message + " (no npm registry?)")
    return folder


def test_openai_sdk_against_serve():
    folder = client_folder()
    with Server("--api-key", "sk-test-key", "--parallel", "2") as s:
        r = subprocess.run(["node", "openai_sdk_check.mjs", s.url + "/v1", "sk-test-key"], cwd=folder,
                           capture_output=True, text=True, timeout=240)
        print(r.stdout)
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout.count("ok   ") == 7


CHROMIUM = os.environ.get("SINKLAB_CHROMIUM", "/usr/bin/chromium")


@pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK), reason=f"chromium is not installed at {CHROMIUM}")
def test_chat_page_streams_and_shows_the_cache(tmp_path):
    folder = client_folder()
    with Server("--parallel", "1") as s:
        shot = tmp_path / "page.png"
        r = subprocess.run(["node", "chat_page_check.mjs", s.url, str(shot)], cwd=folder,
                           capture_output=True, text=True, timeout=240)
        print(r.stdout)
        assert r.returncode == 0, r.stdout + r.stderr
        assert shot.stat().st_size > 10000
