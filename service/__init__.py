"""The scoring service: `python -m service`."""
