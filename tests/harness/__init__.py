"""Test harness for dockguard's end-to-end tests: a private dockerd and test PKI."""
