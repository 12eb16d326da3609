//! Pawl's FFI layer. The uniffi exports and the C ABI arrive with the bindings issue;
//! for now this crate only re-exports the version so the workspace layout is complete.

/// The version of the Pawl core this FFI layer was built against.
pub fn pawl_version() -> &'static str {
    pawl_core::VERSION
}
