"""File destinations in an S3-compatible bucket, against a real S3 server on loopback (moto's server run as
a process, as MinIO would be): the CSV arrives whole with its header, and a bucket not configured or a
prefix climbing out is refused naming the folder."""

import csv
import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from journeys import services as journey_services
from journeys.activation import services
from journeys.definition import DefinitionInvalid
from journeys.models import Destination, SyncRun
from tests.journeys import factories as f

pytestmark = pytest.mark.django_db
BUCKET = "crm-audiences"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server():
    port = _free_port()
    server = Path(sys.executable).parent / "moto_server"
    process = subprocess.Popen(
        [str(server), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:  # wait until it accepts connections
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("the S3 server did not start")
            time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def bucket(settings, s3_server):
    import boto3

    settings.ACTIVATION_S3_BUCKETS = [BUCKET]
    settings.ACTIVATION_S3_ENDPOINT_URL = s3_server
    settings.ACTIVATION_S3_REGION = "us-east-1"
    settings.ACTIVATION_S3_ACCESS_KEY_ID = "test"
    settings.ACTIVATION_S3_SECRET_ACCESS_KEY = "test"
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    client = boto3.client(
        "s3",
        endpoint_url=s3_server,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    client.create_bucket(Bucket=BUCKET)
    return client


def test_a_sync_uploads_a_csv_to_the_bucket(agent, bucket, django_capture_on_commit_callbacks):
    destination = journey_services.destination_create(
        by=agent, name="bucket", kind="file", folder=f"s3://{BUCKET}/crm/vip"
    )
    tag = f.manual_tag("vip")
    f.enter(tag, [f.customer(external_id="B"), f.customer(external_id="A")])

    with django_capture_on_commit_callbacks(execute=True):
        run = services.sync_start(destination=destination, by=agent, tag="vip", mode="snapshot")
    run = SyncRun.objects.get(pk=run.pk)

    assert run.status == "done" and run.file_path.startswith(f"s3://{BUCKET}/crm/vip/vip-snapshot-")
    key = run.file_path.removeprefix(f"s3://{BUCKET}/")
    text = bucket.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
    assert list(csv.reader(io.StringIO(text))) == [["external_id"], ["A"], ["B"]]


@pytest.mark.parametrize(
    "folder, words",
    [("s3://other-bucket/x", "ACTIVATION_S3_BUCKETS"), (f"s3://{BUCKET}/a/../../b", "leaves")],
)
def test_a_bucket_not_configured_or_a_prefix_escaping_is_refused(agent, bucket, folder, words):
    with pytest.raises(DefinitionInvalid) as caught:
        journey_services.destination_create(by=agent, name="b", kind="file", folder=folder)
    [error] = caught.value.errors
    assert error.path == "folder" and words in error.message
    assert not Destination.objects.exists()


def test_an_unreachable_bucket_fails_the_sync_and_its_retry_succeeds(
    agent, bucket, settings, django_capture_on_commit_callbacks
):
    destination = journey_services.destination_create(
        by=agent, name="bucket", kind="file", folder=f"s3://{BUCKET}"
    )
    f.enter(f.manual_tag("vip"), f.customers(2))
    real = settings.ACTIVATION_S3_ENDPOINT_URL
    settings.ACTIVATION_S3_ENDPOINT_URL = f"http://127.0.0.1:{_free_port()}"  # nobody listens

    with django_capture_on_commit_callbacks(execute=True):
        run = services.sync_start(destination=destination, by=agent, tag="vip", mode="snapshot")
    run = SyncRun.objects.get(pk=run.pk)
    assert run.status == "failed" and run.error.startswith("bucket: ")

    settings.ACTIVATION_S3_ENDPOINT_URL = real
    with django_capture_on_commit_callbacks(execute=True):
        services.sync_retry(run=run, by=agent)
    run.refresh_from_db()
    assert (run.status, run.sent) == ("done", 2)
