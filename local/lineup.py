"""The twin's engines, in deploy order: the one list the twin runs and `plan` describes.

An engine comes after every engine whose record it reads (`Engine.reads`): the trace collector (everything
after it exports to it), moto's data stores, PostgreSQL, the
services (the database's address translated into their env), the mesh (Envoy over the services' processes; the
ingress load balancer's hostname -> Envoy's URL), the Lambda workers (their environment translated with all of
the above), the API gateway and the S3 events (both invoke the workers). Stop runs the other way.
"""

from __future__ import annotations

from local.aws import AwsEngine
from local.engine import Engine
from local.gateway.engine import GatewayEngine
from local.lambdas import LambdaEngine
from local.mesh import MeshEngine
from local.postgres_engine import PostgresEngine
from local.s3events import S3EventsEngine
from local.services import ServicesEngine
from local.traces.engine import CollectorEngine

ENGINES: tuple[type[Engine], ...] = (
    CollectorEngine,
    AwsEngine,
    PostgresEngine,
    ServicesEngine,
    MeshEngine,
    LambdaEngine,
    GatewayEngine,
    S3EventsEngine,
)


def check_order(engines: tuple[type[Engine], ...] = ENGINES) -> None:
    """Every record an engine reads is provided by an engine before it (a wrong order fails here, not at run)."""
    provided: set[type] = set()
    for engine in engines:
        missing = [kind.__name__ for kind in engine.reads if kind not in provided]
        if missing:
            raise AssertionError(f"{engine.__name__} reads {', '.join(missing)}, which no engine before it provides")
        provided.add(engine.provides)
