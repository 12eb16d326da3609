//! `uniffi-bindgen`: generates the Swift / Kotlin / Python sources from the built library
//! (`uniffi-bindgen generate target/debug/libpawl_ffi.so --language python --out-dir DIR`).

fn main() {
    uniffi::uniffi_bindgen_main()
}
