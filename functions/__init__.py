"""Lambda handler code. Each `functions/<group>/` is one deployable group; `common/` is shared by all of them.

Nothing here imports pulumi: the cloud zips this package, the local twin imports it.
"""
