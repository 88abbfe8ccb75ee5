//! Integration tests live in `tests/tests/`; they grow with the transports.
