#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| pawl_core::fuzzing::prekey_signal_message(data));
