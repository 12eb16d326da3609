//! Generate the C ABI's header (`pawl.h`, cbindgen) and C# P/Invoke declarations
//! (`NativeMethods.g.cs`, csbindgen) from `ffi/src/capi.rs`.
//!
//! `cargo run -p pawl-ffi --features cli --bin pawl-capi-gen -- <out-dir>`
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(out) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: pawl-capi-gen <out-dir>");
        return ExitCode::from(2);
    };
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/capi.rs");
    if let Err(e) = std::fs::create_dir_all(&out) {
        eprintln!("pawl-capi-gen: {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    let header = cbindgen::Builder::new()
        .with_src(&src)
        .with_language(cbindgen::Language::C)
        .with_include_guard("PAWL_H")
        .with_sys_include("stdint.h")
        .with_sys_include("stddef.h")
        .with_no_includes()
        .with_cpp_compat(true)
        .with_documentation(true)
        .with_header(format!(
            "/* Pawl {} C API. Generated from ffi/src/capi.rs by pawl-capi-gen: do not edit.\n   Conventions (status codes, memory ownership, threads): see the top of that file. */",
            env!("CARGO_PKG_VERSION")
        ))
        .generate();
    match header {
        Ok(h) => {
            h.write_to_file(out.join("pawl.h"));
        }
        Err(e) => {
            eprintln!("pawl-capi-gen: cbindgen: {e}");
            return ExitCode::FAILURE;
        }
    }
    let cs = csbindgen::Builder::default()
        .input_extern_file(&src)
        .csharp_dll_name("pawl_ffi")
        .csharp_namespace("Pawl.Native")
        .csharp_class_name("NativeMethods")
        .csharp_class_accessibility("internal")
        .csharp_use_nint_types(false)
        .generate_csharp_file(out.join("NativeMethods.g.cs"));
    if let Err(e) = cs {
        eprintln!("pawl-capi-gen: csbindgen: {e}");
        return ExitCode::FAILURE;
    }
    println!(
        "pawl-capi-gen: wrote pawl.h and NativeMethods.g.cs to {}",
        out.display()
    );
    ExitCode::SUCCESS
}
