"""Small Lambda handlers the twin's tests deploy through small Pulumi programs (tests/local/programs/)."""
