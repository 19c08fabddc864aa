//! SMS PDUs, pure: SMS-DELIVER / SMS-SUBMIT / SMS-STATUS-REPORT decode and encode,
//! GSM 03.38, UCS-2, UDH and concatenation, SCTS, multipart splitting. No I/O.
