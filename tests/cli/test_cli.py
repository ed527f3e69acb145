"""The real `calfline` command in a subprocess."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import DATA, ROOT

CALFLINE = [sys.executable, "-m", "responder.cli"]


def _run(args: list[str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALFLINE_")}
    return subprocess.run(CALFLINE + args, input=stdin, capture_output=True, text=True,
                          encoding="utf-8", cwd=ROOT, env=env, timeout=120, check=False)


def test_classify_writes_one_json_object_per_line() -> None:
    result = _run(["classify"], "calf cramping bad what do i do\nSTOP\n\nmy calf is swollen\n")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["intent"] for r in rows] == ["cramp_now", "opt_out", "out_of_scope", "red_flag"]
    for row in rows:
        assert set(row) == {"text", "intent", "confidence", "runner_up", "reply"}
        assert 0.0 <= row["confidence"] <= 1.0
    assert rows[1]["reply"] == ""


def test_classify_channel_picks_the_template() -> None:
    sms = json.loads(_run(["classify"], "my car is cramping\n").stdout)
    voice = json.loads(_run(["classify", "--channel", "voice"], "my car is cramping\n").stdout)
    assert sms["intent"] == voice["intent"] == "cramp_now"
    assert sms["reply"] != voice["reply"]


@pytest.mark.parametrize("name", ["dev.tsv", "dev_b.tsv"])
def test_eval_on_the_development_sets(name: str) -> None:
    result = _run(["eval", str(DATA / name), "--json", "--errors"])
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["count"] >= 300
    assert report["accuracy"] >= 0.90
    assert report["red_flag_recall"] == 1.0
    wrong_opt_out = [e for e in report["errors"] if e["predicted"] == "opt_out"]
    assert wrong_opt_out == []
    assert {"precision", "recall", "f1"} <= set(report["per_intent"]["cramp_now"])


def test_eval_prints_a_table() -> None:
    result = _run(["eval", str(DATA / "dev.tsv")])
    assert "accuracy:" in result.stdout and "red_flag recall:" in result.stdout


def test_eval_rejects_a_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("text\tlabel\nhello\tgreeting\n", encoding="utf-8")
    result = _run(["eval", str(bad)])
    assert result.returncode == 2 and "header" in result.stderr


def test_chat_answers_each_line() -> None:
    result = _run(["chat"], "hey there\nmy calf is cramping\n")
    assert result.returncode == 0
    assert "[greeting" in result.stdout and "[cramp_now" in result.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_answers_health_and_sms() -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALFLINE_")}
    server = subprocess.Popen(CALFLINE + ["serve", "--port", str(port)], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, "server did not become healthy"
                time.sleep(0.2)
        request = urllib.request.Request(
            f"{base}/sms", data=b"Body=calf+cramping+mid+run&From=%2B15550001111",
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            root = ET.fromstring(response.read())
        assert root.tag == "Response" and root.find("Message") is not None
    finally:
        server.terminate()
        server.wait(timeout=10)
