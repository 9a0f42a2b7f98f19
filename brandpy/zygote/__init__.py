"""The zygote behind the C `brandpy` command (native/launcher/launcher.c):
a per-user Python process with brandpy imported that forks a supervisor
for each `brandpy run` or `brandpy trace` the launcher hands it, so that
no Python starts on that path. server.py accepts and forks; worker.py is
the forked supervisor's side; protocol.py the messages both speak with
the launcher."""
