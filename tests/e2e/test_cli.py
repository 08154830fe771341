"""The ``profilegate`` command line, run as a real process against a data directory."""

import asyncio
import json
import re
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from profilegate.embedded import EmbeddedStore
from profilegate.settings import Settings
from profilegate.storage.store import open_client, prepare
from tests.e2e.server import ADDRESS_FILE, StartServer, run_cli
from tests.shopper_proofs import p256_key_pair

TOKEN = re.compile(r"^pgk_([0-9a-f]+)_([0-9a-f]+)$")
PROJECT_ROOT = Path(__file__).resolve().parents[2]
SEED_REPORT = re.compile(
    r"(\d+) extension definitions, (\d+) profiles created, (\d+) already there; "
    r"(\d+) events accepted, (\d+) duplicates$",
    re.MULTILINE,
)
REBUILD_REPORT = re.compile(
    r"^rebuilt (\d+) profiles \((\d+) changed\) from (\d+) events and \d+ shop day rollups$", re.MULTILINE
)
# Seeding logs a few thousand events, and the embedded store pays O(documents already in the
# segment) for each one it logs (DESIGN sec. 2): a seed takes minutes, not seconds.
SEED_TIMEOUT_SECONDS = 600.0
HEX_SHA256 = re.compile(r"[0-9a-f]{64}")


def create_key(data_dir: Path, role: str = "storefront", name: str = "shop-web") -> str:
    created = run_cli(
        "keys", "create", "--role", role, "--name", name, "--data-dir", str(data_dir), cwd=data_dir.parent
    )
    assert created.returncode == 0, created.stderr
    lines = created.stdout.splitlines()
    assert len(lines) == 1, created.stdout
    assert TOKEN.match(lines[0]), created.stdout
    assert created.stdout == lines[0] + "\n", repr(created.stdout)
    return lines[0]


def list_keys(data_dir: Path) -> list[list[str]]:
    """``keys list`` as rows of id, role, name, created, revoked."""
    listed = run_cli("keys", "list", "--data-dir", str(data_dir), cwd=data_dir.parent)
    assert listed.returncode == 0, listed.stderr
    return [line.split("\t") for line in listed.stdout.splitlines()]


def plain(text: str) -> str:
    """Rich's boxed error panels, without the box and the line wrapping."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def test_keys_create_prints_only_the_key(data_dir: Path) -> None:
    token = create_key(data_dir)
    assert TOKEN.match(token)


def test_a_storefront_keys_proof_details_go_to_stderr_and_sign_proofs(data_dir: Path) -> None:
    created = run_cli(
        "keys",
        "create",
        "--role",
        "storefront",
        "--name",
        "web",
        "--data-dir",
        str(data_dir),
        cwd=data_dir.parent,
    )
    assert created.returncode == 0, created.stderr
    match = TOKEN.match(created.stdout.strip())
    assert match is not None, created.stdout
    details = dict(re.findall(r"^  (\w+)\s+(.+)$", created.stderr, re.MULTILINE))
    assert details["algorithm"] == "HS256"
    assert details["aud"] == match.group(1)
    assert len(details["secret"]) == 43  # 32 random bytes, base64url
    assert details["header"] == "Shopper-Proof: <the JWT>"


def test_keys_create_format_env_prints_exports_a_shell_can_eval(data_dir: Path) -> None:
    args = ["keys", "create", "--role", "storefront", "--name", "web", "--format", "env"]
    created = run_cli(*args, "--data-dir", str(data_dir), cwd=data_dir.parent)
    assert created.returncode == 0, created.stderr

    evaluated = subprocess.run(
        [
            "bash",
            "-c",
            'eval "$1" && printf "%s\\n" "$STOREFRONT_KEY" "$PROFILEGATE_PROOF_AUDIENCE"',
            "-",
            created.stdout,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    token, audience = evaluated.stdout.split()
    match = TOKEN.match(token)
    assert match is not None, created.stdout
    assert audience == match.group(1)
    assert re.search(r"^export PROFILEGATE_PROOF_SECRET=\S{43}$", created.stdout, re.MULTILINE), (
        created.stdout
    )


def test_a_storefront_key_can_check_proofs_with_the_shops_public_key(data_dir: Path, tmp_path: Path) -> None:
    _, pem = p256_key_pair()
    (tmp_path / "shop.pem").write_text(pem)
    (tmp_path / "bad.pem").write_text("not a key")
    args = ("keys", "create", "--role", "storefront", "--name", "app", "--data-dir", str(data_dir))
    created = run_cli(*args, "--proof-public-key", str(tmp_path / "shop.pem"), cwd=data_dir.parent)
    assert created.returncode == 0, created.stderr
    assert "algorithm  ES256" in created.stderr
    assert "secret" not in created.stderr
    refused = run_cli(*args, "--proof-public-key", str(tmp_path / "bad.pem"), cwd=data_dir.parent)
    assert refused.returncode == 2
    assert "is not a PEM public key" in plain(refused.stderr)


def test_keys_list_shows_id_role_and_name_but_never_the_secret(data_dir: Path) -> None:
    token = create_key(data_dir)
    match = TOKEN.match(token)
    assert match is not None
    key_id, secret = match.groups()

    listed = run_cli("keys", "list", "--data-dir", str(data_dir), cwd=data_dir.parent)

    assert listed.returncode == 0, listed.stderr
    assert secret not in listed.stdout
    assert secret not in listed.stderr
    [row] = [line.split("\t") for line in listed.stdout.splitlines()]
    assert row[:3] == [key_id, "storefront", "shop-web"]
    assert datetime.fromisoformat(row[3]).tzinfo is not None
    assert row[4] == "-"


def test_keys_revoke_by_name_shows_the_key_revoked(data_dir: Path) -> None:
    token = create_key(data_dir)
    other = create_key(data_dir, role="ingest", name="import-job")

    revoked = run_cli("keys", "revoke", "shop-web", "--data-dir", str(data_dir), cwd=data_dir.parent)

    assert revoked.returncode == 0, revoked.stderr
    assert "revoked 1 key(s)" in revoked.stderr
    rows = {row[0]: row for row in list_keys(data_dir)}
    shop_web = rows[token.split("_")[1]]
    assert shop_web[1:3] == ["storefront", "shop-web"]
    assert datetime.fromisoformat(shop_web[4]) >= datetime.fromisoformat(shop_web[3])
    assert rows[other.split("_")[1]][4] == "-"


def test_keys_revoke_of_an_unknown_name_exits_1(data_dir: Path) -> None:
    create_key(data_dir)

    revoked = run_cli("keys", "revoke", "unknown-name", "--data-dir", str(data_dir), cwd=data_dir.parent)

    assert revoked.returncode == 1, revoked.stderr
    assert "revoked 0 key(s)" in revoked.stderr
    assert [row[4] for row in list_keys(data_dir)] == ["-"]


def test_keys_create_refuses_an_unknown_role_naming_the_option(data_dir: Path) -> None:
    created = run_cli(
        "keys", "create", "--role", "bogus", "--name", "x", "--data-dir", str(data_dir), cwd=data_dir.parent
    )

    assert created.returncode != 0
    assert created.stdout == ""
    message = plain(created.stderr)
    assert "--role" in message, created.stderr
    assert "bogus" in message, created.stderr
    assert not data_dir.exists(), "a refused command touched the data directory"


def seed(data_dir: Path) -> tuple[str, ...]:
    """Run ``seed``; the figures of its summary line."""
    seeded = run_cli("seed", "--data-dir", str(data_dir), cwd=data_dir.parent, timeout=SEED_TIMEOUT_SECONDS)
    assert seeded.returncode == 0, seeded.stderr
    report = SEED_REPORT.search(seeded.stderr)
    assert report is not None, seeded.stderr
    return report.groups()


def test_seed_loads_the_fixtures_once(data_dir: Path) -> None:
    *profiles, accepted, duplicates = seed(data_dir)
    assert (profiles, duplicates) == (["10", "36", "0"], "0")
    assert 1000 <= int(accepted) <= 2000

    *profiles, accepted_again, duplicates = seed(data_dir)
    assert (profiles, accepted_again, duplicates) == (["10", "0", "36"], "0", accepted)


def test_rebuild_aggregates_rebuilds_every_seeded_profile(data_dir: Path) -> None:
    *_, accepted, _ = seed(data_dir)

    rebuilt = run_cli("rebuild-aggregates", "--data-dir", str(data_dir), cwd=data_dir.parent)

    assert rebuilt.returncode == 0, rebuilt.stderr
    assert rebuilt.stdout == ""
    report = REBUILD_REPORT.search(rebuilt.stderr)
    assert report is not None, rebuilt.stderr
    profiles, _, events = report.groups()
    assert (profiles, events) == ("36", accepted), "every seeded event counts for a fixture profile"
    again = run_cli("rebuild-aggregates", "--data-dir", str(data_dir), cwd=data_dir.parent)
    assert again.returncode == 0, again.stderr
    report = REBUILD_REPORT.search(again.stderr)
    assert report is not None, again.stderr
    assert report.groups() == ("36", "0", accepted), "a second rebuild changes nothing"


def test_rebuild_aggregates_check_finds_nothing_after_seed_and_names_a_planted_difference(
    data_dir: Path,
) -> None:
    seed(data_dir)

    clean = run_cli("rebuild-aggregates", "--check", "--data-dir", str(data_dir), cwd=data_dir.parent)

    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert clean.stdout == ""
    assert re.search(r"checked 36 profiles and \d+ shop day rollups .*: no difference$", clean.stderr), (
        clean.stderr
    )
    profile_id = asyncio.run(plant_orders(data_dir, orders=999))
    found = run_cli("rebuild-aggregates", "--check", "--data-dir", str(data_dir), cwd=data_dir.parent)
    assert found.returncode == 1, found.stderr
    [line] = found.stdout.splitlines()
    subject, named, metric, live, logged = line.split("\t")
    assert (subject, named, metric, live) == ("profile", profile_id, "orders", "999"), line
    assert logged.isdigit()
    assert logged != "999"
    assert "1 differences, in 1 profiles and 0 shop day rollups" in found.stderr
    repaired = run_cli("rebuild-aggregates", "--data-dir", str(data_dir), cwd=data_dir.parent)
    assert f"changed profile {profile_id}: orders\n" in repaired.stderr, repaired.stderr
    again = run_cli("rebuild-aggregates", "--check", "--data-dir", str(data_dir), cwd=data_dir.parent)
    assert again.returncode == 0, again.stdout


async def plant_orders(data_dir: Path, orders: int) -> str:
    """Write a lifetime order count to one seeded profile behind the services' back; its id."""
    settings = Settings(data_dir=data_dir)
    with EmbeddedStore(data_dir=data_dir, engine=settings.embedded_engine) as store:
        assert store.uri is not None
        client = open_client(store.uri)
        try:
            repos = await prepare(client[settings.database], settings.layout, **settings.store_options)
            profile_id = min([p.id async for p in repos.profiles.merge_pointers()])
            profile = await repos.profiles.get(profile_id)
            assert profile is not None
            aggregates = profile.aggregates.model_copy(update={"orders": orders})
            changed = profile.model_copy(update={"aggregates": aggregates, "version": profile.version + 1})
            assert await repos.profiles.replace_fields(changed, expected_version=profile.version)
            return profile_id
        finally:
            await client.close()


def test_report_prints_the_shop_metrics_and_writes_them_as_csv(data_dir: Path) -> None:
    csv_file = data_dir.parent / "metrics.csv"

    shown = run_cli(
        "report", "--from", "2026-01-01", "--to", "2026-03-31", "--csv", str(csv_file),
        "--data-dir", str(data_dir), cwd=data_dir.parent,
    )  # fmt: skip

    assert shown.returncode == 0, shown.stderr
    assert "conversion rate" in " ".join(shown.stdout.split()), shown.stdout
    lines = csv_file.read_text().splitlines()
    assert lines[0].startswith("from,to,visitors,buyers,orders,conversion_rate,revenue,")
    # one row per month, then the total over the range
    assert [line.split(",")[:3] for line in lines[1:]] == [
        ["2026-01-01", "2026-01-31", "0"],
        ["2026-02-01", "2026-02-28", "0"],
        ["2026-03-01", "2026-03-31", "0"],
        ["2026-01-01", "2026-03-31", "0"],
    ]


@pytest.mark.parametrize(("granularity", "periods"), [("WEEK", 2), ("day", 14)])
def test_report_takes_the_granularity_in_any_case(data_dir: Path, granularity: str, periods: int) -> None:
    csv_file = data_dir.parent / "metrics.csv"

    shown = run_cli(
        "report", "--from", "2026-01-05", "--to", "2026-01-18", "--granularity", granularity,
        "--csv", str(csv_file), "--data-dir", str(data_dir), cwd=data_dir.parent,
    )  # fmt: skip

    assert shown.returncode == 0, shown.stderr
    rows = [line.split(",")[:2] for line in csv_file.read_text().splitlines()[1:]]
    assert len(rows) == periods + 1  # the periods, then the total over the range
    assert rows[:2] == ([["2026-01-05", "2026-01-11"], ["2026-01-12", "2026-01-18"]] if periods == 2 else
                        [["2026-01-05", "2026-01-05"], ["2026-01-06", "2026-01-06"]])  # fmt: skip


def test_report_refuses_a_range_that_ends_before_it_starts(data_dir: Path) -> None:
    shown = run_cli(
        "report",
        "--from",
        "2026-03-01",
        "--to",
        "2026-02-01",
        "--data-dir",
        str(data_dir),
        cwd=data_dir.parent,
    )

    assert shown.returncode == 2
    assert "to: 2026-02-01 lies before from (2026-03-01)" in shown.stderr


def test_export_schema_writes_the_committed_schema(tmp_path: Path) -> None:
    output = tmp_path / "schema.graphql"

    exported = run_cli("export-schema", "--output", str(output), cwd=tmp_path)

    assert exported.returncode == 0, exported.stderr
    assert output.read_text() == (PROJECT_ROOT / "schema.graphql").read_text()


def test_keys_create_reaches_the_store_of_a_running_server(start_server: StartServer, data_dir: Path) -> None:
    server = start_server(data_dir)
    server.wait_ready()

    token = create_key(data_dir)

    assert server.graphql("{ viewer { name role } }", key=token) == {
        "viewer": {"name": "shop-web", "role": "STOREFRONT"}
    }
    assert [row[1:3] for row in list_keys(data_dir)] == [["storefront", "shop-web"]]


def test_a_second_serve_on_a_data_dir_in_use_fails_clearly(start_server: StartServer, data_dir: Path) -> None:
    first = start_server(data_dir)
    first.wait_ready()

    second = start_server(data_dir)
    exit_code = second.wait_exit()

    assert exit_code != 0
    logs = second.logs()
    assert str(data_dir) in logs, logs
    assert "another store already serves" in logs, logs
    assert "Traceback" not in logs, logs
    # The refused one left the running server and its store alone.
    assert (data_dir / ADDRESS_FILE).exists()
    first.wait_ready()
    token = create_key(data_dir)
    assert first.graphql("{ viewer { name } }", key=token) == {"viewer": {"name": "shop-web"}}


def test_export_segment_writes_the_consenting_members_hashed(data_dir: Path) -> None:
    seed(data_dir)
    exported = run_cli(
        "export-segment",
        "vip-buyers",
        "--purpose",
        "email_marketing",
        "--format",
        "ndjson",
        "--hash",
        "--data-dir",
        str(data_dir),
        cwd=data_dir.parent,
    )

    assert exported.returncode == 0, exported.stderr
    rows = [json.loads(line) for line in exported.stdout.splitlines()]
    assert rows, "the seeded VIP buyers include some who accept marketing e-mail"
    assert f"exported {len(rows)} profiles of vip-buyers" in exported.stderr
    assert all(HEX_SHA256.fullmatch(row["email"]) for row in rows), rows
    unknown = run_cli(
        "export-segment", "nowhere", "--purpose", "ads", "--data-dir", str(data_dir), cwd=data_dir.parent
    )
    assert unknown.returncode == 2
    assert "no segment 'nowhere'" in unknown.stderr


def test_serve_refuses_a_retention_no_ttl_index_holds_naming_the_setting(data_dir: Path) -> None:
    refused = run_cli(
        "serve",
        "--data-dir",
        str(data_dir),
        cwd=data_dir.parent,
        env={"PROFILEGATE_EVENT_RETENTION_DAYS": "30000"},
    )

    assert refused.returncode == 2
    assert "PROFILEGATE_EVENT_RETENTION_DAYS=30000" in refused.stderr, refused.stderr
    assert "2147483647" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not (data_dir / ADDRESS_FILE).exists(), "no store was started"
