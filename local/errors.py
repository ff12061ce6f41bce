"""The one error every engine raises when the graph cannot run as written."""

from __future__ import annotations


class DeployError(RuntimeError):
    """The graph cannot run as written (the cloud would fail the same way); the message names what and why."""
