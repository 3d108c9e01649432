"""Credentials in URLs: the rule that refuses them and the mask for every text shown."""

from __future__ import annotations

import pytest

from tabml.secrets import credential_in_url, is_credential_param, redact


@pytest.mark.parametrize(
    "name",
    [
        "token",
        "api_key",
        "X-Amz-Signature",
        "x-amz-credential",
        "secret",
        "Password",
        "sig",
        "access_token",
        "auth",
        "sessionid",
    ],
)
def test_credential_parameter_names(name):
    assert is_credential_param(name)


@pytest.mark.parametrize("name", ["version", "format", "page", "design", "signal"])
def test_ordinary_parameter_names(name):
    assert not is_credential_param(name)


def test_credential_in_url_names_the_part_never_the_value():
    assert credential_in_url("http://u:p4ss@h/x") == "user:password@ before the host"
    assert credential_in_url("http://h/x?a=1&token=t0k") == "the query parameter 'token'"
    assert credential_in_url("http://h/x?a=1") is None
    assert credential_in_url("not a url") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "cannot read http://alice:S3cr3t@127.0.0.1:8210/data.csv?token=Q&x=1: 404",
            "cannot read http://***@127.0.0.1:8210/data.csv?token=***&x=***: 404",
        ),
        ("see s3://bucket/key.csv now", "see s3://bucket/key.csv now"),
        ("https://h/p?flag&k=v#frag", "https://h/p?flag&k=***#frag"),
        ("two: http://a:b@h1/ and 'https://c@h2/x'", "two: http://***@h1/ and 'https://***@h2/x'"),
        ("no url here", "no url here"),
        ("http://u:p@h:80", "http://***@h:80"),
    ],
)
def test_redact(text, expected):
    assert redact(text) == expected
