//! Where the store lives in the browser: SQLite's `opfs-sahpool` VFS over the Origin
//! Private File System, installed as the default VFS so that `SqliteStore::open(name)`
//! persists `name` across page reloads. OPFS's synchronous access handles exist only
//! in a dedicated Worker, which is where `@pawl/web` runs this module. Each file of
//! the pool is one SQLCipher database: pages encrypted, nothing readable without the
//! key (tested by reading the pool's raw files back).

use std::cell::RefCell;

use sqlite_wasm_vfs::sahpool::{install, OpfsSAHPoolCfgBuilder, OpfsSAHPoolUtil};
use wasm_bindgen::prelude::*;

use crate::convert::{coded, JsResult};

thread_local! {
    static POOL: RefCell<Option<OpfsSAHPoolUtil>> = const { RefCell::new(None) };
}

/// Install OPFS storage in `directory` (idempotent) as the default for stores opened
/// afterwards. Throws with code 12 where OPFS is missing (not in a Worker, or a
/// browser without it).
#[wasm_bindgen(js_name = installStorage)]
pub async fn install_storage(directory: String) -> JsResult<()> {
    if POOL.with(|p| p.borrow().is_some()) {
        return Ok(());
    }
    let cfg = OpfsSAHPoolCfgBuilder::new()
        .directory(&directory)
        .initial_capacity(6)
        .build();
    let util = install::<sqlite_wasm_rs::WasmOsCallback>(&cfg, true)
        .await
        .map_err(|e| {
            coded(
                pawl_core::error_code::STORE,
                &format!("OPFS storage unavailable (run in a dedicated Worker): {e}"),
            )
        })?;
    POOL.with(|p| *p.borrow_mut() = Some(util));
    Ok(())
}
