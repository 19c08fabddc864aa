//! A faithful ZTE MF667 simulator: in-process (`tokio::io::duplex`) and on
//! pseudo-terminals, with a control interface for injecting SMS, USSD replies and
//! faults. Depends only on the pure codecs (`at`, `sms`, `ussd`), never on `modem`.
