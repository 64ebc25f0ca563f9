"""Test harness: a private dockerd, test PKI and a running guard for the
end-to-end tests; the relay in memory (L{harness.relayworld}) for the unit
tests."""
