"""`modelyard kafka acls`: every service's Kafka ACLs, generated from the topology (see
``modelyard_core.acls``), printed for ``kafka-acls.sh``, as JSON or as Strimzi ``KafkaUser``
resources, or applied to the cluster in ``MODELYARD_KAFKA__*`` (as a principal allowed to)."""

from __future__ import annotations

import asyncio
from enum import StrEnum
from typing import Annotated

import typer


class AclFormat(StrEnum):
    kafka_acls = "kafka-acls"
    json = "json"
    strimzi = "strimzi"


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    kafka_app = typer.Typer(no_args_is_help=True, help="Kafka administration: per-service principals and ACLs.")
    app.add_typer(kafka_app, name="kafka")

    @kafka_app.command("acls")
    def acls(
        service: Annotated[list[str] | None, typer.Option(help="Only this service (repeatable); default: all.")] = None,
        fmt: Annotated[AclFormat, typer.Option("--format", help="How to print them.")] = AclFormat.kafka_acls,
        apply: Annotated[bool, typer.Option(help="Create them on the cluster instead of printing them.")] = False,
        cluster: Annotated[str, typer.Option(help="Strimzi: the Kafka cluster's name.")] = "modelyard",
    ) -> None:
        """Each service's principal (User:modelyard-<service>) and exactly the topic and group ACLs it
        needs, under MODELYARD_TOPICS__PREFIX."""
        import yaml
        from modelyard_core import acls as generated
        from modelyard_core.settings import Settings

        settings = Settings()
        rules = generated.bindings(settings.topics, service or None)
        if apply:
            n = asyncio.run(generated.apply(settings.kafka, rules))
            typer.echo(f"applied {n} ACLs")
        elif fmt is AclFormat.json:
            typer.echo(generated.format_json(rules))
        elif fmt is AclFormat.strimzi:
            typer.echo(yaml.safe_dump_all(generated.strimzi_users(rules, cluster=cluster), sort_keys=False), nl=False)
        else:
            typer.echo(generated.format_kafka_acls(rules))
