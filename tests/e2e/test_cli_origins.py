"""``profilegate keys create --origin``: the browser origins a key may be used from."""

from pathlib import Path

from tests.e2e.server import run_cli
from tests.e2e.test_cli import TOKEN, plain


def create(data_dir: Path, *origins: str) -> tuple[int, str, str]:
    options = [part for origin in origins for part in ("--origin", origin)]
    arguments = ["keys", "create", "--role", "storefront", "--name", "shop-web", *options]
    done = run_cli(*arguments, "--data-dir", str(data_dir), cwd=data_dir.parent)
    return done.returncode, done.stdout, done.stderr


def test_keys_create_takes_origins_and_prints_only_the_key(data_dir: Path) -> None:
    code, stdout, stderr = create(data_dir, "https://shop.example.com", "http://localhost:3000")

    assert code == 0, stderr
    assert TOKEN.match(stdout.strip())


def test_an_origin_with_a_path_is_refused_naming_the_option(data_dir: Path) -> None:
    code, stdout, stderr = create(data_dir, "https://shop.example.com/checkout")

    assert code == 2
    assert stdout == ""
    assert "--origin" in plain(stderr)
    assert "allowedOrigins[0]: must be scheme://host[:port], without a path" in plain(stderr)
