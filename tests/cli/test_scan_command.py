"""``m2fp scan`` as a command: lines or JSON, the exit code, the alert webhook and its rule."""

from __future__ import annotations

import json

from m2fp.cli import run
from m2fp.server.app import create_app
from tests.scan import weak_servers
from tests.server.conftest import tiny_settings
from tests.utils.webhook_receiver import WebhookReceiver


def app(tiny_parser):
    return create_app(tiny_settings(rate_limit="1000/minute"), parser=tiny_parser)


def test_failures_exit_1_and_post_a_summary(tiny_parser, capsys):
    with (
        weak_servers.weakened_server(app(tiny_parser), weak_servers.open_cors) as url,
        WebhookReceiver() as hook,
    ):
        code = run(["scan", url, "--checks", "cors,trailing_slash", "--alert-webhook", hook.url])
    out = capsys.readouterr().out.splitlines()
    assert code == 1
    assert [line.split(":")[0] for line in out] == ["FAIL cors", "PASS trailing_slash"]
    (post,) = hook.posts
    assert post["text"].startswith(f"m2fp scan of {url}: 1 of 2 failed")
    assert "cors" in post["text"] and "secret-token" not in "".join(out)


def test_json_report_and_exit_0_when_all_pass(tiny_parser, capsys):
    with (
        weak_servers.weakened_server(app(tiny_parser), lambda a: a) as url,
        WebhookReceiver() as hook,
    ):
        code = run(["scan", url, "--json", "--checks", "cors", "--alert-webhook", hook.url])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["passed"] is True and report["failures"] == 0
    assert report["results"][0]["name"] == "cors"
    assert hook.posts == []  # nothing to report


def test_webhook_must_be_https_or_loopback(capsys):
    code = run(["scan", "https://m2fp.invalid", "--alert-webhook", "http://hooks.example/t0k3n"])
    err = capsys.readouterr().err
    assert code == 2 and "https" in err and "t0k3n" not in err


def test_unknown_check_and_bad_url_are_usage_errors(capsys):
    assert run(["scan", "ftp://m2fp.invalid"]) == 2
    assert run(["scan", "https://m2fp.invalid", "--checks", "nope"]) == 2
    assert "unknown check" in capsys.readouterr().err


def test_webhook_from_its_mounted_file(tiny_parser, capsys, monkeypatch, tmp_path):
    """The scan CronJob mounts the webhook as a file (M2FP_ALERT_WEBHOOK_FILE)."""
    path = tmp_path / "alert-webhook"
    weak_app = app(tiny_parser)
    with (
        weak_servers.weakened_server(weak_app, weak_servers.open_cors) as url,
        WebhookReceiver() as hook,
    ):
        path.write_text(hook.url + "\n")
        monkeypatch.setenv("M2FP_ALERT_WEBHOOK_FILE", str(path))
        assert run(["scan", url, "--checks", "cors"]) == 1
        assert len(hook.posts) == 1
        path.write_text("\n")  # empty: no webhook, as the secret template's default
        assert run(["scan", url, "--checks", "cors"]) == 1
        assert len(hook.posts) == 1


def test_webhook_file_unreadable_or_doubled_is_a_usage_error(capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("M2FP_ALERT_WEBHOOK", raising=False)
    monkeypatch.setenv("M2FP_ALERT_WEBHOOK_FILE", str(tmp_path / "absent"))
    assert run(["scan", "https://m2fp.invalid"]) == 2
    assert "M2FP_ALERT_WEBHOOK_FILE" in capsys.readouterr().err
    (tmp_path / "absent").write_text("https://hooks.example/t0k3n")
    monkeypatch.setenv("M2FP_ALERT_WEBHOOK", "https://hooks.example/other")
    assert run(["scan", "https://m2fp.invalid"]) == 2
    err = capsys.readouterr().err
    assert "set only one of" in err and "t0k3n" not in err
