"""
dockguard: a guard for the Docker Engine API.

It listens with mutual TLS (or on plain TCP / Unix sockets with a fixed
identity), authorises every request against a policy, and relays what is
allowed to the Docker daemon's Unix socket.
"""

__version__ = "0.1.0"
