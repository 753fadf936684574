"""The secured local broker (``deploy/local/kafka.sh start --sasl-ssl``) seen from a test: its
address, CA and SCRAM users, and a whole deployment whose every service connects as its own principal.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from modelyard_core.acls import principal
from modelyard_core.settings import KafkaSettings
from modelyard_events.topology import SERVICES

from .stack import Stack, build_stack

PASSWORD_PREFIX = "MODELYARD_KAFKA_SASL_PASSWORD_"


@dataclass(frozen=True)
class SecuredKafka:
    """A SASL_SSL (SCRAM-SHA-512) broker: ``passwords`` by user (``admin`` and ``modelyard-<service>``)."""

    bootstrap: str
    ca_file: str
    passwords: dict[str, str]

    @classmethod
    def from_folder(cls, folder: Path) -> SecuredKafka:
        """Read the ``credentials.env`` that kafka.sh wrote into the broker's run folder."""
        values = dict(line.strip().split("=", 1) for line in (folder / "credentials.env").read_text().splitlines()
                      if "=" in line and not line.startswith("#"))
        users = {"ADMIN": "admin", **{s.upper(): principal(s) for s in SERVICES}}
        return cls(values["MODELYARD_KAFKA_SASL_BOOTSTRAP"], values["MODELYARD_KAFKA_SASL_CA_FILE"],
                   {user: values[PASSWORD_PREFIX + name] for name, user in users.items()})

    def settings(self, user: str, password: str | None = None) -> KafkaSettings:
        """Client settings for ``user`` (its own password unless another is given)."""
        return KafkaSettings(bootstrap_servers=self.bootstrap, security_protocol="SASL_SSL",
                             sasl_mechanism="SCRAM-SHA-512", sasl_username=user,
                             sasl_password=password if password is not None else self.passwords[user],
                             ssl_ca_file=self.ca_file)

    def env(self, user: str) -> dict[str, str]:
        """The same as ``MODELYARD_KAFKA__*`` variables, for a service process."""
        return {
            "MODELYARD_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
            "MODELYARD_KAFKA__SASL_MECHANISM": "SCRAM-SHA-512",
            "MODELYARD_KAFKA__SASL_USERNAME": user,
            "MODELYARD_KAFKA__SASL_PASSWORD": self.passwords[user],
            "MODELYARD_KAFKA__SSL_CA_FILE": self.ca_file,
        }


def secured_stack(kafka: SecuredKafka, mongo_url: str, prefix: str, log_dir: Path | None = None, *,
                  extra_env: dict[str, str] | None = None) -> tuple[Stack, str]:
    """The full pipeline plus the ingress on the secured broker, each service as its own principal;
    (the stack, the ingress's URL). Nothing is started."""
    stack = build_stack(kafka.bootstrap, mongo_url, prefix, log_dir, extra_env=extra_env)
    ingress = stack.add("ingress", ["ingress"], "/readyz")
    for name, proc in stack.processes.items():
        service = name.split("-")[0]  # inference-slm -> inference
        if service in SERVICES:
            proc.env.update(kafka.env(principal(service)))
    return stack, ingress.ready_url.removesuffix("/readyz")
