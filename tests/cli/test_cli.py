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


def _run(args: list[str], stdin: str = "",
         settings: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALFLINE_")}
    env.update(settings or {})
    return subprocess.run(CALFLINE + args, input=stdin, capture_output=True, text=True,
                          encoding="utf-8", cwd=ROOT, env=env, timeout=120, check=False)


def test_classify_writes_one_json_object_per_line() -> None:
    result = _run(["classify"], "calf cramping bad what do i do\nSTOP\n\nmy calf is swollen\n")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["intent"] for r in rows] == ["cramp_now", "opt_out", "out_of_scope", "red_flag"]
    for row in rows:
        assert set(row) == {"text", "intent", "care", "confidence", "runner_up",
                            "red_flag_probability", "signs", "reply", "language",
                            "detected_language", "language_confidence"}
        assert 0.0 <= row["confidence"] <= 1.0 and 0.0 <= row["red_flag_probability"] <= 1.0
    assert [r["care"] for r in rows] == ["self_care", "none", "none", "urgent"]
    assert rows[3]["signs"] == ["swelling"]
    assert rows[1]["reply"] == ""


def test_classify_marks_a_check_with_the_best_non_urgent_answer() -> None:
    """With every message in the check band, care is "check" and intent a calm answer."""
    env = {"CALFLINE_URGENT_THRESHOLD": "1", "CALFLINE_CHECK_THRESHOLD": "0"}
    row = json.loads(_run(["classify"], "calves tight after my run\n", env).stdout)
    assert row["care"] == "check" and row["intent"] == "post_run_tightness"
    assert row["reply"].startswith("Quick check:")


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
    assert report["false_urgent"] <= 0.03 * report["non_urgent"]
    assert report["checks_asked"] <= 0.10 * report["non_urgent"]
    assert report["accuracy"] > report["baseline"]["accuracy"]
    wrong_opt_out = [e for e in report["errors"] if e["predicted"] == "opt_out"]
    assert wrong_opt_out == []
    assert {"precision", "recall", "f1"} <= set(report["per_intent"]["cramp_now"])


def test_eval_prints_a_table_beside_the_baseline() -> None:
    result = _run(["eval", str(DATA / "dev.tsv")])
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["calfline", "baseline"]
    labels = {row[:20].strip() for row in rows}
    assert {"accuracy", "accuracy sms", "red flags caught", "false urgent",
            "checks asked"} <= labels


def test_eval_reads_a_file_with_a_care_column(tmp_path: Path) -> None:
    table = tmp_path / "care.tsv"
    table.write_text("channel\tintent\tcare\ttext\nsms\tred_flag\turgent\tmy calf is swollen\n"
                     "sms\tcramp_now\tself_care\tcalf cramp rn\n", encoding="utf-8")
    report = json.loads(_run(["eval", str(table), "--json", "--no-baseline"]).stdout)
    assert (report["count"], report["red_flags_caught"], report["accuracy"]) == (2, 1, 1.0)


def test_eval_rejects_a_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("text\tlabel\nhello\tgreeting\n", encoding="utf-8")
    result = _run(["eval", str(bad)])
    assert result.returncode == 2 and "header" in result.stderr


def test_chat_answers_each_line() -> None:
    result = _run(["chat"], "hey there\nmy calf is cramping\n")
    assert result.returncode == 0
    assert "[greeting" in result.stdout and "[cramp_now" in result.stdout


def test_chat_keeps_the_conversation_like_the_webhook() -> None:
    """"more" after an answer is the longer text, as over SMS; STOP silences the rest."""
    from responder.dialogue.replies import render_intent
    from responder.nlu.catalog import load_catalog

    catalog = load_catalog(ROOT / "intents")
    result = _run(["chat"], "should i drink electrolytes to stop cramps\nmore\nSTOP\nhi\n")
    lines = [line for line in result.stdout.splitlines() if line.startswith("calfline>")]
    assert render_intent(catalog, "hydration", "sms", more=True).text in lines[1]
    assert "(no reply: opted out)" in lines[3]


def test_train_stores_the_model_and_knows_when_it_is_fresh(tmp_path: Path) -> None:
    settings = {"CALFLINE_MODEL_PATH": str(tmp_path / "model.npz")}
    first = _run(["train", "--if-stale"], settings=settings)
    assert first.returncode == 0 and "fitted" in first.stdout, first.stderr
    again = _run(["train", "--if-stale"], settings=settings)
    assert "up to date" in again.stdout


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
