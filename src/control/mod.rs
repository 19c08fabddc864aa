//! The control socket protocol (JSON lines over a UNIX socket) and its client.
