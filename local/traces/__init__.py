"""The twin's traces: an OTLP/HTTP collector (`collector`), the spans file it keeps (`store`), the one reader the
CLI (`python -m local trace`) and the live page share (`waterfall`), and the engine that runs the collector."""
