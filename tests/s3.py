"""An S3-compatible object store for tests: moto's server mode on a free loopback port.

Import the fixtures into a test module (`from tests.s3 import s3_lake, s3_server  # noqa: F401`). `s3_lake`
creates a fresh bucket, points the AWS_* environment at the server (nothing else configures the lake's
client) and yields the lake's URI, `s3://<bucket>/lake`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

REGION = "eu-west-1"
ACCESS_KEY_ID = "test-access-key"
SECRET_ACCESS_KEY = "test-secret-key"


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str

    def environ(self) -> dict[str, str]:
        """The environment a process needs to reach the server (and nothing that could reach AWS)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self) -> Any:  # a boto3 S3 client (boto3 comes with moto, a test dependency)
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
        )

    def keys(self, bucket: str) -> list[str]:
        """Every object key in the bucket, sorted."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One moto S3 server per test session, on 127.0.0.1 and a free port."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield S3Server(f"http://{host}:{port}")
    finally:
        server.stop()


@pytest.fixture
def s3_lake(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh bucket; the AWS_* environment points at the server; yields `s3://<bucket>/lake`."""
    for name, value in s3_server.environ().items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_DEFAULT_REGION", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    bucket = f"lake-{uuid.uuid4().hex[:12]}"
    s3_server.client().create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    yield f"s3://{bucket}/lake"
