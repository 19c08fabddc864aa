//! The AT protocol, pure: framing bytes into lines, prompts and final result codes;
//! typed parsing of information responses and URCs; building command lines.
//! No I/O and no tokio.
