"""Lambda handler code. Each `functions/<group>/` is one deployable group; `common/` is shared by all of them.

Nothing here imports pulumi: the cloud zips this package, the local twin imports it. Every group has the same shape
(a module only where the group has that job; the same name for the same job everywhere):

- `handlers`: the entry points Lambda calls (`functions.<group>.handlers.<name>`), thin: event -> logic -> response;
- `logic`: the rules, plain functions over models that take their ports as arguments (no events, no AWS);
- `ports`: the Protocols logic needs from the outside world, and the records they exchange;
- `adapters`: the ports over AWS and HTTP, the group's only importers of boto3/botocore/requests;
- `models`: request, response and domain shapes; `errors`: the group's exceptions and error codes;
- `settings`: the env-var contract (the Pulumi component sets exactly its fields); `permissions`: the IAM actions
  the infra grants each entry point.

`settings`, `permissions`, `images.keys` and every package's `__init__` import nothing but pydantic and the standard
library: the Pulumi program imports them, and its venv holds only requirements.txt. tests/functions/test_layout.py
holds the groups to this shape.
"""

# Before any group imports Powertools: its re-exporting package inits load only what a function uses (cold starts).
from functions.common import lazy_packages

lazy_packages.install()
