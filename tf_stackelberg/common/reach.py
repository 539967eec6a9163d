"""Short, bounded checks that a network service answers, made before handing the
connection to a library that would wait on it for minutes without a word (a TPU
worker, the other workers of a cluster, a dataset download host)."""

import socket
import struct
import threading
from typing import Optional, Tuple


def split_address(address: str) -> Tuple[str, int]:
  """('host', port) of 'host:port' ('[::1]:port' for IPv6 literals).

  Raises:
    ValueError: no host, or a port that is not an integer in [1, 65535].
  """
  host, sep, port = address.rpartition(":")
  host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
  if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
    raise ValueError(f"{address!r} is not HOST:PORT with a port in 1-65535")
  return host, int(port)


def close_at_once(sock):
  """Closes `sock` with a reset: no TIME_WAIT is left on either side (the port of a
  worker's pre-flight listener must be free for its TensorFlow server at once)."""
  try:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
  except OSError:
    pass
  sock.close()


def _reason(error, host, port, timeout_s):
  if isinstance(error, socket.gaierror):
    return f"the name {host} does not resolve ({error.strerror or error})"
  if isinstance(error, ConnectionRefusedError):
    return f"connection refused: nothing listens on port {port}"
  if isinstance(error, (socket.timeout, TimeoutError)):
    return f"no answer within {timeout_s:g} s"
  return getattr(error, "strerror", None) or str(error) or type(error).__name__


def probe(host: str, port: int, timeout_s: float) -> Optional[str]:
  """None if a TCP connection to `host:port` opens within `timeout_s` seconds, else
  why not ('connection refused: ...', 'no answer within 3 s', 'the name ... does not
  resolve ...').

  The name lookup runs in a helper thread: `getaddrinfo` has no timeout of its own,
  and a resolver that does not answer would otherwise hold the caller for as long
  as the system's resolver settings allow.
  """
  outcome = {}

  def connect():
    try:
      close_at_once(socket.create_connection((host, port), timeout=timeout_s))
      outcome["reason"] = None
    except OSError as e:  # refused, unresolvable, timed out, unreachable network
      outcome["reason"] = _reason(e, host, port, timeout_s)
    except Exception as e:  # pylint: disable=broad-except
      # Reported, not lost with the thread: the caller raises the one-line error.
      outcome["reason"] = f"{type(e).__name__}: {e}"

  thread = threading.Thread(target=connect, daemon=True,
                            name=f"probe {host}:{port}")
  thread.start()
  thread.join(timeout_s)
  if "reason" not in outcome:
    return f"no answer within {timeout_s:g} s"
  return outcome["reason"]
