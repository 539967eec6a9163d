"""Free loopback ports, for worker processes that talk to each other."""

import contextlib
import socket


def free_ports(count):
  """`count` loopback ports free at this moment (the system picks them; all are held
  until every one is picked, so they differ)."""
  with contextlib.ExitStack() as stack:
    sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
    for sock in sockets:
      sock.bind(("localhost", 0))
    return [sock.getsockname()[1] for sock in sockets]
