//! The generated shop loads into the sandbox MariaDB as it is, with the row
//! counts the scale asks for and the multi-byte text intact.

use mysql_async::prelude::Queryable;
use sync_testkit::shop::{Scale, shop_sql};

#[tokio::test]
async fn generated_shop_loads_into_mariadb() {
    let url = sync_testkit::mysql_url();
    let mut conn = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).expect("url"))
        .await
        .expect("connect");
    let scale = Scale {
        customers: 300,
        products: 50,
        orders: 250,
        events: 20,
    };
    conn.query_drop("DROP DATABASE IF EXISTS testkit_shop")
        .await
        .expect("drop");
    conn.query_drop(shop_sql("testkit_shop", scale, 9))
        .await
        .expect("load the generated SQL");

    for (table, rows) in [
        ("customers", 300),
        ("products", 50),
        ("orders", 250),
        ("event_log", 20),
    ] {
        let n: Option<u64> = conn
            .query_first(format!("SELECT COUNT(*) FROM testkit_shop.{table}"))
            .await
            .expect("count");
        assert_eq!(n, Some(rows), "{table}");
    }
    let items: Option<u64> = conn
        .query_first("SELECT COUNT(*) FROM testkit_shop.order_items")
        .await
        .expect("count");
    let items = items.expect("a row");
    assert!(
        (250..=1000).contains(&items),
        "1 to 4 items per order, got {items}"
    );
    // Names with 4-byte UTF-8 survive the round trip (the generator sets utf8mb4).
    let max_len: Option<u64> = conn
        .query_first("SELECT MAX(LENGTH(notes) - CHAR_LENGTH(notes)) FROM testkit_shop.customers")
        .await
        .expect("multi-byte");
    assert!(max_len.unwrap_or(0) > 0, "no multi-byte text landed");
    conn.query_drop("DROP DATABASE testkit_shop")
        .await
        .expect("drop");
    conn.disconnect().await.expect("disconnect");
}
