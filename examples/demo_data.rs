//! Generates a small shop database as SQL and prints a summary of it.
//!
//! `cargo run -p sync-examples --example demo_data`

use sync_testkit::shop::{Scale, shop_sql};

fn main() {
    let scale = Scale {
        customers: 20,
        products: 10,
        orders: 30,
        events: 5,
    };
    let sql = shop_sql("shop", scale, 7);
    let inserts = sql.lines().filter(|l| l.starts_with("INSERT")).count();
    println!("{} bytes of SQL, {inserts} INSERT statements", sql.len());
}
