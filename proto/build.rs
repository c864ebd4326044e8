//! Compiles the .proto tree under `essentials/` into Rust: messages (with `prost::Name`, so they pack
//! into `google.protobuf.Any`), tonic clients and servers, and a file descriptor set for gRPC
//! reflection (`OUT_DIR/essentials_descriptor.bin`).

use std::env;
use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};

/// The top directory of the package tree, relative to this crate (`essentials/<domain>/v1/*.proto`).
const PROTO_ROOT: &str = "essentials";

fn main() -> Result<(), Box<dyn Error>> {
    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let proto_root = crate_dir.join(PROTO_ROOT);

    let mut proto_files = Vec::new();
    collect_proto_files(&proto_root, &mut proto_files)?;
    proto_files.sort();

    // tonic-prost-build never prints these itself (DEPENDENCIES.md, pitfall 3).
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={}", proto_root.display());
    for proto_file in &proto_files {
        println!("cargo:rerun-if-changed={}", proto_file.display());
    }
    println!("cargo:rerun-if-env-changed=PROTOC");

    // The vendored protoc unless PROTOC names another one. Passed to prost-build directly:
    // `std::env::set_var` is unsafe in edition 2024 and the workspace forbids unsafe code.
    let mut prost_config = tonic_prost_build::Config::new();
    if env::var_os("PROTOC").is_none() {
        prost_config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    }
    // `prost::Name` impls with the conventional type URL prefix, for `prost_types::Any`.
    prost_config.enable_type_names();
    prost_config.type_name_domain(["."], "type.googleapis.com");

    // google/protobuf/*.proto (Timestamp, FieldMask, Any) come with the vendored protoc.
    let well_known_types_dir = protoc_bin_vendored::include_path()?;
    let include_dirs = [crate_dir, well_known_types_dir];

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .file_descriptor_set_path(out_dir.join("essentials_descriptor.bin"))
        .compile_with_config(prost_config, &proto_files, &include_dirs)?;
    Ok(())
}

/// Every `.proto` file under `dir`, recursively.
fn collect_proto_files(dir: &Path, proto_files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_proto_files(&path, proto_files)?;
        } else if path
            .extension()
            .is_some_and(|extension| extension == "proto")
        {
            proto_files.push(path);
        }
    }
    Ok(())
}
