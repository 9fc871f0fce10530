"""A locustfile that logs every request it sends, for tests that count what the engine counted.

Each process appends ``<time> <response_time>`` lines to ``$SENT_DIR/<hostname>-<pid>.log``,
so a test can rebuild each process's histogram from the samples it logged (and tell a worker
on another host by its host name).
"""

LOGGING_LOCUSTFILE = """
import os
import socket
import time

from locust import events

from harness.load.kit import CustomerUser, task

LOG = open(os.path.join(os.environ["SENT_DIR"], f"{socket.gethostname()}-{os.getpid()}.log"), "a", buffering=1)


@events.request.add_listener
def _log(response_time, **_):
    LOG.write(f"{time.time():.6f} {response_time!r}\\n")


class Visitor(CustomerUser):
    @task
    def home(self):
        self.client.get("/", name="GET /")
"""
