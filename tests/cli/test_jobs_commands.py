"""``artstore jobs list|show|cancel|retry`` against the real admin (issue 15); no worker
runs here, so a queued job stays queued until the CLI cancels it."""

from __future__ import annotations

import json

from tests.cli.conftest import Cli
from tests.support.jobs import defer


def test_jobs_list_show_cancel_retry(admin_cli: Cli, dead_url: str) -> None:
    db = admin_cli.system.system.db.url
    run_id = defer(db, "test.cli", step="one")
    page = json.loads(admin_cli.ok("jobs", "list", "--kind", "test.cli", "--json").out)
    assert [j["id"] for j in page["items"]] == [run_id]
    assert page["items"][0]["state"] == "queued"
    assert "test.cli" in admin_cli.ok("jobs", "list", "--state", "queued").out
    shown = admin_cli.ok("jobs", "show", str(run_id)).out
    assert "test.cli" in shown and "queued" in shown
    assert json.loads(admin_cli.ok("jobs", "show", str(run_id), "--json").out)["args"] == {
        "step": "one"
    }

    assert f"job {run_id} cancelled" in admin_cli.ok("jobs", "cancel", str(run_id)).out
    admin_cli("jobs", "cancel", str(run_id)).one_error_line("CONFLICT")
    out = admin_cli.ok("jobs", "retry", str(run_id)).out
    assert out.startswith(f"job {run_id} queued again as job ")
    new = json.loads(admin_cli.ok("jobs", "list", "--kind", "test.cli", "--json").out)["items"][0]
    assert new["retry_of"] == run_id and new["state"] == "queued"
    admin_cli.ok("jobs", "cancel", str(new["id"]), "--json")

    admin_cli("jobs", "show", "999999999").one_error_line("NOT_FOUND")
    admin_cli("jobs", "retry", str(new["id"] + 1000)).one_error_line("NOT_FOUND")
    admin_cli("jobs", "list", "--since", "yesterday").one_error_line("VALIDATION_ERROR")
    admin_cli("jobs", "list", ARTSTORE_ADMIN_URL=dead_url).one_error_line("CONNECTION_FAILED")


def test_jobs_need_admin_rights(cli: Cli) -> None:
    user = cli.system.system.admin.create_user(["user"])
    cli.login_as(user["username"], user["password"])
    cli("jobs", "list").one_error_line("FORBIDDEN")
    cli("jobs", "retry", "1").one_error_line("FORBIDDEN")
