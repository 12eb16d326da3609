#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| pawl_core::fuzzing::sender_key_distribution_message(data));
