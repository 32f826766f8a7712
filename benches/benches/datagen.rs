//! Throughput of the demo data generator (the input side of later benches).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sync_testkit::shop::{Scale, shop_sql};

fn datagen(c: &mut Criterion) {
    let bytes = shop_sql("shop", Scale::DEMO, 42).len() as u64;
    let mut group = c.benchmark_group("datagen");
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function("shop_demo_sql", |b| {
        b.iter(|| shop_sql("shop", Scale::DEMO, 42))
    });
    group.finish();
}

criterion_group!(benches, datagen);
criterion_main!(benches);
