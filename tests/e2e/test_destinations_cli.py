"""``profilegate destinations`` against a running gateway's store: a destination defined on the
command line is delivered to a real receiver by the gateway, its dead letters listed and
replayed, its delivery log shown."""

import time
from pathlib import Path

from tests.destination_receiver import Receiver, receiving
from tests.e2e.server import Server, StartServer, run_cli

# Short retries so a failing receiver makes a dead letter within seconds.
DELIVERY = {
    "PROFILEGATE_DESTINATIONS_ALLOW_PRIVATE": "true",
    "PROFILEGATE_DESTINATIONS_RETRY_FIRST_SECONDS": "0.1",
    "PROFILEGATE_DESTINATIONS_RETRY_MAX_SECONDS": "0.2",
    "PROFILEGATE_DESTINATIONS_RETRY_FOR_SECONDS": "1",
    "PROFILEGATE_DESTINATIONS_REFRESH_SECONDS": "0.2",
    "PROFILEGATE_DESTINATIONS_PAUSE_AFTER_DEAD_LETTERS": "100",
}
UPSERT = """
mutation ($email: String!) {
  upsertProfile(input: {
    identities: [{type: EMAIL, value: $email}]
    traits: {country: "DE"}
    consents: [{purpose: "email_marketing", granted: true, source: "checkout"}]
  }) { __typename }
}
"""


def destinations(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    done = run_cli("destinations", *args, "--data-dir", str(data_dir), cwd=data_dir.parent, env=env)
    return done.returncode, done.stdout, done.stderr


def create(data_dir: Path, receiver: Receiver, *more: str) -> str:
    code, out, err = destinations(
        data_dir,
        "create",
        "--id",
        "esp",
        "--name",
        "E-mail service",
        "--url",
        receiver.url,
        "--consent-purpose",
        "email_marketing",
        "--kind",
        "profile_created",
        "--field",
        "identities",
        "--max-wait-seconds",
        "0",
        *more,
        env=DELIVERY,
    )
    assert code == 0, err
    return out


def started(start_server: StartServer, data_dir: Path) -> Server:
    server = start_server(data_dir, env=DELIVERY)
    server.wait_ready()
    return server


def test_create_prints_only_the_secret_and_the_gateway_delivers_signed_batches(
    start_server: StartServer, data_dir: Path
) -> None:
    server = started(start_server, data_dir)
    with receiving() as receiver:
        out = create(data_dir, receiver)
        secret = out.strip()
        assert out == secret + "\n"
        assert secret.startswith("whsec_")
        receiver.secrets.append(secret)
        time.sleep(0.5)  # the gateway looks at its destinations every 0.2 s
        server.graphql(UPSERT, {"email": "cli.one@example.com"})
        [message] = receiver.wait_for(1)
    assert message["type"] == "profile.created"
    assert {"type": "email", "value": "cli.one@example.com"} in message["profile"]["identities"]
    assert all(one.verified for one in receiver.received)
    code, listed, _ = destinations(data_dir, "list")
    assert code == 0
    [row] = [line.split("\t") for line in listed.splitlines()]
    assert (row[0], row[1], row[4], row[5]) == ("esp", "enabled", receiver.url, "E-mail service")
    code, shown, _ = destinations(data_dir, "show", "esp")
    assert "state:" in shown
    assert "enabled" in shown
    assert "consent purpose:    email_marketing" in shown
    assert secret not in shown
    assert secret not in listed


def test_a_dead_letter_is_listed_and_its_replay_reaches_the_receiver_under_its_batch_id(
    start_server: StartServer, data_dir: Path
) -> None:
    server = started(start_server, data_dir)
    with receiving(Receiver(default="fail")) as receiver:
        receiver.secrets.append(create(data_dir, receiver).strip())
        time.sleep(0.5)
        server.graphql(UPSERT, {"email": "cli.two@example.com"})
        letters = wait_for_lines(data_dir, "dead-letters", "esp")
        [(_at, batch_id, kind, count, attempts, error)] = [line.split("\t") for line in letters]
        assert (kind, count, error) == ("feed", "1", "answered 500")
        assert int(attempts) >= 2
        receiver.default = "ok"
        code, out, err = destinations(data_dir, "replay", batch_id)
        assert (code, out) == (0, ""), err
        assert f"replay of {batch_id} to esp queued" in err
        [message] = receiver.wait_for(1)
    assert message["profile"]["identities"] == [{"type": "email", "value": "cli.two@example.com"}]
    assert receiver.delivered()[0].batch_id == batch_id
    assert receiver.delivered()[0].verified
    log = wait_for_lines(data_dir, "deliveries", "esp", containing="\tdelivered\t")
    newest = log[0].split("\t")
    assert (newest[1], newest[2], newest[3], newest[5]) == (batch_id, "replay", "delivered", "200")
    assert any("\tdead_lettered\t" in line for line in log)


def test_pause_keeps_changes_until_resume_then_delivers_them(
    start_server: StartServer, data_dir: Path
) -> None:
    server = started(start_server, data_dir)
    with receiving() as receiver:
        receiver.secrets.append(create(data_dir, receiver).strip())
        assert destinations(data_dir, "pause", "esp")[0] == 0
        time.sleep(0.5)
        server.graphql(UPSERT, {"email": "cli.three@example.com"})
        time.sleep(1.0)
        assert receiver.received == []
        _code, listed, _ = destinations(data_dir, "list")
        assert listed.split("\t")[1] == "paused"
        assert int(listed.split("\t")[3]) >= 1
        assert destinations(data_dir, "resume", "esp")[0] == 0
        [message] = receiver.wait_for(1)
    assert message["profile"]["identities"] == [{"type": "email", "value": "cli.three@example.com"}]


def test_rotate_secret_prints_a_new_secret_and_delete_removes_the_destination(data_dir: Path) -> None:
    with receiving() as receiver:
        first = create(data_dir, receiver).strip()
    code, out, err = destinations(data_dir, "rotate-secret", "esp")
    assert code == 0
    assert out.strip().startswith("whsec_")
    assert out.strip() != first
    assert "previous secret too until" in err
    assert "previous secret until:" in destinations(data_dir, "show", "esp")[1]
    assert destinations(data_dir, "delete", "esp")[0] == 0
    assert destinations(data_dir, "list")[1] == ""
    code, _, err = destinations(data_dir, "show", "esp")
    assert (code, err.strip()) == (1, "error: no destination has the id 'esp'")


def test_create_refuses_a_loopback_url_naming_the_option_and_the_setting(data_dir: Path) -> None:
    code, out, err = destinations(
        data_dir,
        "create",
        "--id",
        "esp",
        "--name",
        "E-mail service",
        "--url",
        "http://127.0.0.1:9/hook",
        "--consent-purpose",
        "email_marketing",
        "--tiers",
    )
    assert code == 2
    assert out == ""
    assert "--url" in err
    assert "loopback" in err
    assert "PROFILEGATE_DESTINATIONS_ALLOW_PRIVATE" in err
    assert destinations(data_dir, "list")[1] == ""


def test_create_refuses_a_destination_sent_nothing_and_an_unknown_replay_exits_1(data_dir: Path) -> None:
    code, _, err = destinations(
        data_dir,
        "create",
        "--id",
        "esp",
        "--name",
        "E-mail service",
        "--url",
        "https://example.com/hook",
        "--consent-purpose",
        "email_marketing",
    )
    assert code == 2
    assert "--kind/--segment/--tiers/--extension" in err
    code, _, err = destinations(data_dir, "replay", "msg_unknown")
    assert (code, err.strip()) == (1, "error: no dead letter has the batch id 'msg_unknown'")


def wait_for_lines(data_dir: Path, *args: str, containing: str = "", timeout: float = 20.0) -> list[str]:
    deadline = time.monotonic() + timeout
    lines: list[str] = []
    while time.monotonic() < deadline:
        code, out, err = destinations(data_dir, *args)
        assert code == 0, err
        lines = out.splitlines()
        if lines and containing in out:
            return lines
        time.sleep(0.3)
    raise AssertionError(f"{args}: {lines}")
