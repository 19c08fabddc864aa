//! The modem: one actor task owns one port; `ModemHandle` is the cheap, cloneable way
//! in. Knows `at`, `sms`, `ussd` and `event` only; durability comes through the
//! `Persist` trait, which the runtime implements with `store`.
