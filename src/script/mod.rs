//! Rhai scripts: the sandboxed engine, the host API, loading a folder of `*.rhai`,
//! and the `on_*` hooks. Sees events and `Host`, never the port.
