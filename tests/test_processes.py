"""The end-to-end harness itself: a real worker consumes tasks, a real SMTP server receives mail."""

from django.core.mail import send_mail

from retention_app.celery import ping
from tests.fixtures.processes import wait_until


def test_real_worker_runs_a_task(celery_worker, tmp_path):
    target = tmp_path / "pong.txt"
    ping.delay(str(target))
    wait_until(
        lambda: target.exists() and target.read_text() == "pong", timeout=30, what="worker to run ping"
    )
    assert target.read_text() == "pong"


def test_smtp_server_receives_mail(smtp_server):
    send_mail("Hello", "Body ข้อความ", "shop@example.com", ["ana@example.com"])
    assert len(smtp_server.messages) == 1
    assert smtp_server.messages[0]["Subject"] == "Hello"
    assert "ข้อความ" in smtp_server.messages[0].get_content()
