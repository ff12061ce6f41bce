"""The local twin: the Pulumi program's resource graph deployed to engines on this machine."""
