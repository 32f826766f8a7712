//! Runs the examples the way their readers do, against the real servers the
//! tests start, so an example that stops compiling or working fails here.
//! Each example is included as a module and its work function called; its
//! `main` only parses the command line.

use odps_tunnel::Client;
use odps_tunnel::auth::Credentials;
use sync_testkit::emulator::{ACCESS_ID, ACCESS_KEY, Emulator};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[path = "../upload_arrow.rs"]
#[allow(dead_code)] // `main` is the command line's
mod upload_arrow;

/// `upload_arrow` against the emulator: the three rows it uploads are
/// counted back, and a second run appends three more (an upload session
/// without `overwrite` adds to the partition).
#[tokio::test]
async fn upload_arrow_commits_a_batch_and_counts_it_back() -> TestResult {
    let emulator = Emulator::start(&[])?;
    let client = Client::new(
        &emulator.endpoint,
        "examples",
        Credentials::new(ACCESS_ID, ACCESS_KEY),
    )?;
    assert_eq!(upload_arrow::upload(&client).await?, 3);
    assert_eq!(upload_arrow::upload(&client).await?, 6);
    Ok(())
}
