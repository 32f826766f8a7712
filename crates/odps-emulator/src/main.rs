//! `odps-emulator`: a local MaxCompute-compatible server.
//!
//! Planned modules: `server` (HTTP routing for `/api` and the Tunnel),
//! `catalog` (projects, tables, partitions under the data directory), `sql`
//! (the DDL subset and `SELECT COUNT(*)`), `storage` (committed blocks as
//! Parquet files). They land with the odps-tunnel issue.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("odps-emulator is not implemented yet: it lands with the odps-tunnel issue")
}
