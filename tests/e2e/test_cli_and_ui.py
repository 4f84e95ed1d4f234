"""The README's main-job command path as a subprocess, then the Dagster web UI over the same instance."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from support.services import free_port, loopback_service
from support.tools import require_tool

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# The default scale (what `make run` uses): at tiny scale the network need not beat the logistic-regression
# baseline, and the promotion gate rightly keeps it out. On this day it wins (macro-F1 0.963 vs 0.942).
DAY = "2026-06-01"


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    env = {
        **os.environ,
        "ASTROMINED_STATE_DIR": str(root / "state"),
        "ASTROMINED_SCALE": "default",
    }
    env.pop("DAGSTER_HOME", None)
    env.pop("ASTROMINED_ENV", None)
    return root, env


def astromined(env, *args, check=True):
    result = subprocess.run(
        [str(BIN / "astromined"), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def first_run(state):
    _root, env = state
    return astromined(env, "run", "--partition", DAY)


def test_run_prints_the_summary(first_run):
    out = first_run.stdout
    assert f"partition {DAY}: SUCCESS" in out
    for line_start in (
        "telemetry ",
        "features ",
        "training ",
        "candidate ",
        "holdout ",
        "champion ",
        "uplink ",
    ):
        assert f"\n{line_start}" in out, f"summary lacks the {line_start.strip()} line:\n{out}"
    assert "500 files" in out
    # One day in the lake, within the look-row budget: the candidate trains on one row per observation,
    # self-trains on the day's unlabelled asteroids and is refit on the validation rows too (at most as
    # many pseudo-labelled rows as the train looks and validation rows).
    [(validation, pseudo)] = re.findall(
        r"train rows \(per look\) \+ (\d+) validation \+ (\d+) pseudo-labelled, ", out
    )
    looks = int(re.search(r"(\d+) train rows \(per look\)", out).group(1))
    assert int(validation) == int(re.search(r"validation (\d+) / holdout", out).group(1))
    assert 0 < int(pseudo) <= looks + int(validation)


def test_run_is_idempotent_and_registry_commands_work(state, first_run):
    _root, env = state
    second = astromined(env, "run", "--partition", DAY)
    assert "already the champion" in second.stdout

    listing = astromined(env, "model", "list").stdout
    versions = [line.split()[1] for line in listing.splitlines() if line.startswith(("*", " "))]
    assert len(versions) == 1 and listing.startswith("* ")

    verified = astromined(env, "model", "verify-package")
    assert f"package for {versions[0]} verifies" in verified.stdout

    refused = astromined(env, "model", "rollback", "m-doesnotexist", check=False)
    assert refused.returncode == 1
    assert "m-doesnotexist" in refused.stderr and "not in the registry" in refused.stderr

    rolled = astromined(env, "model", "rollback", versions[0], "--reason", "e2e test")
    assert f"champion is now {versions[0]}" in rolled.stdout


def test_run_stale_reruns_only_what_a_model_code_change_affects(state, first_run, tmp_path):
    """`astromined run --stale`: nothing to do when nothing changed; after an edit to the model code, the
    model assets and what depends on them run, the day's telemetry and features are reused."""
    _root, env = state
    unchanged = astromined(env, "run", "--partition", DAY, "--stale")
    assert "nothing to do: every asset of downlink_to_uplink is up to date" in unchanged.stdout

    # The same code with one line added to the model module, run from a copy of the project (its root
    # first on sys.path: `astromined` from the copy, not from this checkout's editable install).
    copy = tmp_path / "project"
    shutil.copytree(
        REPO, copy, ignore=shutil.ignore_patterns(".state", ".venv", ".git", "__pycache__", "tests")
    )
    model = copy / "astromined" / "ml" / "model.py"
    model.write_text(model.read_text() + "\n# an edit to the model code\n")
    edited = subprocess.run(
        [sys.executable, "-m", "astromined.cli", "run", "--partition", DAY, "--stale"],
        cwd=copy,
        env={**env, "PYTHONPATH": str(copy)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert edited.returncode == 0, edited.stdout[-3000:] + edited.stderr[-3000:]
    out = edited.stdout
    assert "candidate_model stale: candidate_model: has a new code version" in out
    selected = next(line for line in out.splitlines() if line.startswith("materializing "))
    assert "candidate_model" in selected and "uplink_package" in selected
    assert "raw_telemetry" not in selected and "asteroid_features" not in selected
    assert f"partition {DAY}: SUCCESS" in out
    assert "\ncandidate " in out and "\nuplink " in out
    assert "\ntelemetry " not in out  # not re-ingested


@pytest.fixture(scope="module")
def webserver(state, first_run):
    root, env = state
    home = root / "state" / "dagster_home"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [str(BIN / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]
    with loopback_service(
        command,
        f"{url}/server_info",
        root / "dagster-webserver.log",
        timeout_s=120,
        env={**env, "DAGSTER_HOME": str(home)},
        cwd=REPO,
        stop_signal=signal.SIGINT,
    ):
        yield url


def _graphql(url: str, query: str) -> dict:
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())["data"]


def test_web_ui_serves_the_graph_and_the_run(webserver):
    data = _graphql(webserver, "{ assetNodes { assetKey { path } groupName } }")
    groups = {node["assetKey"]["path"][-1]: node["groupName"] for node in data["assetNodes"]}
    assert groups["raw_telemetry"] == "telemetry" and groups["uplink_package"] == "uplink"
    runs = _graphql(
        webserver, "{ runsOrError { ... on Runs { results { jobName status tags { key value } } } } }"
    )
    main_runs = [r for r in runs["runsOrError"]["results"] if r["jobName"] == "downlink_to_uplink"]
    assert main_runs and all(r["status"] == "SUCCESS" for r in main_runs)
    assert any({"key": "dagster/partition", "value": DAY} in r["tags"] for r in main_runs)


def test_asset_catalog_renders_in_headless_chromium(webserver, tmp_path):
    chromium = require_tool("chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{webserver}/assets", wait_until="domcontentloaded")
            page.get_by_text("raw_telemetry").first.wait_for(timeout=60_000)
            page.get_by_text("uplink_package").first.wait_for(timeout=60_000)
            page.goto(f"{webserver}/assets/raw_telemetry", wait_until="domcontentloaded")
            page.get_by_text(DAY).first.wait_for(timeout=60_000)
            page.screenshot(path=str(tmp_path / "raw_telemetry.png"))
        finally:
            browser.close()
    assert (tmp_path / "raw_telemetry.png").stat().st_size > 10_000
