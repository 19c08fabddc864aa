//! USSD strings, pure: decoding by DCS (15, 72, 68, 17), request encoding, session
//! states. No I/O.
