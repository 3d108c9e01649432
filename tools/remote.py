"""Share data and models through a DVC remote: `make remote-s3`, `make push`, `make pull`.

- ``configure-s3``: read bucket, prefix, region and endpoint from ``.env`` and write them to
  ``.dvc/config.local`` (git-ignored) as the remote ``s3``, made the default. Credentials are
  never written anywhere: DVC reads them from the environment this tool passes on.
- ``check``: ask the remote whether it can be used, and say in one line what is wrong.
- ``push`` / ``pull`` / ``status``: ``check``, then ``dvc push`` / ``dvc pull`` /
  ``dvc status -c``, with ``.env`` loaded and secrets masked in everything printed.

``.env`` (see ``.env.example``) only fills variables that are not already set. A bucket name
or endpoint botocore cannot use, and an endpoint URL carrying a credential (``user:pass@`` or
a token in the query: keys belong in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY), are refused
in one line before anything is written. Everything printed, dvc's output included, has the
credential values and any URL's userinfo and query values masked (``tabml.secrets.redact``).

Pulls check what they download: the remote gets DVC's ``verify = true`` (in the git-ignored
``.dvc/config.local``), so DVC re-hashes every object it fetches and drops one whose content
does not match its name (without it DVC trusts an object's name and checks out whatever bytes
it holds). When ``dvc pull`` fails, the last line says why, naming the workspace files: those
whose object failed that hash check (and where the bad objects are), those never pushed
(how many objects neither the remote nor the local cache has: DVC's own list, which also holds
a directory's listing that `dvc status --cloud` cannot see), those that could not be
downloaded. Paths come from dvc.lock and the .dvc files. Any other failure quotes dvc's last
error: the remote had just answered the check.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from tabml.secrets import credential_in_url, redact

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
    """Replace every credential value in ``text``, and any URL's userinfo and query values,
    by ***."""
    for key in SECRET_KEYS:
        value = env.get(key)
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return redact(text)


class _Masking(logging.Filter):
    """Mask every record of this tool's logger, whatever handler prints it."""

    def __init__(self, env: Mapping[str, str]) -> None:
        super().__init__()
        self.env = env

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = mask(record.getMessage(), self.env), None
        return True


@dataclass(frozen=True)
class Remote:
    name: str
    url: str
    endpoint: str | None = None
    region: str | None = None
    verify: bool = False

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
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(str(root)) as repo:
            config = repo.config
            name = name or config["core"].get("remote")
            remotes = config["remote"]
            section = remotes.get(name) if name else None
    except DvcException as exc:
        raise RemoteError(f"DVC cannot read the repository at {root}: {_first_line(exc)}") from None
    if not name:
        raise RemoteError("no DVC remote is set: run `make remote-s3` or `dvc remote default`")
    if section is None:
        known = ", ".join(remotes) or "none"
        raise RemoteError(f"no DVC remote named {name!r} (configured: {known})")
    url = section["url"]
    if "://" not in url and not os.path.isabs(url):
        # Relative local remotes are relative to the config file that names them.
        url = str((root / ".dvc" / url).resolve())
    return Remote(
        name, url, section.get("endpointurl"), section.get("region"), section.get("verify") is True
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _endpoint_text(remote: Remote, env: Mapping[str, str]) -> str:
    endpoint = remote.endpoint or env.get("AWS_ENDPOINT_URL")
    return (
        endpoint or f"AWS S3 ({remote.region or env.get('AWS_DEFAULT_REGION', 'default region')})"
    )


def check_s3_settings(
    bucket: str, endpoint: str | None, *, bucket_from: str, endpoint_from: str, fix: str
) -> None:
    """Refuse a bucket name or endpoint botocore cannot use, or an endpoint with a credential.

    ``bucket_from`` and ``endpoint_from`` name the settings as the user knows them; ``fix``
    says where to change them. The message never holds a credential (the URL is redacted).
    """
    from botocore.exceptions import ParamValidationError
    from botocore.handlers import validate_bucket_name
    from botocore.utils import is_valid_endpoint_url, is_valid_ipv6_endpoint_url

    try:
        validate_bucket_name({"Bucket": bucket})
    except ParamValidationError:
        raise RemoteError(
            f"{bucket_from} is {bucket!r}: not a valid S3 bucket name (3-63 lowercase letters, "
            f"digits, dots and hyphens); {fix}"
        ) from None
    if endpoint is None:
        return
    shown = redact(endpoint)
    why = credential_in_url(endpoint)
    if why is not None:
        raise RemoteError(
            f"{endpoint_from} is {shown!r}: it holds a credential ({why}); give only "
            f"http(s)://host[:port] and put the keys in AWS_ACCESS_KEY_ID and "
            f"AWS_SECRET_ACCESS_KEY in .env; {fix}"
        )
    try:
        scheme = urlsplit(endpoint).scheme
    except ValueError:
        scheme = ""
    if scheme not in ("http", "https") or not (
        is_valid_endpoint_url(endpoint) or is_valid_ipv6_endpoint_url(endpoint)
    ):
        raise RemoteError(
            f"{endpoint_from} is {shown!r}: not an http(s) URL; give http(s)://host[:port] of "
            f"your S3-compatible server (nothing for AWS itself); {fix}"
        )


def check_s3(remote: Remote, env: Mapping[str, str]) -> None:
    """List one key of the remote's bucket; turn each way that fails into one line."""
    import botocore.session
    from botocore.config import Config
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        ReadTimeoutError,
    )

    check_s3_settings(
        remote.bucket,
        remote.endpoint or env.get("AWS_ENDPOINT_URL"),
        bucket_from=f"the bucket of DVC remote {remote.name!r}",
        endpoint_from=(
            f"the endpointurl of DVC remote {remote.name!r}"
            if remote.endpoint
            else "AWS_ENDPOINT_URL"
        ),
        fix=(
            "fix DVC_S3_BUCKET or AWS_ENDPOINT_URL in .env and run `make remote-s3` (or "
            f"`dvc remote modify --local {remote.name} ...`)"
        ),
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
        if code == "InvalidBucketName":
            raise RemoteError(
                f"{where} says {remote.bucket!r} is not a valid bucket name: fix DVC_S3_BUCKET "
                "in .env and run `make remote-s3`"
            ) from None
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
    except BotoCoreError as exc:  # anything else botocore refuses: one line, not a traceback
        raise RemoteError(
            f"S3 client error for bucket {remote.bucket!r} at {where}: {type(exc).__name__}: "
            f"{_first_line(exc)}"
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


def _dvc_path() -> str:
    dvc = Path(sys.executable).with_name("dvc")
    return str(dvc) if dvc.exists() else "dvc"


class DvcRun(NamedTuple):
    code: int
    output: str  # what dvc printed, masked
    corrupted: frozenset[str]  # md5s of the objects dvc found corrupted and dropped


# DVC logs an object whose content does not match its md5 only at debug level, as it drops it
# (from the cache with ``verify``; from a local remote when checking what it holds). dvc runs
# in a child Python that catches those records and reports them after this marker.
_CORRUPT_MARK = "tools.remote: corrupted object "
_CORRUPT_PATH = re.compile(r"([0-9a-f]{2})[/\\]([0-9a-f]{30})(?:\.dir)?$")
_CHILD = (
    "import sys; sys.path.append({path!r}); from tools.remote import run_dvc; "
    "raise SystemExit(run_dvc(sys.argv[1:]))"
)


def run_dvc(args: Sequence[str]) -> int:
    """``dvc <args>`` in this process (the child of :func:`_dvc`); then one marked line on
    stderr per object DVC found corrupted, which it logs only at debug level."""
    from dvc.cli import main as dvc_main

    found: list[str] = []

    class Catch(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            if record.levelno < logging.INFO and str(record.msg).startswith("corrupted"):
                found.append(str(record.args[0]) if record.args else record.getMessage())
            # Show the record only at the level dvc was asked for (-v shows debug).
            return record.levelno >= logging.getLogger("dvc_data").getEffectiveLevel()

    catcher = logging.getLogger("dvc_data.hashfile.db")
    catcher.setLevel(logging.DEBUG)
    catcher.addFilter(Catch())
    code = dvc_main(list(args))
    for path in found:
        print(f"{_CORRUPT_MARK}{path}", file=sys.stderr, flush=True)
    return code


def _dvc(args: Sequence[str], root: Path, env: Mapping[str, str]) -> DvcRun:
    """Run dvc with ``env``, streaming its output with secrets masked."""
    child = _CHILD.format(path=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.Popen(
        [sys.executable, "-P", "-c", child, *args],  # -P: no module of the repo shadows dvc's
        cwd=root,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    seen, corrupted = [], set()
    for line in proc.stdout:
        if line.startswith(_CORRUPT_MARK):
            match = _CORRUPT_PATH.search(line.strip())
            if match:
                corrupted.add(match[1] + match[2])
            continue
        masked = mask(line, env)
        sys.stdout.write(masked)
        seen.append(masked)
    return DvcRun(proc.wait(), "".join(seen), frozenset(corrupted))


def _dvc_captured(args: Sequence[str], root: Path, env: Mapping[str, str]) -> Any:
    """Run dvc with ``env``, its output captured (not streamed)."""
    return subprocess.run(
        [_dvc_path(), *args], cwd=root, env=dict(env), capture_output=True, text=True, check=False
    )


def _dvc_quiet(args: Sequence[str], root: Path, env: Mapping[str, str]) -> Any:
    """Run a dvc command that prints JSON and return it parsed, or None if it failed."""
    proc = _dvc_captured(args, root, env)
    if proc.returncode != 0:
        log.debug("dvc %s failed: %s", " ".join(args), mask(proc.stderr, env))
        return None
    try:
        return json.loads(proc.stdout)
    except ValueError:
        return None


def _dvc_config(step: Sequence[str], root: Path, env: Mapping[str, str]) -> None:
    """Run one `dvc remote ...` configuration command; a failure is a RemoteError."""
    proc = _dvc_captured(step, root, env)
    if proc.returncode != 0:
        first = mask((proc.stderr or proc.stdout or "no output").strip().splitlines()[0], env)
        raise RemoteError(f"dvc {' '.join(step[:3])} failed: {first}")


def configure_s3(root: Path, env: Mapping[str, str]) -> Remote:
    """Write the S3 remote from .env into .dvc/config.local and make it the default.

    The settings are checked first: nothing is written for a bucket or endpoint that cannot
    work, nor for an endpoint URL carrying a credential.
    """
    bucket = env.get("DVC_S3_BUCKET")
    if not bucket:
        raise RemoteError("DVC_S3_BUCKET is not set: add it to .env (see .env.example)")
    check_s3_settings(
        bucket,
        env.get("AWS_ENDPOINT_URL"),
        bucket_from="DVC_S3_BUCKET",
        endpoint_from="AWS_ENDPOINT_URL",
        fix="fix it in .env and run `make remote-s3` again",
    )
    prefix = env.get("DVC_S3_PREFIX", "").strip("/")
    url = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
    steps = [["remote", "add", "--local", "--force", "s3", url]]
    for option, key in (("region", "AWS_DEFAULT_REGION"), ("endpointurl", "AWS_ENDPOINT_URL")):
        if env.get(key):
            steps.append(["remote", "modify", "--local", "s3", option, env[key]])
        else:
            steps.append(["remote", "modify", "--local", "--unset", "s3", option])
    steps.append(["remote", "modify", "--local", "s3", "verify", "true"])
    steps.append(["remote", "default", "--local", "s3"])
    for step in steps:
        _dvc_config(step, root, env)
    remote = Remote("s3", url, env.get("AWS_ENDPOINT_URL"), env.get("AWS_DEFAULT_REGION"), True)
    log.info("remote 's3' -> %s (endpoint %s), now the default", url, _endpoint_text(remote, env))
    return remote


def ensure_verify(root: Path, remote: Remote, env: Mapping[str, str]) -> None:
    """Make DVC check the md5 of everything it downloads from ``remote`` (``verify``)."""
    if remote.verify:
        return
    _dvc_config(["remote", "modify", "--local", remote.name, "verify", "true"], root, env)
    log.info(
        "remote %r: DVC now checks the hash of every file it downloads "
        "(verify = true in .dvc/config.local)",
        remote.name,
    )


_OPTIONS_WITH_VALUE = ("-j", "--jobs", "-r", "--remote")
_FAILED_TRANSFER = re.compile(r"failed to transfer '(?P<md5>[0-9a-f]{32})")
# dvc pull's warning lists each object neither the remote nor the cache has, one a line:
# "md5: <hash>" (a directory's listing ends in .dir; dvc status prefixes "name: ..., ").
_MISSING_HEADER = "Missing cache files:"
_MISSING_LINE = re.compile(r"(?:name: [^,]*, )?md5: (?P<md5>[0-9a-f]{32}(?:\.dir)?)")
_NAMED = 5  # files named in a message; the rest are counted


def pull_targets(extra: Sequence[str]) -> list[str]:
    """The paths among the arguments passed on to `dvc pull` (not options or their values)."""
    return [
        arg
        for i, arg in enumerate(extra)
        if not arg.startswith("-") and (i == 0 or extra[i - 1] not in _OPTIONS_WITH_VALUE)
    ]


def _names(paths: Sequence[str], where: str = " (`dvc status -c` lists them)") -> str:
    shown = ", ".join(paths[:_NAMED])
    more = len(paths) - _NAMED
    return f"{shown} and {more} more{where}" if more > 0 else shown


def _objects(remote: Remote, md5s: Sequence[str]) -> str:
    url = remote.url.rstrip("/")
    paths = [f"{url}/files/md5/{md5[:2]}/{md5[2:]}" for md5 in md5s]
    more = len(paths) - _NAMED
    return ", ".join(paths[:_NAMED]) + (f" and {more} more" if more > 0 else "")


def missing_objects(output: str) -> frozenset[str]:
    """The objects (md5, a directory listing's ending in .dir) dvc's output says neither the
    remote nor the local cache has: the lines after its "Missing cache files:" warning."""
    found: set[str] = set()
    listing = False
    for line in output.splitlines():
        match = _MISSING_LINE.fullmatch(line.strip()) if listing else None
        if match:
            found.add(match["md5"])
        listing = bool(match) or line.rstrip().endswith(_MISSING_HEADER)
    return frozenset(found)


def tracked_objects(root: Path) -> dict[str, str]:
    """Each path DVC tracks in ``root`` (relative) -> the md5 of its object, from dvc.lock and
    the .dvc files without asking any remote: a directory's md5 ends in .dir, and the files
    inside it are listed too when the local cache holds its listing. Empty if DVC cannot read
    the repository."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    objects: dict[str, str] = {}
    try:
        with Repo(str(root)) as repo:
            cache = repo.cache.local
            for out in repo.index.outs:
                md5 = out.hash_info.value if out.use_cache and out.hash_info else None
                if not md5:
                    continue
                try:
                    path = Path(out.fs_path).relative_to(root).as_posix()
                except ValueError:  # an output outside the repository
                    continue
                objects[path] = md5
                if md5.endswith(".dir"):
                    objects.update(
                        (f"{path}/{entry['relpath']}", entry["md5"])
                        for entry in _listing(Path(cache.oid_to_path(md5)))
                    )
    except (DvcException, OSError, ValueError) as exc:
        log.debug("cannot list what DVC tracks in %s: %s", root, exc)
        return {}
    return objects


def _listing(path: Path) -> list[dict[str, str]]:
    """The entries of a directory's listing (a .dir object) in the cache; [] if absent."""
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [e for e in entries if isinstance(e, dict) and e.get("md5") and e.get("relpath")]


def pull_failure(
    run: DvcRun,
    statuses: Mapping[str, str] | None,
    hashes: Mapping[str, str],
    remote: Remote,
) -> str | None:
    """Why `dvc pull` failed, naming workspace files, or None when it is none of these.

    ``run.corrupted`` are the objects DVC found corrupted (their md5); objects never pushed
    are those dvc's output lists as missing (:func:`missing_objects`) and the paths that
    ``statuses``, what `dvc status --cloud --json` says afterwards, calls "missing" (neither
    the remote nor the cache has it; it cannot see inside a directory whose listing is
    missing, so it may say nothing); ``hashes`` maps each tracked path to its md5
    (:func:`tracked_objects`), which is how an object is named by the path it holds.
    """
    corrupted = sorted(p for p, md5 in hashes.items() if _bare(md5) in run.corrupted)
    unmapped = sorted(run.corrupted - {_bare(md5) for md5 in hashes.values()})
    undownloaded = set(_FAILED_TRANSFER.findall(run.output)) - run.corrupted
    not_downloaded = sorted(p for p, md5 in hashes.items() if md5 in undownloaded)
    # Never pushed: the objects dvc's output lists, and the paths dvc status calls missing.
    missing_paths = {
        p
        for p, state in (statuses or {}).items()
        if state == "missing" and _bare(hashes.get(p, "")) not in run.corrupted
    }
    missing = {md5 for md5 in missing_objects(run.output) if _bare(md5) not in run.corrupted}
    missing |= {hashes[p] for p in missing_paths if p in hashes}
    unknown = sorted(missing - set(hashes.values()))  # no tracked path has it
    unnamed = sorted(missing_paths - set(hashes))  # no md5 known for the path
    never_pushed = sorted({p for p, md5 in hashes.items() if md5 in missing} | set(unnamed))
    # A directory's files are named by the directory when it is missing too.
    never_pushed = [p for p in never_pushed if not _inside(p, never_pushed)]
    if not unnamed:  # else those paths are likely these objects: their md5 is no news
        never_pushed += [f"object {md5}" for md5 in unknown]
    objects_missing = len(missing) + max(0, len(unnamed) - len(unknown))
    reasons = []
    if corrupted or unmapped:
        objects = sorted({hashes[p] for p in corrupted} | set(unmapped))
        named = _names([*corrupted, *(f"object {md5}" for md5 in unmapped)])
        reasons.append(
            f"{named} failed the hash check (the remote's copy is damaged or was altered; DVC "
            f"dropped it and did not check it out): remove {_objects(remote, objects)} from "
            "the remote if still there, then run `make push` where a good copy is (dvc push "
            "skips objects the remote already has)"
        )
    if never_pushed:
        verb, it = ("was", "it") if len(never_pushed) == 1 else ("were", "them")
        objects = "1 object is" if objects_missing == 1 else f"{objects_missing} objects are"
        reasons.append(
            # Not `dvc status -c` for the rest: it cannot see a directory never pushed.
            f"{_names(never_pushed, '')} {verb} never pushed ({objects} in neither the remote nor "
            f"the local cache): run the pipeline and `make push` on the machine that produced "
            f"{it}, or `make repro` here to rebuild {it}"
        )
    if not_downloaded:
        reasons.append(
            f"{_names(not_downloaded)} could not be downloaded (see dvc's errors above): rerun "
            "`make pull`; `make remote-check` tells whether the remote is usable"
        )
    if not reasons:
        return None
    return f"dvc pull from remote {remote.name!r} failed: " + "; ".join(reasons)


def _bare(md5: str) -> str:
    """An md5 without the .dir of a directory listing (how a corrupted object is named)."""
    return md5.removesuffix(".dir")


def _inside(path: str, others: Sequence[str]) -> bool:
    return any(path.startswith(f"{other}/") for other in others)


def last_error(output: str) -> str | None:
    """dvc's last ``ERROR:`` line (its first line only), without the prefix."""
    errors = [line for line in output.splitlines() if line.startswith("ERROR:")]
    if not errors:
        return None
    text = errors[-1].removeprefix("ERROR:").strip()
    return text[:300] + ("..." if len(text) > 300 else "")


def diagnose_pull(
    root: Path, remote: Remote, env: Mapping[str, str], run: DvcRun, extra: Sequence[str]
) -> str | None:
    """Ask dvc what is missing after a failed pull and word it (:func:`pull_failure`)."""
    statuses = _dvc_quiet(
        ["status", "--cloud", "--json", "--remote", remote.name, *pull_targets(extra)], root, env
    )
    return pull_failure(run, statuses, tracked_objects(root), remote)


COMMANDS = {"push": ["push"], "pull": ["pull"], "status": ["status", "--cloud"]}


def _fail(message: str, env: Mapping[str, str], code: int = 2) -> int:
    print(f"error: {' '.join(mask(message, env).split())}", file=sys.stderr)
    return code


def _run(
    command: str, remote_name: str | None, extra: Sequence[str], root: Path, env: dict[str, str]
) -> int:
    """The body of :func:`main`; ``env`` is filled here (the masking filter reads it)."""
    env.update(load_env(root, os.environ))
    if command == "configure-s3":
        remote = configure_s3(root, env)
    else:
        remote = read_remote(root, remote_name)
    check(remote, env)
    if command in ("configure-s3", "check"):
        log.info(
            "remote %r at %s is reachable and accepts the credentials", remote.name, remote.url
        )
        return 0
    if command == "pull":
        ensure_verify(root, remote, env)
    run = _dvc([*COMMANDS[command], "--remote", remote.name, *extra], root, env)
    if run.code == 0:
        return 0
    why = diagnose_pull(root, remote, env, run, extra) if command == "pull" else None
    if why is None:
        # The remote answered the check just before: what dvc said is the lead, not the remote.
        direction = "from" if command == "pull" else "to"
        why = (
            f"dvc {command} {direction} remote {remote.name!r} failed (exit {run.code}): "
            f"{last_error(run.output) or 'see dvc output above'}"
        )
    return _fail(why, env, run.code)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; every failure ends with one ``error:`` line, credentials masked."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["configure-s3", "check", *COMMANDS])
    parser.add_argument("--remote", help="remote name (default: the DVC default remote)")
    parser.add_argument("--root", default=".", help="repository root")
    args, extra = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    env: dict[str, str] = {}
    masking = _Masking(env)
    log.addFilter(masking)
    try:
        return _run(args.command, args.remote, extra, Path(args.root).resolve(), env)
    except RemoteError as exc:
        return _fail(str(exc), env)
    except KeyboardInterrupt:
        return _fail("interrupted", env, 130)
    except Exception as exc:  # a bug: one masked line rather than a traceback that may hold keys
        return _fail(
            f"unexpected {type(exc).__name__} in tools.remote {args.command}: "
            f"{_first_line(exc)}; please report it",
            env,
            1,
        )
    finally:
        log.removeFilter(masking)


if __name__ == "__main__":
    raise SystemExit(main())
