"""policy-ledger: a tamper-evident, event-sourced audit ledger for device-security policy."""

__all__ = ["__version__"]

__version__ = "0.1.0"
