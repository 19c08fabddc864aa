//! The runtime: the only module that knows everything. It starts the modems, the store,
//! rules, scripts and schedules, dispatches events, hot-reloads and serves the control
//! socket.
