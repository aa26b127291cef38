"""Per-project S3 on a real SeaweedFS on 127.0.0.1: scoped credentials, closed internal ports."""

import datetime
import random
import socket
import ssl
import subprocess
import time

import boto3
import pandas as pd
import pytest
import requests
from botocore.exceptions import ClientError
from cloisonne.core.plan import Endpoint
from cloisonne.data.s3 import (
    HTTP_PORTS,
    S3Store,
    StorePorts,
    bucket_name,
    delete_checked,
    s3_endpoint,
    weed_binary,
    workspace_env,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

pytestmark = pytest.mark.server  # starts a server: not in `make unit`

HOST = "127.0.0.1"


def free_base() -> int:
    """A base whose 10 ports are free, below the ephemeral range (no transient clashes)."""
    for _ in range(50):
        base = random.randrange(20000, 22700, 10)
        ports = StorePorts(base).all().values()
        if all(_free(p) for p in ports):
            return base
    raise RuntimeError("no free ports")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = S3Store(tmp_path_factory.mktemp("s3"), host=HOST, ports=StorePorts(free_base()))
    try:
        s.start()
        yield s
    finally:
        s.stop()
    assert s.pid() is None


@pytest.fixture(scope="module")
def projects(store):
    a, b = store.ensure_project("proj-a"), store.ensure_project("proj-b")
    store.admin_client().put_object(Bucket=b.bucket, Key="secret.csv", Body=b"b-only")
    return a, b


def client(store, cred):
    return store.client(cred.access_key, cred.secret_key)


def denied(call) -> str:
    with pytest.raises(ClientError) as info:
        call()
    return info.value.response["Error"]["Code"]


def test_own_bucket_read_write_list_delete(store, projects):
    a, _ = projects
    c = client(store, a)
    c.put_object(Bucket=a.bucket, Key="r/x.txt", Body=b"hello")
    assert c.get_object(Bucket=a.bucket, Key="r/x.txt")["Body"].read() == b"hello"
    assert [o["Key"] for o in c.list_objects_v2(Bucket=a.bucket, Prefix="r/")["Contents"]] == [
        "r/x.txt"
    ]
    delete_checked(c, a.bucket, ["r/x.txt"])
    assert c.list_objects_v2(Bucket=a.bucket, Prefix="r/").get("KeyCount") == 0


def test_credential_refused_on_another_projects_bucket(store, projects):
    a, b = projects
    c = client(store, a)
    assert denied(lambda: c.list_objects_v2(Bucket=b.bucket)) == "AccessDenied"
    assert denied(lambda: c.get_object(Bucket=b.bucket, Key="secret.csv")) == "AccessDenied"
    assert denied(lambda: c.head_object(Bucket=b.bucket, Key="secret.csv")) in {
        "403",
        "AccessDenied",
    }
    assert denied(lambda: c.put_object(Bucket=b.bucket, Key="evil", Body=b"x")) == "AccessDenied"
    assert denied(lambda: c.delete_object(Bucket=b.bucket, Key="secret.csv")) == "AccessDenied"
    # Multi-object delete answers 200 with per-key errors: read them, as s3fs.rm does not.
    response = c.delete_objects(Bucket=b.bucket, Delete={"Objects": [{"Key": "secret.csv"}]})
    assert [e["Code"] for e in response["Errors"]] == ["AccessDenied"]
    with pytest.raises(PermissionError, match="AccessDenied"):
        delete_checked(c, b.bucket, ["secret.csv"])
    # ... and the object is still there, untouched.
    body = store.admin_client().get_object(Bucket=b.bucket, Key="secret.csv")["Body"].read()
    assert body == b"b-only"
    keys = [o["Key"] for o in store.admin_client().list_objects_v2(Bucket=b.bucket)["Contents"]]
    assert keys == ["secret.csv"]


def test_project_credential_cannot_administer(store, projects):
    a, _ = projects
    c = client(store, a)
    assert [x["Name"] for x in c.list_buckets()["Buckets"]] == [a.bucket]
    assert denied(lambda: c.create_bucket(Bucket="cloisonne-new")) == "AccessDenied"
    assert denied(lambda: c.delete_bucket(Bucket=a.bucket)) in {"AccessDenied", "BucketNotEmpty"}


def test_unknown_or_wrong_secret_refused(store, projects):
    a, _ = projects
    assert denied(lambda: store.client(a.access_key, "wrong").list_objects_v2(Bucket=a.bucket))
    assert denied(lambda: store.client("NOPE", "nope").list_objects_v2(Bucket=a.bucket))


def test_ensure_project_is_idempotent_and_live(store, projects):
    a, _ = projects
    assert store.ensure_project("proj-a") == a
    late = store.ensure_project("proj-late")  # no restart: applied live
    client(store, late).put_object(Bucket=late.bucket, Key="k", Body=b"v")


def test_workspace_env_makes_s3fs_and_pandas_work(store, projects, monkeypatch):
    import s3fs

    a, _ = projects
    for name, value in workspace_env(a, store.endpoint_url).items():
        monkeypatch.setenv(name, value)
    s3fs.S3FileSystem.clear_instance_cache()
    frame = pd.DataFrame({"x": [1, 2, 3]})
    url = f"s3://{a.bucket}/results/t.parquet"
    frame.to_parquet(url)
    assert pd.read_parquet(url).x.tolist() == [1, 2, 3]
    fs = s3fs.S3FileSystem()
    assert fs.ls(f"{a.bucket}/results") == [f"{a.bucket}/results/t.parquet"]
    with pytest.raises(PermissionError):
        fs.ls(f"{bucket_name('proj-b')}")
    # the hazard the brief warns about: s3fs.rm does not report AccessDenied on delete
    try:
        fs.rm(f"{bucket_name('proj-b')}/secret.csv")
    except PermissionError:
        pass
    assert store.admin_client().head_object(Bucket=bucket_name("proj-b"), Key="secret.csv")
    s3fs.S3FileSystem.clear_instance_cache()


def test_filer_http_refuses_unsigned_reads_and_writes(store, projects):
    _, b = projects
    filer = f"http://{HOST}:{store.ports.http('filer')}"
    assert requests.get(f"{filer}/buckets/{b.bucket}/secret.csv", timeout=5).status_code == 401
    put = requests.put(f"{filer}/buckets/{b.bucket}/evil.txt", data=b"x", timeout=5)
    assert put.status_code == 401
    post = requests.post(f"{filer}/buckets/{b.bucket}/", files={"f": ("e.txt", b"x")}, timeout=5)
    assert post.status_code == 401
    assert requests.delete(f"{filer}/buckets/{b.bucket}/secret.csv", timeout=5).status_code == 401
    assert requests.get(f"{filer}/buckets/", timeout=5).status_code == 401
    keys = [o["Key"] for o in store.admin_client().list_objects_v2(Bucket=b.bucket)["Contents"]]
    assert keys == ["secret.csv"]


def test_volume_http_refuses_unsigned_writes(store):
    volume = f"http://{HOST}:{store.ports.http('volume')}"
    response = requests.post(f"{volume}/3,01637037d6", files={"f": ("x", b"x")}, timeout=5)
    assert response.status_code == 401


def _other_ca_cert(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "intruder")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    (tmp_path / "i.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "i.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return tmp_path / "i.crt", tmp_path / "i.key"


def _h2_over_tls(store, port, cert=None) -> bytes:
    """Open TLS (h2) like a gRPC client and read the server's first frame."""
    ctx = ssl.create_default_context(cafile=str(store.conf / "ca.crt"))
    ctx.check_hostname = False
    ctx.set_alpn_protocols(["h2"])
    if cert:
        ctx.load_cert_chain(*cert)
    with socket.create_connection((HOST, port), timeout=5) as raw, ctx.wrap_socket(raw) as tls:
        tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        return tls.recv(64)


@pytest.mark.parametrize("component", HTTP_PORTS)
def test_grpc_ports_require_the_store_client_certificate(store, tmp_path, component):
    port = store.ports.grpc(component)
    # with the store's client certificate the port answers (HTTP/2 SETTINGS frame)...
    admin = (store.conf / "admin.crt", store.conf / "admin.key")
    assert _h2_over_tls(store, port, admin)[3] == 0x04
    # ... without one, or with one from another CA, the handshake is refused
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        _h2_over_tls(store, port)
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        _h2_over_tls(store, port, _other_ca_cert(tmp_path))
    # ... and plaintext HTTP/2 (an insecure gRPC client) gets nothing back
    with socket.create_connection((HOST, port), timeout=5) as s:
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        try:
            assert s.recv(64)[3:4] != b"\x04"
        except ConnectionResetError:
            pass


def test_weed_shell_without_certificate_cannot_configure(store, tmp_path):
    """The admin tool from a directory without the store's security.toml gets nowhere.

    (It keeps retrying the master's gRPC port, which refuses it, until killed.)
    """
    try:
        result = subprocess.run(
            [weed_binary(), "shell", f"-master={HOST}:{store.ports.http('master')}"],
            cwd=tmp_path, input="s3.configure\n", capture_output=True, text=True, timeout=4,
        )  # fmt: skip
        out = result.stdout
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode()
    assert '"identities"' not in out
    assert "cloisonne-admin" not in out
    # the same command with the store's certificate does see the identities
    assert "cloisonne-admin" in store.shell("s3.configure")


def test_secrets_are_private(store):
    for name in ("ca.key", "admin.key", "seaweedfs.key", "security.toml", "s3.json"):
        assert (store.conf / name).stat().st_mode & 0o077 == 0, name
    assert (store.conf / "credentials" / "proj-a.json").stat().st_mode & 0o077 == 0


def test_workspace_plan_pieces():
    assert s3_endpoint("10.42.0.1", 18330) == Endpoint("10.42.0.1", 18330, "project S3")
    cred = type("C", (), {"access_key": "AK", "secret_key": "SK", "bucket": "cloisonne-x"})()
    env = workspace_env(cred, "http://10.42.0.1:18330")
    assert env["AWS_ACCESS_KEY_ID"] == "AK" and env["AWS_ENDPOINT_URL"] == "http://10.42.0.1:18330"
    assert env["CLOISONNE_S3_URL"] == "s3://cloisonne-x/"
    assert bucket_name("cardio") == "cloisonne-cardio"
    with pytest.raises(ValueError):
        bucket_name("Bad_Name")


def test_boto3_version_pins_resolve():
    import aiobotocore
    import botocore

    assert boto3.__version__ == botocore.__version__
    assert aiobotocore.__version__


def test_first_spawns_of_a_new_project_at_once_get_one_working_credential(store):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(3) as pool:
        creds = list(pool.map(store.ensure_project, ["proj-race"] * 3))
    assert len(set(creds)) == 1  # one key, not one per spawn
    client(store, creds[0]).put_object(Bucket=creds[0].bucket, Key="k", Body=b"v")


def test_a_frozen_credential_is_refused_until_resumed_and_close_deletes_all(store) -> None:
    cred = store.ensure_project("proj-z")
    mine = client(store, cred)
    mine.put_object(Bucket=cred.bucket, Key="out/t.csv", Body=b"a,b\n1,2\n")
    assert store.freeze_project("proj-z") and store.is_frozen("proj-z")
    assert store.freeze_project("proj-z"), "freezing twice is harmless"
    deadline = time.monotonic() + 10
    while True:  # -apply reaches the gateway asynchronously
        try:
            mine.list_objects_v2(Bucket=cred.bucket)
        except ClientError:
            break
        assert time.monotonic() < deadline, "frozen credential still accepted"
        time.sleep(0.1)
    assert store.ensure_project("proj-z") == cred  # resume: the same credential, live again
    assert not store.is_frozen("proj-z")
    assert mine.list_objects_v2(Bucket=cred.bucket)["KeyCount"] == 1
    gone = store.delete_project("proj-z")
    assert gone["existed"] and gone["objects"][0]["key"] == "out/t.csv"
    assert gone["objects"][0]["bytes"] == 8
    names = [b["Name"] for b in store.admin_client().list_buckets()["Buckets"]]
    assert cred.bucket not in names
    assert not (store.conf / "credentials" / "proj-z.json").exists()
    assert store.delete_project("proj-z")["existed"] is False  # re-running close is safe
