"""The container engine behind the Docker endpoint: container records and
their shims, logs, exec, volumes, networks, events and the builder."""
