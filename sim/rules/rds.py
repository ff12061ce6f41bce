"""RDS: DB subnet groups and PostgreSQL instances."""

from __future__ import annotations

import re
from typing import Any

from sim.rules.core import CloudRejection, revealed, rule, whole


@rule("aws:rds/subnetGroup:SubnetGroup")
def _rds_subnet_group(inputs: dict[str, Any]) -> None:
    if len(inputs.get("subnetIds") or []) < 2:
        raise CloudRejection("a DB subnet group needs subnets in at least two zones")


_RDS_IDENTIFIER = re.compile(r"^[a-z](?!.*--)[a-z0-9-]{0,62}(?<!-)$")
_RDS_PASSWORD_FORBIDDEN = set('/@" ')


@rule("aws:rds/instance:Instance")
def _rds_instance(inputs: dict[str, Any]) -> None:
    ident = inputs.get("identifier")
    if ident is not None and not _RDS_IDENTIFIER.match(str(ident)):
        raise CloudRejection(f"identifier {ident!r} breaks RDS's naming rules")
    if not str(inputs.get("instanceClass") or "").startswith("db."):
        raise CloudRejection(f"instanceClass {inputs.get('instanceClass')!r} is not a DB instance class")
    engine = inputs.get("engine")
    if engine == "postgres":
        storage = whole(inputs.get("allocatedStorage")) or 0
        if not 20 <= storage <= 65536:
            raise CloudRejection(f"allocatedStorage {storage} GB is outside 20-65536 for PostgreSQL")
        password = revealed(inputs.get("password"))
        if password is not None and (not 8 <= len(password) <= 128 or set(password) & _RDS_PASSWORD_FORBIDDEN):
            raise CloudRejection("the master password must be 8-128 printable characters without / @ \" or space")
        db_name = inputs.get("dbName")
        if db_name is not None and not re.match(r"^[A-Za-z][A-Za-z0-9_]{0,62}$", str(db_name)):
            raise CloudRejection(f"dbName {db_name!r} is not a PostgreSQL database name")
    if not inputs.get("skipFinalSnapshot") and not inputs.get("finalSnapshotIdentifier"):
        raise CloudRejection("without skipFinalSnapshot a finalSnapshotIdentifier is required (or destroy fails)")
    if inputs.get("manageMasterUserPassword") and inputs.get("password"):
        raise CloudRejection("password and manageMasterUserPassword are mutually exclusive")
