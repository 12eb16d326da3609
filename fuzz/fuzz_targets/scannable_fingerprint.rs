#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| pawl_core::fuzzing::scannable_fingerprint(data));
