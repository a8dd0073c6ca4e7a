"""How the server process is started: addresses, ports, database, TLS. One typed object.

Server-wide settings that admins change at run time (domain, trusted networks, digest
order, expiry limits) live in the database instead: see `onenumber.settings`. The default
database URL and data directory are resolved in `onenumber.store.db`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_SIP_PORT = 5060
DEFAULT_HTTP_PORT = 8080


@dataclass(frozen=True, slots=True)
class ServerConfig:
    bind: str = "0.0.0.0"
    sip_port: int = DEFAULT_SIP_PORT
    http_port: int = DEFAULT_HTTP_PORT
    domain: str | None = None  # overrides the stored setting when given
    db_url: str = ""
    data_dir: Path = Path("data")
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_port: int | None = None  # default: sip_port + 1 when a certificate is configured
    log_level: str = "info"
    demo: bool = False  # seed demo accounts when the database is new
    history: bool = True  # write the call history (the history subscriber of the call events)
    presence: bool = True  # serve presence, BLF and message waiting (the presence subscriber)
    keepalive: bool = True  # OPTIONS keepalive of UDP bindings (settings keepalive_*)
    log_format: str = "text"  # text | json (one JSON object per line)
    udp_buffer: int = 8 * 1024 * 1024  # socket buffers: bursts of REGISTERs must not be dropped
    max_stream_message: int = 65535
    flush_interval: float = 0.05  # seconds between write-behind flushes of bindings
    reload_interval: float = 0.25  # seconds between checks for configuration changes
    secret_file: Path | None = None  # nonce secret; default <data_dir>/nonce.secret
    workers: int = 1  # worker processes sharing the SIP ports (SO_REUSEPORT); more than 1 needs redis_url
    worker: int = 0  # this process's index among them (set by the supervisor)
    redis_url: str | None = None  # shared bindings, login throttling and configuration pushes
    worker_port_base: int | None = None  # tests: worker N also listens on UDP/TCP port base + N
    node_uri: str | None = None  # several nodes: how the others reach this one (default: bind address and SIP port)

    @property
    def effective_tls_port(self) -> int | None:
        if not self.tls_cert:
            return None
        return self.tls_port or self.sip_port + 1
