"""Share data and models through a DVC remote: `make remote-s3`, `make push`, `make pull`.

- ``configure-s3``: read bucket, prefix, region and endpoint from ``.env`` and write them to
  ``.dvc/config.local`` (git-ignored) as the remote ``s3``, made the default. Credentials are
  never written anywhere: DVC reads them from the environment this tool passes on.
- ``check``: ask the remote whether it can be used, and say in one line what is wrong.
- ``push`` / ``pull`` / ``status``: ``check``, then ``dvc push`` / ``dvc pull`` /
  ``dvc status -c``, with ``.env`` loaded and secrets masked in everything printed.

``.env`` (see ``.env.example``) only fills variables that are not already set.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("tools.remote")

SECRET_KEYS = ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN")


class RemoteError(Exception):
    """A remote that cannot be used, with what to set to fix it."""


def parse_env(text: str) -> dict[str, str]:
    """KEY=VALUE pairs of a .env file, parsed by python-dotenv (comments, quotes, ``export``).

    Values are taken literally (no ``${VAR}`` expansion: a secret may contain ``$``). dotenv
    only logs a line it cannot parse; here it is an error naming the line.
    """
    from dotenv import dotenv_values
    from dotenv.parser import parse_stream

    bad = next((b for b in parse_stream(io.StringIO(text)) if b.error), None)
    if bad is not None:
        raise RemoteError(f".env line {bad.original.line} is not KEY=VALUE")
    values = dotenv_values(stream=io.StringIO(text), interpolate=False)
    return {key: value for key, value in values.items() if value is not None}


def load_env(root: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment for dvc: ``environ`` plus the keys of ``root/.env`` it does not set."""
    env = dict(environ)
    path = root / ".env"
    if path.is_file():
        for key, value in parse_env(path.read_text(encoding="utf-8")).items():
            env.setdefault(key, value)
    # Empty values in .env mean "not set" (the example file lists every key).
    return {k: v for k, v in env.items() if v != ""}


def mask(text: str, env: Mapping[str, str]) -> str:
    """Replace every credential value in ``text`` by ***."""
    for key in SECRET_KEYS:
        value = env.get(key)
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return text


@dataclass(frozen=True)
class Remote:
    name: str
    url: str
    endpoint: str | None = None
    region: str | None = None

    @property
    def is_s3(self) -> bool:
        return self.url.startswith("s3://")

    @property
    def bucket(self) -> str:
        return self.url.removeprefix("s3://").split("/", 1)[0]

    @property
    def prefix(self) -> str:
        parts = self.url.removeprefix("s3://").split("/", 1)
        return parts[1].strip("/") if len(parts) > 1 else ""


def read_remote(root: Path, name: str | None) -> Remote:
    """The named (or default) remote as DVC sees it, local config included."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        config = repo.config
        name = name or config["core"].get("remote")
        if not name:
            raise RemoteError("no DVC remote is set: run `make remote-s3` or `dvc remote default`")
        if name not in config["remote"]:
            known = ", ".join(config["remote"]) or "none"
            raise RemoteError(f"no DVC remote named {name!r} (configured: {known})")
        section = config["remote"][name]
        url = section["url"]
        if "://" not in url and not os.path.isabs(url):
            # Relative local remotes are relative to the config file that names them.
            url = str((root / ".dvc" / url).resolve())
        return Remote(name, url, section.get("endpointurl"), section.get("region"))


def _endpoint_text(remote: Remote, env: Mapping[str, str]) -> str:
    endpoint = remote.endpoint or env.get("AWS_ENDPOINT_URL")
    return (
        endpoint or f"AWS S3 ({remote.region or env.get('AWS_DEFAULT_REGION', 'default region')})"
    )


def check_s3(remote: Remote, env: Mapping[str, str]) -> None:
    """List one key of the remote's bucket; turn each way that fails into one line."""
    import botocore.session
    from botocore.config import Config
    from botocore.exceptions import (
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        ReadTimeoutError,
    )

    # Without keys, a profile or a credentials file, botocore would go on to ask the EC2
    # metadata service; on an instance role use plain `dvc push` instead.
    if not env.get("AWS_ACCESS_KEY_ID") or not env.get("AWS_SECRET_ACCESS_KEY"):
        profile = env.get("AWS_PROFILE")
        home = Path(env.get("HOME", "~")).expanduser()
        if not profile and not (home / ".aws" / "credentials").exists():
            raise RemoteError(
                "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in .env "
                "(see .env.example)"
            )
    where = _endpoint_text(remote, env)
    client = botocore.session.Session().create_client(
        "s3",
        region_name=remote.region or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        endpoint_url=remote.endpoint or env.get("AWS_ENDPOINT_URL"),
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
        aws_session_token=env.get("AWS_SESSION_TOKEN"),
        config=Config(connect_timeout=5, read_timeout=15, retries={"max_attempts": 1}),
    )
    try:
        client.list_objects_v2(Bucket=remote.bucket, Prefix=remote.prefix, MaxKeys=1)
    except NoCredentialsError:
        raise RemoteError(
            "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in .env"
        ) from None
    except (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError):
        raise RemoteError(
            f"cannot reach the S3 endpoint {where}: check AWS_ENDPOINT_URL in .env "
            "and that the server is running"
        ) from None
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("NoSuchBucket",) or status == 404:
            raise RemoteError(
                f"bucket {remote.bucket!r} does not exist at {where}: create it, "
                "or fix DVC_S3_BUCKET in .env and run `make remote-s3`"
            ) from None
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"):
            raise RemoteError(
                f"{where} rejected the credentials ({code}): check AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY in .env"
            ) from None
        if code in ("AccessDenied", "Forbidden", "AllAccessDisabled") or status == 403:
            raise RemoteError(
                f"{where} denied access to bucket {remote.bucket!r} ({code or status}): check the "
                "credentials in .env and that they may read and write this bucket"
            ) from None
        raise RemoteError(
            f"{where} answered {code or status} for bucket {remote.bucket!r}"
        ) from None


def check(remote: Remote, env: Mapping[str, str]) -> None:
    """Raise :class:`RemoteError` if ``remote`` cannot be used as it is configured."""
    if remote.is_s3:
        check_s3(remote, env)
    elif "://" not in remote.url:
        parent = Path(remote.url).parent
        if not parent.exists():
            raise RemoteError(
                f"local remote {remote.name!r} at {remote.url}: its parent folder does not exist "
                f"(set another with `dvc remote modify --local {remote.name} url <dir>`)"
            )


def _dvc(args: Sequence[str], root: Path, env: Mapping[str, str]) -> int:
    """Run dvc with ``env``, streaming its output with secrets masked."""
    dvc = Path(sys.executable).with_name("dvc")
    proc = subprocess.Popen(
        [str(dvc) if dvc.exists() else "dvc", *args],
        cwd=root,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(mask(line, env))
    return proc.wait()


def configure_s3(root: Path, env: Mapping[str, str]) -> Remote:
    """Write the S3 remote from .env into .dvc/config.local and make it the default."""
    bucket = env.get("DVC_S3_BUCKET")
    if not bucket:
        raise RemoteError("DVC_S3_BUCKET is not set: add it to .env (see .env.example)")
    prefix = env.get("DVC_S3_PREFIX", "").strip("/")
    url = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
    steps = [["remote", "add", "--local", "--force", "s3", url]]
    for option, key in (("region", "AWS_DEFAULT_REGION"), ("endpointurl", "AWS_ENDPOINT_URL")):
        if env.get(key):
            steps.append(["remote", "modify", "--local", "s3", option, env[key]])
        else:
            steps.append(["remote", "modify", "--local", "--unset", "s3", option])
    steps.append(["remote", "default", "--local", "s3"])
    for step in steps:
        proc = subprocess.run(
            [str(Path(sys.executable).with_name("dvc")), *step],
            cwd=root,
            env=dict(env),
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            first = mask((proc.stderr or proc.stdout).strip().splitlines()[0], env)
            raise RemoteError(f"dvc {' '.join(step[:3])} failed: {first}")
    remote = Remote("s3", url, env.get("AWS_ENDPOINT_URL"), env.get("AWS_DEFAULT_REGION"))
    log.info("remote 's3' -> %s (endpoint %s), now the default", url, _endpoint_text(remote, env))
    return remote


COMMANDS = {"push": ["push"], "pull": ["pull"], "status": ["status", "--cloud"]}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["configure-s3", "check", *COMMANDS])
    parser.add_argument("--remote", help="remote name (default: the DVC default remote)")
    parser.add_argument("--root", default=".", help="repository root")
    args, extra = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    root = Path(args.root).resolve()
    env: dict[str, str] = {}
    try:
        env = load_env(root, os.environ)
        if args.command == "configure-s3":
            remote = configure_s3(root, env)
        else:
            remote = read_remote(root, args.remote)
        check(remote, env)
        if args.command in ("configure-s3", "check"):
            log.info(
                "remote %r at %s is reachable and accepts the credentials", remote.name, remote.url
            )
            return 0
        code = _dvc([*COMMANDS[args.command], "--remote", remote.name, *extra], root, env)
    except RemoteError as exc:
        print(f"error: {mask(str(exc), env)}", file=sys.stderr)
        return 2
    if code != 0:
        print(
            f"error: dvc {args.command} to remote {remote.name!r} failed (exit {code}); "
            f"`make remote-check` tells whether the remote is usable",
            file=sys.stderr,
        )
    return code


if __name__ == "__main__":
    raise SystemExit(main())
